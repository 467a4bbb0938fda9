"""Sequence modules: embeddings, recurrent layers, attention and the transformer block.

Each module holds its parameters and calls one functional layer
(:mod:`gradproof.nn.functional`) forward and backward; ``backward(dout)``
returns the gradient of the module's input and *accumulates* into
``param.grad``. Shapes: N sequences, T steps, D input features, H hidden
units, E model width.

Initialisation follows PyTorch, so that the same recipes train the same way:
recurrent weights and biases U(-1/sqrt(H), 1/sqrt(H)); embeddings N(0, 1);
attention projections Xavier-uniform with zero biases; the MLP of the
transformer block U(-1/sqrt(fan_in), 1/sqrt(fan_in)). For a per-step linear map
(N, T, D) -> (N, T, M) use :class:`gradproof.nn.linear.Linear`, which accepts
any leading axes.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import boolean, positive_int
from ..errors import InputError
from . import functional as F
from .dtypes import as_generator, check_float_input, check_memory, resolve_dtype
from .init import xavier_uniform
from .module import Module, Parameter

__all__ = [
    "Embedding",
    "RNN",
    "LSTM",
    "GRU",
    "MultiHeadAttention",
    "TransformerBlock",
]


def _uniform(gen: np.random.Generator, shape, bound: float, dtype) -> Parameter:
    return Parameter(gen.uniform(-bound, bound, size=shape).astype(dtype))


def _zeros(shape, dtype) -> Parameter:
    return Parameter(np.zeros(shape, dtype=dtype))


class _Stateful(Module):
    """A module that keeps the cache of its last forward for its backward."""

    _cache = None

    def _take_cache(self):
        if self._cache is None:
            raise InputError(f"{self!r}: backward called before forward")
        return self._cache


class Embedding(_Stateful):
    """A lookup table: ``forward(idx)`` maps integer indices (N, T) to vectors (N, T, D)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, *, rng=None, dtype=np.float64):
        super().__init__()
        V = positive_int("num_embeddings", num_embeddings)
        D = positive_int("embedding_dim", embedding_dim)
        gen, dtype = as_generator(rng), resolve_dtype(dtype)
        check_memory(f"Embedding({V}, {D})", [(V, D)], dtype)
        self.weight = Parameter(gen.standard_normal((V, D)).astype(dtype))

    def forward(self, idx: np.ndarray) -> np.ndarray:
        out, self._cache = F.embedding(idx, self.weight.data)
        return out

    def backward(self, dout: np.ndarray) -> None:
        """Accumulates ``weight.grad``; returns None (indices have no gradient)."""
        _, dW = F.embedding_backward(dout, self._take_cache())
        self.weight.accumulate(dW)
        return None

    def __repr__(self) -> str:
        return f"Embedding({self.weight.shape[0]}, {self.weight.shape[1]})"


class _Recurrent(_Stateful):
    """Shared body of RNN, LSTM and GRU: parameters ``Wx`` (D, G*H), ``Wh`` (H, G*H)
    and biases, a forward over (N, T, D) from ``h0`` (zeros by default)."""

    gates = 1
    bias_names: tuple[str, ...] = ("b",)
    layer = staticmethod(F.rnn)
    layer_backward = staticmethod(F.rnn_backward)

    def __init__(self, input_size: int, hidden_size: int, *, rng=None, dtype=np.float64):
        super().__init__()
        D = positive_int("input_size", input_size)
        H = positive_int("hidden_size", hidden_size)
        gen, dtype = as_generator(rng), resolve_dtype(dtype)
        bound = 1.0 / math.sqrt(H)
        G = self.gates
        check_memory(f"{type(self).__name__}({D}, {H})", [(D, G * H), (H, G * H)], dtype)
        self.Wx = _uniform(gen, (D, G * H), bound, dtype)
        self.Wh = _uniform(gen, (H, G * H), bound, dtype)
        for name in self.bias_names:
            setattr(self, name, _uniform(gen, (G * H,), bound, dtype))
        self.hidden_size = H
        self.dh0: np.ndarray | None = None  # gradient of h0 after backward

    def _params(self) -> list[Parameter]:
        return [self.Wx, self.Wh, *(getattr(self, n) for n in self.bias_names)]

    def forward(self, x: np.ndarray, h0: np.ndarray | None = None) -> np.ndarray:
        """x (N, T, D), h0 (N, H) or None -> hidden states (N, T, H)."""
        check_float_input(x, self, self.Wx.dtype)
        if h0 is None:
            h0 = np.zeros((x.shape[0], self.hidden_size), dtype=self.Wx.dtype)
        out, self._cache = self.layer(x, h0, *(p.data for p in self._params()))
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout (N, T, H) -> dx (N, T, D); accumulates the parameters' grads, sets ``dh0``."""
        dx, self.dh0, *dparams = self.layer_backward(dout, self._take_cache())
        for p, g in zip(self._params(), dparams):
            p.accumulate(g)
        return dx

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.Wx.shape[0]}, {self.hidden_size})"


class RNN(_Recurrent):
    """Vanilla tanh RNN (:func:`gradproof.nn.functional.rnn`)."""


class LSTM(_Recurrent):
    """LSTM, gate order i, f, o, g, zero initial cell state (functional ``lstm``)."""

    gates = 4
    layer = staticmethod(F.lstm)
    layer_backward = staticmethod(F.lstm_backward)


class GRU(_Recurrent):
    """GRU with torch.nn.GRU's equations, gate order r, z, n (functional ``gru``)."""

    gates = 3
    bias_names = ("bx", "bh")
    layer = staticmethod(F.gru)
    layer_backward = staticmethod(F.gru_backward)


def _attention_params(module: Module, E: int, gen, dtype) -> None:
    for name in ("Wq", "Wk", "Wv", "Wo"):
        setattr(module, name, Parameter(xavier_uniform((E, E), gen, dtype)))
    for name in ("bq", "bk", "bv", "bo"):
        setattr(module, name, _zeros((E,), dtype))


class MultiHeadAttention(_Stateful):
    """Multi-head self-attention on (N, T, E) (functional ``multi_head_attention``).

    ``causal=True`` lets position t see positions <= t only (language models).
    ``forward(x, mask=None)`` also takes a boolean mask (T, T) or (N, T, T).
    """

    def __init__(
        self, embed_dim: int, num_heads: int, *, causal: bool = False, rng=None, dtype=np.float64
    ):
        super().__init__()
        E = positive_int("embed_dim", embed_dim)
        h = positive_int("num_heads", num_heads)
        if E % h:
            raise InputError(f"num_heads must divide embed_dim = {E}, got {h}")
        self.num_heads, self.causal = h, boolean("causal", causal)
        check_memory(f"MultiHeadAttention({E}, {h})", [(E, E)] * 4, resolve_dtype(dtype))
        _attention_params(self, E, as_generator(rng), resolve_dtype(dtype))

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        check_float_input(x, self, self.Wq.dtype)
        params = [getattr(self, n).data for n in F.MHA_PARAMS]
        out, self._cache = F.multi_head_attention(x, *params, self.num_heads, self.causal, mask)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx, *dparams = F.multi_head_attention_backward(dout, self._take_cache())
        for name, g in zip(F.MHA_PARAMS, dparams):
            getattr(self, name).accumulate(g)
        return dx

    def __repr__(self) -> str:
        causal = ", causal=True" if self.causal else ""
        return f"MultiHeadAttention({self.Wq.shape[0]}, {self.num_heads}{causal})"


class TransformerBlock(_Stateful):
    """Pre-LN transformer block (:func:`~gradproof.nn.functional.transformer_block`):
    ``h = x + MHA(LN1(x))``, ``out = h + MLP(LN2(h))`` with an MLP of width ``ff_dim``."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        ff_dim: int | None = None,
        *,
        causal: bool = False,
        activation: str = "gelu",
        eps: float = 1e-5,
        rng=None,
        dtype=np.float64,
    ):
        super().__init__()
        E = positive_int("embed_dim", embed_dim)
        h = positive_int("num_heads", num_heads)
        if E % h:
            raise InputError(f"num_heads must divide embed_dim = {E}, got {h}")
        Fd = positive_int("ff_dim", 4 * E if ff_dim is None else ff_dim)
        gen, dtype = as_generator(rng), resolve_dtype(dtype)
        check_memory(f"TransformerBlock({E}, {h}, {Fd})", [(E, E)] * 4 + [(E, Fd)] * 2, dtype)
        self.num_heads, self.causal = h, boolean("causal", causal)
        self.activation, self.eps = activation, eps
        self.ln1_gamma, self.ln1_beta = Parameter(np.ones(E, dtype)), _zeros((E,), dtype)
        _attention_params(self, E, gen, dtype)
        self.ln2_gamma, self.ln2_beta = Parameter(np.ones(E, dtype)), _zeros((E,), dtype)
        self.W1 = _uniform(gen, (E, Fd), 1.0 / math.sqrt(E), dtype)
        self.b1 = _uniform(gen, (Fd,), 1.0 / math.sqrt(E), dtype)
        self.W2 = _uniform(gen, (Fd, E), 1.0 / math.sqrt(Fd), dtype)
        self.b2 = _uniform(gen, (E,), 1.0 / math.sqrt(Fd), dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(x, self, self.W1.dtype)
        params = [getattr(self, n).data for n in F.TRANSFORMER_BLOCK_PARAMS]
        out, self._cache = F.transformer_block(
            x, *params, self.num_heads, self.causal, self.activation, self.eps
        )
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx, *dparams = F.transformer_block_backward(dout, self._take_cache())
        for name, g in zip(F.TRANSFORMER_BLOCK_PARAMS, dparams):
            getattr(self, name).accumulate(g)
        return dx

    def __repr__(self) -> str:
        E, Fd = self.W1.shape
        return f"TransformerBlock({E}, {self.num_heads}, ff_dim={Fd}, causal={self.causal})"

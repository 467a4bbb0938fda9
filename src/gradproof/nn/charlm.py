"""A character-level language model: embedding, a recurrent core or causal
transformer blocks, and a per-step linear head.

``CharLM(vocab_size, cell)`` maps character ids to next-character scores::

    idx (N, T) -> Embedding -> RNN / LSTM / GRU (or causal transformer blocks)
               -> Linear -> scores (N, T, V)

:mod:`gradproof.recipes.charlm` trains it on Python's own source
(``gradproof train charlm``).
"""

from __future__ import annotations

import numpy as np

from .._validate import positive_int
from ..errors import InputError
from . import functional as F
from .dtypes import resolve_dtype
from .linear import Linear
from .module import Module
from .norm import LayerNorm
from .sequence import GRU, LSTM, RNN, Embedding, TransformerBlock

__all__ = ["CELLS", "CharLM"]

CELLS = ("rnn", "lstm", "gru", "transformer")


class CharLM(Module):
    """Embedding, a recurrent core (or causal transformer blocks), a per-step linear head.

    ``forward(idx)``: idx (N, T) int -> scores (N, T, V). ``backward(dscores)``
    accumulates every parameter's gradient (the indices have none).
    """

    def __init__(
        self,
        vocab_size: int,
        cell: str = "gru",
        hidden_size: int = 256,
        embed_dim: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        *,
        rng=None,
        dtype=np.float32,
    ):
        super().__init__()
        if cell not in CELLS:
            raise InputError(f"cell must be one of {CELLS}, got {cell!r}")
        V = positive_int("vocab_size", vocab_size)
        H = positive_int("hidden_size", hidden_size)
        E = positive_int("embed_dim", embed_dim)
        L = positive_int("num_layers", num_layers)
        dtype = resolve_dtype(dtype)
        gen = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        self.cell = cell
        if cell == "transformer":  # width H throughout; the embedding is H wide too
            self.embed = Embedding(V, H, rng=gen, dtype=dtype)
            self.layers = [TransformerBlock(H, num_heads, causal=True, activation="relu",
                                            rng=gen, dtype=dtype) for _ in range(L)]  # fmt: skip
            self.final_norm = LayerNorm(H, dtype=dtype)
        else:
            Core = {"rnn": RNN, "lstm": LSTM, "gru": GRU}[cell]
            self.embed = Embedding(V, E, rng=gen, dtype=dtype)
            self.layers = [Core(E if i == 0 else H, H, rng=gen, dtype=dtype) for i in range(L)]
        self.head = Linear(H, V, init="xavier", rng=gen, dtype=dtype)
        self._pe = np.zeros((0, H), dtype)

    def forward(self, idx: np.ndarray) -> np.ndarray:
        h = self.embed.forward(idx)
        if self.cell == "transformer":
            T = idx.shape[1]
            if self._pe.shape[0] < T:
                self._pe = F.positional_encoding(T, h.shape[2], dtype=h.dtype)
            h = h + self._pe[:T]
        for layer in self.layers:
            h = layer.forward(h)
        if self.cell == "transformer":
            h = self.final_norm.forward(h)
        return self.head.forward(h)

    def backward(self, dscores: np.ndarray) -> None:
        dh = self.head.backward(dscores)
        if self.cell == "transformer":
            dh = self.final_norm.backward(dh)
        for layer in reversed(self.layers):
            dh = layer.backward(dh)
        self.embed.backward(dh)  # the positional encoding has no parameters

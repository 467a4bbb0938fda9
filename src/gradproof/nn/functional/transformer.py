"""The transformer block (pre-LN) and the sinusoidal positional encoding.

The block composes proven pieces, each with its own forward/backward pair, and
its backward is those backwards in reverse order::

    h   = x + MHA(LN1(x))                     # multi_head_attention, layernorm
    out = h + W2 act(LN2(h) W1 + b1) + b2     # temporal_affine, gelu / relu

This is ``torch.nn.TransformerEncoderLayer(E, h, F, dropout=0.0, activation=...,
batch_first=True, norm_first=True)`` with the weights mapped (see the tests).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..._validate import cache_of, positive_int, upstream
from ...errors import InputError, InputTypeError, describe
from .activations import gelu, gelu_backward, relu, relu_backward
from .attention import multi_head_attention, multi_head_attention_backward
from .norm import layernorm, layernorm_backward
from .temporal import temporal_affine, temporal_affine_backward

__all__ = [
    "positional_encoding",
    "transformer_block",
    "transformer_block_backward",
    "TRANSFORMER_BLOCK_PARAMS",
]

#: Order of the parameters after ``x`` in :func:`transformer_block`.
TRANSFORMER_BLOCK_PARAMS = (
    "ln1_gamma", "ln1_beta",
    "Wq", "Wk", "Wv", "Wo", "bq", "bk", "bv", "bo",
    "ln2_gamma", "ln2_beta",
    "W1", "b1", "W2", "b2",
)  # fmt: skip

#: The MLP's activation: forward and backward side by side. "gelu" is the exact (erf)
#: form, torch's default; "gelu_tanh" its tanh approximation (much faster in NumPy).
ACTIVATIONS = {
    "gelu": (gelu, gelu_backward),
    "gelu_tanh": (lambda x: gelu(x, approximate="tanh"), gelu_backward),
    "relu": (relu, relu_backward),
}


def positional_encoding(T: int, E: int, base: float = 10000.0, dtype=np.float64) -> np.ndarray:
    """Sinusoidal positional encoding (Vaswani et al. 2017), shape (T, E).

    ``pe[t, 2i] = sin(t * base**(-2i/E))`` and ``pe[t, 2i+1] = cos(t * base**(-2i/E))``
    (CS231n's ``PositionalEncoding`` without its dropout). Add it to token
    embeddings (N, T, E) by broadcasting; it has no parameters and no gradient.
    """
    T, E = positive_int("T", T), positive_int("E", E)
    if not isinstance(base, (int, float)) or isinstance(base, bool) or not base > 1:
        raise InputError(f"base must be a number > 1, got {describe(base)}")
    angles = np.arange(T)[:, None] * np.power(float(base), -np.arange(0, E, 2) / E)
    pe = np.empty((T, E))
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles[:, : E // 2])
    return pe.astype(dtype, copy=False)


class TransformerBlockCache(NamedTuple):
    ln1: object
    attention: object
    ln2: object
    fc1: object
    act: object
    fc2: object
    activation: str


def transformer_block(
    x: np.ndarray,
    ln1_gamma: np.ndarray,
    ln1_beta: np.ndarray,
    Wq: np.ndarray,
    Wk: np.ndarray,
    Wv: np.ndarray,
    Wo: np.ndarray,
    bq: np.ndarray,
    bk: np.ndarray,
    bv: np.ndarray,
    bo: np.ndarray,
    ln2_gamma: np.ndarray,
    ln2_beta: np.ndarray,
    W1: np.ndarray,
    b1: np.ndarray,
    W2: np.ndarray,
    b2: np.ndarray,
    num_heads: int,
    causal: bool = False,
    activation: str = "gelu",
    eps: float = 1e-5,
) -> tuple[np.ndarray, TransformerBlockCache]:
    """A pre-LN transformer block on x (N, T, E): attention, then an MLP, both residual.

    Parameters (in :data:`TRANSFORMER_BLOCK_PARAMS` order): layer norms
    ``ln1_*``, ``ln2_*`` (E,); attention Wq Wk Wv Wo (E, E), bq bk bv bo (E,)
    (see :func:`multi_head_attention`); MLP W1 (E, F), b1 (F,), W2 (F, E), b2 (E,).
    ``num_heads`` divides E; ``causal`` masks the future (a decoder/LM);
    ``activation`` is 'gelu' (exact erf form, torch's default), 'gelu_tanh' or 'relu';
    ``eps`` is the layer norms' epsilon.

    Returns ``(out (N, T, E), cache)``.
    """
    if activation not in ACTIVATIONS:
        raise InputError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise InputTypeError(f"eps must be a positive float, got {describe(eps)}")
    act_forward, _ = ACTIVATIONS[activation]
    ln_param = {"eps": float(eps)}
    y1, ln1 = layernorm(x, ln1_gamma, ln1_beta, ln_param)
    a, attention = multi_head_attention(y1, Wq, Wk, Wv, Wo, bq, bk, bv, bo, num_heads, causal)
    h = x + a
    y2, ln2 = layernorm(h, ln2_gamma, ln2_beta, ln_param)
    u, fc1 = temporal_affine(y2, W1, b1)
    v, act = act_forward(u)
    m, fc2 = temporal_affine(v, W2, b2)
    if m.shape != h.shape:
        raise InputError(
            f"W2 must have shape (F, E) = {(v.shape[-1], h.shape[-1])}, got {W2.shape}"
        )
    return h + m, TransformerBlockCache(ln1, attention, ln2, fc1, act, fc2, activation)


def transformer_block_backward(
    dout: np.ndarray, cache: TransformerBlockCache
) -> tuple[np.ndarray, ...]:
    """Gradients of :func:`transformer_block`: ``dx`` then one per parameter, in
    :data:`TRANSFORMER_BLOCK_PARAMS` order (17 arrays, shaped like the inputs).

    dout: the output's shape (N, T, E) and dtype, checked here so that the
    message names this block rather than the inner layer that would notice.
    """
    layer = "transformer_block"
    cache = cache_of(cache, TransformerBlockCache, f"{layer}_backward", layer)
    # out = h + m: h has x's shape and ln2's input dtype, m is the second affine's output
    out_dtype = np.result_type(cache.ln2.dtypes[0], *cache.fc2)
    dout = upstream(dout, cache.ln1.xhat.shape, out_dtype, layer)
    _, act_backward = ACTIVATIONS[cache.activation]
    dv, dW2, db2 = temporal_affine_backward(dout, cache.fc2)
    dy2, dW1, db1 = temporal_affine_backward(act_backward(dv, cache.act), cache.fc1)
    dh_ln, dln2_gamma, dln2_beta = layernorm_backward(dy2, cache.ln2)
    dh = dout + dh_ln
    dy1, *dattention = multi_head_attention_backward(dh, cache.attention)
    dx_ln, dln1_gamma, dln1_beta = layernorm_backward(dy1, cache.ln1)
    return (dh + dx_ln, dln1_gamma, dln1_beta, *dattention, dln2_gamma, dln2_beta,
            dW1, db1, dW2, db2)  # fmt: skip

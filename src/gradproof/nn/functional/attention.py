"""Attention: scaled dot-product attention, multi-head self- and cross-attention.

Shapes: N sequences, S query positions, T key/value positions, E model width,
``h = num_heads`` heads of width ``E // h``. Weights use gradproof's dense
layout ``(in, out)``: a projection is ``x @ W + b`` (torch's ``nn.Linear``
stores ``W.T``).

Masks are boolean and say who may attend to whom, like the boolean
``attn_mask`` of ``torch.nn.functional.scaled_dot_product_attention`` and
CS231n's ``attn_mask``: ``mask[s, t] == True`` lets query ``s`` see key ``t``.
``causal=True`` adds ``t <= s`` (top-left aligned, as torch's ``is_causal``).
A query that may see no key at all has no defined output, so it is an error.

The transformer block and the sinusoidal positional encoding, built from these
layers, live in :mod:`.transformer`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..._validate import (
    boolean,
    cache_of,
    cast_like,
    expect_dim,
    float_array,
    nonempty_time,
    positive_int,
    upstream,
)
from ...errors import InputError, InputTypeError, describe
from .temporal import temporal_affine_backward

__all__ = [
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_backward",
    "multi_head_attention",
    "multi_head_attention_backward",
    "multi_head_cross_attention",
    "multi_head_cross_attention_backward",
    "MHA_PARAMS",
    "allowed_pairs",
]

#: Order of the projection parameters after the input(s) of the multi-head layers.
MHA_PARAMS = ("Wq", "Wk", "Wv", "Wo", "bq", "bk", "bv", "bo")


# --- masks -------------------------------------------------------------------------------
def allowed_pairs(mask, causal: bool, S: int, T: int, batch: tuple[int, ...]) -> np.ndarray | None:
    """The boolean array (broadcastable to ``batch + (S, T)``) of pairs that may attend.

    None means every pair. Raises if a query would see no key.
    """
    causal = boolean("causal", causal)
    allowed = None
    if mask is not None:
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            raise InputTypeError(
                f"mask must be a boolean numpy array (True = may attend) broadcastable to "
                f"{batch + (S, T)}, got {describe(mask)}"
            )
        try:
            np.broadcast_shapes(mask.shape, batch + (S, T))
        except ValueError:
            raise InputError(
                f"mask must be broadcastable to (..., S, T) = {batch + (S, T)}, "
                f"got shape {mask.shape}"
            ) from None
        allowed = mask
    if causal:
        tri = np.tri(S, T, dtype=bool)  # tri[s, t] = t <= s
        allowed = tri if allowed is None else allowed & tri
    if allowed is not None and not np.all(allowed.any(axis=-1)):
        where = np.argwhere(~np.broadcast_to(allowed, allowed.shape).any(axis=-1))[0]
        raise InputError(
            f"mask (with causal={causal}) leaves a query with no key to attend to, at "
            f"index {tuple(int(i) for i in where)} (batch..., query); every row of the "
            "mask needs at least one True"
        )
    return allowed


# --- scaled dot-product attention ----------------------------------------------------------
def _attend(q, k, v, allowed):
    """``softmax(q k^T / sqrt(d)) v`` over the last two axes: ``(out, probs, scale)``."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = (q @ np.swapaxes(k, -1, -2)) * scale
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs @ v, probs, scale


def _attend_backward(dout, q, k, v, probs, scale):
    """Gradients of :func:`_attend`: ``(dq, dk, dv)``.

    With ``P = softmax(S)``: ``dV = P^T dout``, ``dP = dout V^T`` and the softmax
    Jacobian gives ``dS = P * (dP - rowsum(dP * P))``; masked entries have
    ``P == 0`` and so get no gradient.
    """
    dv = np.swapaxes(probs, -1, -2) @ dout
    dprobs = dout @ np.swapaxes(v, -1, -2)
    dscores = probs * (dprobs - np.sum(dprobs * probs, axis=-1, keepdims=True))
    dscores *= scale
    return dscores @ k, np.swapaxes(dscores, -1, -2) @ q, dv


class AttentionCache(NamedTuple):
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    probs: np.ndarray
    scale: float


def scaled_dot_product_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray | None = None,
    causal: bool = False,
) -> tuple[np.ndarray, AttentionCache]:
    """``softmax(q k^T / sqrt(d) + masking) v``, batched over leading axes.

    Inputs:
    - q: queries (..., S, d); k: keys (..., T, d); v: values (..., T, dv);
      the leading axes of the three must be equal.
    - mask: optional boolean array broadcastable to (..., S, T); True = may attend.
    - causal: if True, query s sees keys t <= s only.

    Returns ``(out (..., S, dv), cache)``; the attention weights are ``cache.probs``
    (..., S, T). Backward: :func:`scaled_dot_product_attention_backward`.
    """
    for name, arr in (("q", q), ("k", k), ("v", v)):
        if float_array(name, arr).ndim < 2:
            raise InputError(f"{name} must have shape (..., length, features), got {arr.shape}")
    if k.shape[:-2] != q.shape[:-2] or v.shape[:-2] != q.shape[:-2]:
        raise InputError(
            f"q, k and v must share their leading axes, got {q.shape}, {k.shape}, {v.shape}"
        )
    expect_dim("k", k, -1, q.shape[-1], "d == q.shape[-1]")
    expect_dim("v", v, -2, k.shape[-2], "T == k.shape[-2]")
    if q.shape[-2] == 0 or k.shape[-2] == 0:
        raise InputError(
            f"q and k need at least one position each (S, T >= 1), got {q.shape}, {k.shape}"
        )
    allowed = allowed_pairs(mask, causal, q.shape[-2], k.shape[-2], q.shape[:-2])
    out, probs, scale = _attend(q, k, v, allowed)
    return out, AttentionCache(q, k, v, probs, scale)


def scaled_dot_product_attention_backward(
    dout: np.ndarray, cache: AttentionCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`scaled_dot_product_attention`: ``(dq, dk, dv)`` (the mask has none).

    dout: the output's shape (..., S, dv) and dtype.
    """
    layer = "scaled_dot_product_attention"
    cache = cache_of(cache, AttentionCache, f"{layer}_backward", layer)
    q, v = cache.q, cache.v
    dout = upstream(dout, (*q.shape[:-1], v.shape[-1]), np.result_type(cache.probs, v), layer)
    dq, dk, dv = _attend_backward(dout, *cache)
    return cast_like(dq, cache.q), cast_like(dk, cache.k), cast_like(dv, cache.v)


# --- multi-head attention -------------------------------------------------------------------
def _split_heads(a: np.ndarray, h: int) -> np.ndarray:
    """(N, L, E) -> (N, h, L, E // h)."""
    N, L, E = a.shape
    return a.reshape(N, L, h, E // h).transpose(0, 2, 1, 3)


def _merge_heads(a: np.ndarray) -> np.ndarray:
    """(N, h, L, e) -> (N, L, h * e)."""
    N, h, L, e = a.shape
    return a.transpose(0, 2, 1, 3).reshape(N, L, h * e)


class MHACache(NamedTuple):
    inputs: tuple[np.ndarray, np.ndarray, np.ndarray]  # query, key and value inputs
    params: tuple[np.ndarray, ...]  # Wq, Wk, Wv, Wo, bq, bk, bv, bo
    heads: tuple[np.ndarray, np.ndarray, np.ndarray]  # Q, K, V split in heads
    probs: np.ndarray  # (N, h, S, T)
    scale: float
    merged: np.ndarray  # (N, S, E): the heads' outputs side by side, before Wo


def _check_mha(xq, xk, xv, params, num_heads):
    num_heads = positive_int("num_heads", num_heads)
    if len(params) != len(MHA_PARAMS):
        raise InputError(f"expected the {len(MHA_PARAMS)} parameters {MHA_PARAMS}")
    Wq, Wk, Wv, Wo, bq, bk, bv, bo = params
    float_array("Wq", Wq, "Eq E")
    E = Wq.shape[1]
    if num_heads < 1 or E % num_heads:
        raise InputError(
            f"num_heads must be a positive divisor of E == Wq.shape[1] == {E}, got {num_heads}"
        )
    for name, arr, rows in (("Wk", Wk, "Ek E"), ("Wv", Wv, "Ev E"), ("Wo", Wo, "E Eo")):
        float_array(name, arr, rows)
    expect_dim("Wk", Wk, 1, E, "E == Wq.shape[1]")
    expect_dim("Wv", Wv, 1, E, "E == Wq.shape[1]")
    expect_dim("Wo", Wo, 0, E, "E == Wq.shape[1]")
    for name, b, w in (("bq", bq, Wq), ("bk", bk, Wk), ("bv", bv, Wv), ("bo", bo, Wo)):
        float_array(name, b, "E")
        expect_dim(name, b, 0, w.shape[1], f"W{name[1]}.shape[1]")
    for name, arr, w, wname in (
        ("query", xq, Wq, "Wq"),
        ("key", xk, Wk, "Wk"),
        ("value", xv, Wv, "Wv"),
    ):
        float_array(name, arr, "N L E")
        nonempty_time(name, arr)
        expect_dim(name, arr, 0, xq.shape[0], "N == query.shape[0]")
        expect_dim(name, arr, 2, w.shape[0], f"{wname}.shape[0]")
    expect_dim("value", xv, 1, xk.shape[1], "T == key.shape[1]")


def _mha_forward(xq, xk, xv, params, num_heads, mask, causal):
    """Multi-head attention of queries from ``xq`` (N, S, Eq) over keys ``xk`` and values
    ``xv`` (N, T, Ek/Ev): ``(out (N, S, Eo), MHACache)``."""
    _check_mha(xq, xk, xv, params, num_heads)
    Wq, Wk, Wv, Wo, bq, bk, bv, bo = params
    S, T = xq.shape[1], xk.shape[1]
    if isinstance(mask, np.ndarray) and mask.ndim == 3:  # (N, S, T): same mask for every head
        mask = mask[:, None]
    allowed = allowed_pairs(mask, causal, S, T, (xq.shape[0], num_heads))
    heads = tuple(
        _split_heads(x @ W + b, num_heads) for x, W, b in ((xq, Wq, bq), (xk, Wk, bk), (xv, Wv, bv))
    )
    attended, probs, scale = _attend(*heads, allowed)
    merged = _merge_heads(attended)
    return merged @ Wo + bo, MHACache((xq, xk, xv), tuple(params), heads, probs, scale, merged)


def _mha_backward(dout, cache: MHACache, layer: str):
    """``(dquery, dkey, dvalue, dWq, dWk, dWv, dWo, dbq, dbk, dbv, dbo)``, input dtypes kept.

    ``layer`` is the forward's name, for the messages about ``dout`` and ``cache``.
    """
    cache = cache_of(cache, MHACache, f"{layer}_backward", layer)
    Wq, Wk, Wv, Wo, bq, bk, bv, bo = cache.params
    merged = cache.merged
    dout = upstream(dout, (*merged.shape[:-1], Wo.shape[1]), np.result_type(merged, Wo, bo), layer)
    dmerged, dWo, dbo = temporal_affine_backward(dout, (merged, Wo, bo))
    num_heads = cache.probs.shape[1]
    dheads = _attend_backward(
        _split_heads(dmerged, num_heads), *cache.heads, cache.probs, cache.scale
    )
    grads_in, grads_w, grads_b = [], [], []
    for x, W, b, dhead in zip(cache.inputs, (Wq, Wk, Wv), (bq, bk, bv), dheads):
        dx, dW, db = temporal_affine_backward(_merge_heads(dhead), (x, W, b))
        grads_in.append(dx)
        grads_w.append(dW)
        grads_b.append(db)
    # The key bias adds q . bk to every score of a query row, a shift the softmax
    # ignores: its gradient is exactly zero. Summing dK gives rounding noise
    # (~1e-17) instead, so we return the exact value.
    grads_b[1] = np.zeros_like(bk)
    return (*grads_in, *grads_w, dWo, *grads_b, dbo)  # each in its input's dtype


def multi_head_attention(
    x: np.ndarray,
    Wq: np.ndarray,
    Wk: np.ndarray,
    Wv: np.ndarray,
    Wo: np.ndarray,
    bq: np.ndarray,
    bk: np.ndarray,
    bv: np.ndarray,
    bo: np.ndarray,
    num_heads: int,
    causal: bool = False,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, MHACache]:
    """Multi-head self-attention on ``x`` (N, T, E).

    ``Q = x Wq + bq``, ``K = x Wk + bk``, ``V = x Wv + bv`` (each (N, T, E)) are
    split into ``num_heads`` heads of width ``E // num_heads``; every head
    attends with :func:`scaled_dot_product_attention`; the heads are put side by
    side and projected: ``out = concat(heads) Wo + bo``.

    Inputs: x (N, T, E), Wq Wk Wv Wo (E, E), bq bk bv bo (E,); ``num_heads`` must
    divide E; ``causal``; ``mask`` boolean (T, T) or (N, T, T), True = may attend.
    Returns ``(out (N, T, E), cache)``; ``cache.probs`` (N, h, T, T) are the weights.
    Equals ``torch.nn.MultiheadAttention(E, h, batch_first=True)`` with
    ``in_proj_weight = concat(Wq, Wk, Wv, axis=1).T`` and ``out_proj.weight = Wo.T``.
    """
    return _mha_forward(x, x, x, (Wq, Wk, Wv, Wo, bq, bk, bv, bo), num_heads, mask, causal)


def multi_head_attention_backward(dout: np.ndarray, cache: MHACache) -> tuple[np.ndarray, ...]:
    """Gradients of :func:`multi_head_attention`:
    ``(dx, dWq, dWk, dWv, dWo, dbq, dbk, dbv, dbo)``; dx sums the query, key and value paths."""
    dq, dk, dv, *dparams = _mha_backward(dout, cache, "multi_head_attention")
    return (dq + dk + dv, *dparams)


def multi_head_cross_attention(
    x: np.ndarray,
    context: np.ndarray,
    Wq: np.ndarray,
    Wk: np.ndarray,
    Wv: np.ndarray,
    Wo: np.ndarray,
    bq: np.ndarray,
    bk: np.ndarray,
    bv: np.ndarray,
    bo: np.ndarray,
    num_heads: int,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, MHACache]:
    """Multi-head cross-attention: queries from ``x`` (N, S, E), keys and values from
    ``context`` (N, T, Ec) (a decoder attending to an encoder's output).

    Wq (E, E), Wk Wv (Ec, E), Wo (E, E), biases (E,); ``mask`` boolean (S, T) or
    (N, S, T). Returns ``(out (N, S, E), cache)``.
    """
    params = (Wq, Wk, Wv, Wo, bq, bk, bv, bo)
    return _mha_forward(x, context, context, params, num_heads, mask, False)


def multi_head_cross_attention_backward(
    dout: np.ndarray, cache: MHACache
) -> tuple[np.ndarray, ...]:
    """Gradients of :func:`multi_head_cross_attention`:
    ``(dx, dcontext, dWq, dWk, dWv, dWo, dbq, dbk, dbv, dbo)``."""
    dq, dk, dv, *dparams = _mha_backward(dout, cache, "multi_head_cross_attention")
    return (dq, dk + dv, *dparams)


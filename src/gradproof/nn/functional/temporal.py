"""Temporal layers: an affine map and a masked softmax loss applied at every time step.

These turn a recurrent net's hidden states (N, T, H) into scores over a
vocabulary (N, T, V) and a loss against the next tokens, as in CS231n's
captioning and language models.
"""

from __future__ import annotations

import numpy as np

from ..._validate import (
    affine_cache,
    bool_mask,
    check_finite,
    expect_dim,
    float_array,
    index_array,
    nonempty_time,
    upstream,
)
from ...errors import InputError
from .dense import affine_backward

__all__ = [
    "temporal_affine",
    "temporal_affine_backward",
    "temporal_affine_forward",
    "temporal_softmax_loss",
]


def temporal_affine(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """The same affine map at every step: ``out[n, t] = x[n, t] @ w + b``.

    x (N, T, D), w (D, M), b (M,) -> ``(out (N, T, M), cache)``.
    """
    float_array("x", x, "N T D")
    nonempty_time("x", x)
    float_array("w", w, "D M")
    expect_dim("w", w, 0, x.shape[2], "D == x.shape[2]")
    float_array("b", b, "M")
    expect_dim("b", b, 0, w.shape[1], "M == w.shape[1]")
    return x @ w + b, (x, w, b)


def temporal_affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    """Gradients of :func:`temporal_affine`: ``(dx (N, T, D), dw (D, M), db (M,))``.

    dout: the output's shape (N, T, M) and dtype.
    """
    x, w, b = affine_cache(cache, "temporal_affine", x_ndim=3)
    dout = upstream(dout, (*x.shape[:-1], w.shape[1]), np.result_type(x, w, b), "temporal_affine")
    N, T, D = x.shape
    # the same affine map at N*T rows: its gradients are affine's, rows and columns kept
    dx, dw, db = affine_backward(dout.reshape(N * T, w.shape[1]), (x.reshape(N * T, D), w, b))
    return dx.reshape(x.shape), dw, db


temporal_affine_forward = temporal_affine


def temporal_softmax_loss(
    x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy at every time step, summed over time, averaged over N (CS231n).

    ``loss = -(1/N) * sum_{n,t} mask[n,t] * log softmax(x[n,t])[y[n,t]]``.

    Inputs:
    - x: scores, float array (N, T, V).
    - y: targets, integer array (N, T) with values in [0, V).
    - mask: boolean array (N, T); False steps (padding) add nothing to the loss
      nor to the gradient. None means every step counts.

    Returns ``(loss, dx)``: a Python float and ``dx`` (N, T, V) in x's dtype.
    """
    float_array("x", x, "N T V")
    nonempty_time("x", x)
    # refused as softmax_loss refuses it (padded steps included: their scores diverged too)
    check_finite("x", x, "a NaN or infinity in the scores usually means the forward pass "
                 "diverged")
    N, T, V = x.shape
    y = index_array("y", y, V, "V = x.shape[2]")
    if y.shape != (N, T):
        raise InputError(f"y must have shape (N, T) = {(N, T)}, got {y.shape}")
    mask = np.ones((N, T), bool) if mask is None else bool_mask("mask", mask, (N, T), "N, T")

    shifted = x - x.max(axis=2, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
    picked = np.take_along_axis(log_probs, y[..., None], axis=2)[..., 0]  # (N, T)
    loss = -float(np.sum(picked, where=mask)) / N

    dx = np.exp(log_probs)
    np.put_along_axis(dx, y[..., None], np.take_along_axis(dx, y[..., None], axis=2) - 1, axis=2)
    dx *= mask[..., None] / N
    return loss, dx

"""Dense (fully connected) layers: ``affine`` and the fused ``affine_relu``.

Every public function validates its arguments with :mod:`gradproof._validate`,
so that errors name the argument, what was expected and what was got.

Shapes (CS231n)::

    out, cache = affine(x, w, b)       # x (N, d1, ..., dk), w (D, M), b (M,), out (N, M)
    dx, dw, db = affine_backward(dout, cache)   # shapes and dtypes of x, w, b

with ``D = d1 * ... * dk``: each example is flattened to a row vector.
"""

from __future__ import annotations

import math

import numpy as np

from ..._validate import affine_cache, check_shape, float_array, upstream
from ...errors import InputError, InputTypeError, describe

__all__ = [
    "affine",
    "affine_backward",
    "affine_relu",
    "affine_relu_backward",
    # CS231n names
    "affine_forward",
    "affine_relu_forward",
]


# --- affine ---------------------------------------------------------------------
def _check_affine_inputs(x: object, w: object, b: object) -> tuple[np.ndarray, ...]:
    x, w, b = float_array("x", x), float_array("w", w), float_array("b", b)
    if x.ndim < 2:
        raise InputError(
            f"x must have shape (N, d1, ..., dk) with at least 2 dimensions, got {x.shape}; "
            "for a single example use x[None]"
        )
    if w.ndim != 2:
        raise InputError(f"w must have shape (D, M) (2 dimensions), got {w.shape}")
    D = math.prod(x.shape[1:])
    if w.shape[0] != D:
        raise InputError(
            f"w must have shape (D, M) with D = prod(x.shape[1:]) = {D} for x of shape "
            f"{x.shape}, got {w.shape}"
        )
    check_shape("b", b, (w.shape[1],), "(M,) with M = w.shape[1]")
    return x, w, b


def affine(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Affine (fully connected) layer: ``out = x.reshape(N, D) @ w + b``.

    Args:
        x: inputs, shape (N, d1, ..., dk); each example is flattened to D = d1*...*dk.
        w: weights, shape (D, M).
        b: biases, shape (M,).

    Returns:
        out: shape (N, M), dtype ``np.result_type(x, w, b)``.
        cache: ``(x, w, b)``, as in CS231n.
    """
    x, w, b = _check_affine_inputs(x, w, b)
    out = x.reshape(x.shape[0], w.shape[0]) @ w + b  # explicit D: an empty batch works too
    return out, (x, w, b)


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`affine`.

    Args:
        dout: upstream gradient, shape (N, M).
        cache: ``(x, w, b)`` from :func:`affine`.

    Returns:
        dx: shape (N, d1, ..., dk), dtype of x: ``dout @ w.T`` reshaped like x.
        dw: shape (D, M), dtype of w: ``x.reshape(N, D).T @ dout``.
        db: shape (M,), dtype of b: ``dout.sum(axis=0)``.
    """
    x, w, b = affine_cache(cache, "affine")
    dout = upstream(dout, (x.shape[0], w.shape[1]), np.result_type(x, w, b), "affine")
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], w.shape[0]).T @ dout
    db = dout.sum(axis=0)
    return (
        dx.astype(x.dtype, copy=False),
        dw.astype(w.dtype, copy=False),
        db.astype(b.dtype, copy=False),
    )


# --- fused affine + ReLU -------------------------------------------------------
def affine_relu(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Fused affine layer followed by a ReLU: ``out = max(0, x.reshape(N, D) @ w + b)``.

    Same shapes as :func:`affine`; the ReLU is applied in place on the affine
    output, so only one (N, M) array is allocated. Returns ``(out, cache)``
    with ``cache = (affine_cache, out)``.
    """
    out, affine_cache = affine(x, w, b)
    np.maximum(out, 0, out=out)
    return out, (affine_cache, out)


def affine_relu_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`affine_relu`: ``(dx, dw, db)`` with x's, w's and b's shapes.

    The ReLU's gradient at exactly 0 is 0 (the subgradient torch uses): the
    output is positive exactly where the pre-activation was.
    """
    if not (isinstance(cache, tuple) and len(cache) == 2):
        raise InputTypeError(
            "cache must be the (affine_cache, out) tuple returned by affine_relu(), "
            f"got {describe(cache)}"
        )
    affine_cache, out = cache
    dout = upstream(dout, out.shape, out.dtype, "affine_relu")
    return affine_backward(dout * (out > 0), affine_cache)


# CS231n names: the same functions.
affine_forward = affine
affine_relu_forward = affine_relu

"""Argument checks and small numerical pieces shared by the sequence layers.

Embeddings, recurrences and attention validate the same things (a float array
of a given rank, a dimension that must match another array's, a non-empty time
axis, integer indices in range) and share two small numerical pieces (the
gradients of an affine map, dtype-keeping casts); they are named here once.
"""

from __future__ import annotations

import numpy as np

from ...errors import InputError, InputTypeError, describe
from ._checks import float_array as _float_array

__all__ = [
    "float_array",
    "expect_dim",
    "nonempty_time",
    "index_array",
    "bool_mask",
    "affine_grads",
    "cast_like",
]


def float_array(name: str, value, axes: str) -> np.ndarray:
    """``value`` if it is a real floating ndarray whose rank is ``len(axes.split())``.

    ``axes`` spells the expected shape for the message, e.g. ``"N T D"``.
    """
    return _float_array(name, value, "(" + ", ".join(axes.split()) + ")")


def expect_dim(name: str, value: np.ndarray, axis: int, expected: int, why: str) -> None:
    """Raise unless ``value.shape[axis] == expected``; ``why`` says where ``expected`` comes from.

    Example message: ``Wh must have shape[0] == H == h0.shape[1] == 4, got shape (5, 16)``.
    """
    if value.shape[axis] != expected:
        raise InputError(
            f"{name} must have shape[{axis}] == {why} == {expected}, got shape {value.shape}"
        )


def nonempty_time(name: str, value: np.ndarray, axis: int = 1) -> None:
    """Raise for an empty time axis (T == 0) or an empty batch (N == 0)."""
    if value.shape[axis] == 0:
        raise InputError(
            f"{name} must have at least one time step (T >= 1 on axis {axis}), "
            f"got shape {value.shape}"
        )
    if value.shape[0] == 0:
        raise InputError(
            f"{name} must have at least one sequence (N >= 1), got shape {value.shape}"
        )


def index_array(name: str, value, upper: int, upper_name: str) -> np.ndarray:
    """``value`` as an integer array with every entry in ``[0, upper)``.

    Floats and booleans are refused even when they hold whole numbers: an index
    that arrives as a float usually means labels and data were swapped.
    """
    arr = np.asarray(value) if isinstance(value, (list, tuple)) else value
    if (
        not isinstance(arr, np.ndarray)
        or not np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == np.bool_
    ):
        raise InputTypeError(
            f"{name} must be an integer numpy array of indices, got {describe(value)}; "
            f"convert with {name}.astype(np.int64) if the values are whole numbers"
        )
    if arr.size:
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high >= upper:
            bad = low if low < 0 else high
            raise InputError(
                f"{name} must hold indices in [0, {upper_name}) = [0, {upper}), "
                f"got {bad} at position {tuple(int(i) for i in np.argwhere(arr == bad)[0])}"
            )
    return arr


def bool_mask(name: str, value, shape: tuple[int, ...], axes: str) -> np.ndarray:
    """``value`` as a boolean array of ``shape`` (0/1 integers are accepted as booleans)."""
    arr = np.asarray(value) if isinstance(value, (list, tuple)) else value
    if not isinstance(arr, np.ndarray) or not (
        arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer)
    ):
        raise InputTypeError(
            f"{name} must be a boolean numpy array of shape ({axes}) = {shape}, "
            f"got {describe(value)}"
        )
    if arr.shape != shape:
        raise InputError(f"{name} must have shape ({axes}) = {shape}, got {arr.shape}")
    if arr.dtype != np.bool_:
        if np.any((arr != 0) & (arr != 1)):
            raise InputError(f"{name} must hold booleans or 0/1, got values {np.unique(arr)}")
        arr = arr.astype(bool)
    return arr


def affine_grads(
    x: np.ndarray, w: np.ndarray, da: np.ndarray, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of ``a = x @ w + b`` over any leading axes: ``(dx, dw, db)``.

    ``x`` (..., K), ``w`` (K, M), ``da`` (..., M); the leading axes are summed
    for ``dw`` (K, M) and ``db`` (M,). ``dx`` is skipped (None) when not needed.
    """
    x2 = x.reshape(-1, x.shape[-1])
    da2 = da.reshape(-1, da.shape[-1])
    dx = (da @ w.T) if need_dx else None
    return dx, x2.T @ da2, da2.sum(axis=0)


def cast_like(grad: np.ndarray | None, like: np.ndarray) -> np.ndarray | None:
    """``grad`` in the dtype of the input it belongs to (gradients keep their input's dtype)."""
    if grad is None or grad.dtype == like.dtype:
        return grad
    return grad.astype(like.dtype)

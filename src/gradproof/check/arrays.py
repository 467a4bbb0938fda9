"""Array helpers for the checker: which inputs are checked, snapshots, precision.

The checker must notice when user code writes into arrays it does not own
(inputs, the cache, the upstream gradient), so it keeps deep snapshots of
every array it hands out and compares them afterwards.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = [
    "is_float_array",
    "machine_eps",
    "safe_norm",
    "inner",
    "default_step",
    "complex_step",
    "iter_arrays",
    "snapshot",
    "changed_arrays",
    "first_difference",
    "perturbation_scale",
]


def is_float_array(value: Any) -> bool:
    """True for NumPy arrays of a real floating dtype (the inputs the checker checks)."""
    return isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)


def inner(a, b) -> float:
    """``sum(a * b)`` over C-order elements, in float64.

    Not ``np.vdot``: it flattens an F-ordered array in memory order, which
    silently transposes it (and would hide a transposed gradient).
    """
    return float(np.dot(np.ravel(np.asarray(a, dtype=np.float64)),
                        np.ravel(np.asarray(b, dtype=np.float64))))


def safe_norm(a: np.ndarray) -> float:
    """Euclidean norm that does not overflow for values near the float64 limit."""
    a = np.asarray(a, dtype=np.float64)
    m = float(np.max(np.abs(a))) if a.size else 0.0
    if m == 0.0 or not np.isfinite(m):
        return m
    return m * float(np.sqrt(np.sum((a / m) ** 2)))


def machine_eps(dtype: np.dtype) -> float:
    """Unit round-off of a floating dtype (2.2e-16 for float64, 1.2e-7 for float32)."""
    return float(np.finfo(dtype).eps)


def default_step(dtype: np.dtype, order: int = 2) -> float:
    """Relative step for central differences in ``dtype``.

    The truncation error of a central difference grows like ``h**2`` and the
    rounding error like ``eps / h``; their sum is smallest near ``eps ** (1/3)``
    (6e-6 in float64, 4.9e-3 in float32). The checker then measures the actual
    error with a second step and adapts. A difference whose truncation error
    is ``O(h**order)`` balances at ``eps ** (1 / (order + 1))``: ``order=4``
    for steps ``h`` and ``h/2`` combined by Richardson extrapolation
    (``eps ** (1/5)``, 7.4e-4 in float64).
    """
    return float(machine_eps(dtype) ** (1.0 / (order + 1)))


def complex_step(dtype: np.dtype) -> float:
    """Step ``t`` of a complex-step derivative ``Im f(x + i t) / t`` in ``dtype``'s precision.

    No difference is taken, so nothing cancels and the step can be tiny: its
    truncation error ``O(t**2)`` then vanishes below rounding (1e-20 for float64,
    1e-8 for float32, whose complex64 arithmetic would lose a smaller ``t``).
    """
    return 1e-8 if np.dtype(dtype) == np.float32 else 1e-20


def iter_arrays(value: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(path, array)`` for every ndarray inside a cache-like structure.

    Walks tuples, lists, dicts, objects' ``__dict__`` and the cells of a
    closure (so closure-style backward functions are covered too). Depth is
    limited: caches are shallow in practice and a deep walk could be slow.
    """
    if depth > 4:
        return
    if isinstance(value, np.ndarray):
        yield path or "cache", value
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from iter_arrays(item, f"{path}[{i}]", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_arrays(item, f"{path}[{key!r}]", depth + 1)
    elif callable(value) and getattr(value, "__closure__", None):
        names = value.__code__.co_freevars
        for name, cell in zip(names, value.__closure__):
            try:
                content = cell.cell_contents
            except ValueError:  # empty cell
                continue
            yield from iter_arrays(content, f"{path}<{name}>", depth + 1)
    elif hasattr(value, "__dict__") and not isinstance(value, type) and not callable(value):
        for key, item in vars(value).items():
            yield from iter_arrays(item, f"{path}.{key}", depth + 1)


def snapshot(value: Any) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Deep copies of the arrays inside ``value``: ``(path, live array, copy)``."""
    return [(path, arr, arr.copy()) for path, arr in iter_arrays(value)]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if np.issubdtype(a.dtype, np.inexact):
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def changed_arrays(snap: list[tuple[str, np.ndarray, np.ndarray]]) -> list[str]:
    """Paths of the snapshotted arrays whose contents changed since the snapshot."""
    return [path for path, live, saved in snap if not _same(live, saved)]


def first_difference(a: np.ndarray, b: np.ndarray) -> tuple[tuple[int, ...], int]:
    """Coordinate of the largest difference between two same-shape arrays and the count."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    diff = np.abs(a64 - b64)
    diff = np.where(np.isnan(a64) != np.isnan(b64), np.inf, np.nan_to_num(diff))
    count = int(np.count_nonzero(diff))
    flat = int(np.argmax(diff)) if diff.size else 0
    return tuple(int(i) for i in np.unravel_index(flat, a.shape)), count


def deepcopy_inputs(inputs: tuple) -> tuple:
    """Fresh copies of the inputs, so that no call can corrupt the caller's arrays."""
    return tuple(x.copy() if isinstance(x, np.ndarray) else copy.deepcopy(x) for x in inputs)


def perturbation_scale(x: np.ndarray) -> np.ndarray:
    """Per-coordinate perturbation scale: ``|x_k|``, capped by the spread of the input.

    Relative steps keep small positive values (log near 0) inside their domain
    and large values above their rounding; the cap at the input's standard
    deviation keeps values with a large common offset (1e3 + noise) from being
    perturbed far beyond the scale on which the function varies. Exact zeros
    get the spread (or 1 for an all-zero input).
    """
    x64 = np.abs(x.astype(np.float64)).ravel()
    if not x64.size:
        return x64
    with np.errstate(over="ignore", invalid="ignore"):
        spread = float(np.std(x.astype(np.float64)))
    if not (spread > 0 and np.isfinite(spread)):
        spread = float(np.max(x64)) if np.max(x64) > 0 else 1.0
    return np.where(x64 > 0, np.minimum(x64, spread), spread)

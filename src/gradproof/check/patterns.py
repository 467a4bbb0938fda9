"""What a mismatch looks like: a constant factor, a sign, zeros, a transpose, a slice.

Given single-coordinate measurements ``(coordinate, analytic, numeric)`` at the
coordinates found wrong, these functions name the pattern in plain language so
that the report says *what kind* of bug it looks like, not only where.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .report import Finding

__all__ = ["describe_mismatch", "shared_index", "factor_candidates"]

Sample = tuple[tuple[int, ...], float, float]  # (coordinate, analytic, numeric)


def factor_candidates(shapes: Sequence[tuple[str, tuple[int, ...]]]) -> list[tuple[float, str]]:
    """Constants a gradient is commonly off by, with a name: 2, and every dimension size."""
    cands: list[tuple[float, str]] = [(2.0, "2")]
    seen = {2}
    for label, shape in shapes:
        for axis, size in enumerate(shape):
            if size > 2 and size not in seen:
                seen.add(size)
                cands.append((float(size), f"{size} = size of axis {axis} of {label}"))
    return cands


def _name_factor(r: float, cands: list[tuple[float, str]], rtol: float = 1e-3) -> str:
    for value, name in cands:
        if abs(r - value) <= rtol * value:
            return f"the analytic gradient is {name} times too large"
        if abs(r - 1 / value) <= rtol / value:
            return f"the analytic gradient is {name} times too small"
    if 0 < r < 1:
        return f"1/{1 / r:.4g} (a dropout keep probability or a scale missing?)"
    return f"{r:.4g}"


def describe_mismatch(
    label: str,
    samples: Sequence[Sample],
    grad: np.ndarray,
    cands: list[tuple[float, str]],
    input_index: int,
    rel_tol: float = 0.0,
) -> list[Finding]:
    """Name the pattern of the wrong coordinates of one input, when there is one.

    ``rel_tol`` is the relative accuracy of the numeric values (float32
    measurements are far less precise than float64 ones).
    """
    rtol = max(2e-3, 4 * rel_tol)
    if not samples:
        return []
    a = np.array([s[1] for s in samples])
    n = np.array([s[2] for s in samples])
    found: list[Finding] = []
    nonzero_n = np.abs(n) > 0
    if np.all(a == 0) and np.any(nonzero_n):
        found.append(Finding(
            f"input {label}: the analytic gradient is exactly 0 at {len(samples)} coordinate(s) "
            "where the numerical one is not: a term never added, a mask that drops it, or a "
            "slice of the gradient never written",
            "zeros", input_index,
        ))
        return found
    if np.all(nonzero_n):
        ratios = a / n
        med = float(np.median(ratios))
        if len(samples) >= 2 and np.all(np.abs(ratios - med) <= rtol * abs(med) + 1e-12):
            if abs(med + 1) <= rtol:
                found.append(Finding(
                    f"input {label}: the analytic gradient has the wrong sign "
                    f"(analytic = -1 x numeric at {len(samples)} coordinates)",
                    "sign", input_index,
                ))
            elif abs(med) > 1e-12 and abs(med - 1) > rtol:
                # (a ratio within rtol of 1 says only that the error is small)
                found.append(Finding(
                    f"input {label}: analytic = {med:.6g} x numeric at every coordinate "
                    f"checked ({len(samples)}): a constant factor; "
                    + _name_factor(med, cands, rtol),
                    "factor", input_index,
                ))
            return found
    if grad.ndim == 2 and grad.shape[0] == grad.shape[1] and len(samples) >= 2:
        gt = np.array([grad[c[1], c[0]] for c, _, _ in samples])
        if np.allclose(gt, n, rtol=1e-4, atol=1e-12 * np.max(np.abs(n))):
            found.append(Finding(
                f"input {label}: the analytic gradient looks transposed "
                "(analytic[j, i] matches numeric[i, j]); check the order of a matmul",
                "transpose", input_index,
            ))
    return found


def shared_index(
    coords: Sequence[tuple[int, ...]], shape: tuple[int, ...]
) -> list[tuple[int, int]]:
    """Axes along which every coordinate has the same index: ``[(axis, index), ...]``."""
    if len(coords) < 2 or len(shape) < 2:
        return []
    arr = np.array(coords)
    out = []
    for axis in range(len(shape)):
        if shape[axis] > 1 and np.all(arr[:, axis] == arr[0, axis]):
            out.append((axis, int(arr[0, axis])))
    return out

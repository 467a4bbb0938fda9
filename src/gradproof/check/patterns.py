"""What a mismatch looks like: a constant factor, a sign, zeros, a transpose, a slice.

Given single-coordinate measurements ``(coordinate, analytic, numeric)`` at the
coordinates found wrong, these functions name the pattern in plain language so
that the report says *what kind* of bug it looks like, not only where.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .report import Finding

__all__ = ["describe_mismatch", "shared_index", "factor_candidates", "describe_region",
           "describe_samples", "index_text"]

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
    scale_a = float(np.max(np.abs(a)))
    if len(samples) >= 2 and scale_a > 0 and np.all(np.abs(n) <= 1e-6 * scale_a):
        found.append(Finding(
            f"input {label}: the numerical gradient is 0 at {len(samples)} coordinate(s) where "
            "the analytic one is not: these coordinates do not affect the output (padding, "
            "a masked or dropped unit, an ignored label) but the backward sends gradient to "
            "them; apply the forward's mask in the backward too",
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


def index_text(indices: np.ndarray | None, size: int) -> str:
    """One axis of a NumPy index: ``:``, ``40``, ``5::16``, ``[1, 7, 9]``."""
    if indices is None or len(indices) == size:
        return ":"
    idx = [int(v) for v in indices]
    if len(idx) == 1:
        return str(idx[0])
    step = idx[1] - idx[0]
    if len(idx) >= 3 and all(b - a == step for a, b in zip(idx, idx[1:])):
        stop = "" if idx[-1] + step >= size else str(idx[-1] + 1)
        start = "" if idx[0] == 0 else str(idx[0])
        return f"{start}:{stop}" if step == 1 else f"{start}:{stop}:{step}"
    shown = ", ".join(str(v) for v in idx[:8]) + (", ..." if len(idx) > 8 else "")
    return f"[{shown}]"


def _name(label: str) -> str:
    """``"1 (w)"`` -> ``"w"``; ``"2"`` -> ``"input 2"``."""
    if "(" in label:
        return label[label.index("(") + 1:label.rindex(")")]
    return f"input {label}"


def describe_region(label: str, shape: tuple[int, ...],
                    axis_sets: Sequence[np.ndarray | None] | None) -> str:
    """The region found by the axis group tests as an index: ``w[:, 40]``,
    ``v[:, :, 5::16]`` (every 16th feature from 5); ``""`` when it is everything."""
    if not axis_sets or all(a is None or len(a) == s for a, s in zip(axis_sets, shape)):
        return ""
    parts = [index_text(a, s) for a, s in zip(axis_sets, shape)]
    text = f"{_name(label)}[{', '.join(parts)}]"
    notes = []
    for axis, a in enumerate(axis_sets):
        part = parts[axis]
        if a is not None and part.count(":") == 2 and len(a) >= 3:
            notes.append(f"every {a[1] - a[0]}th index along axis {axis}")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def describe_samples(label: str, shape: tuple[int, ...], coords: Sequence[tuple[int, ...]],
                     good: Sequence[tuple[int, ...]], others: Sequence, input_index: int
                     ) -> list[Finding]:
    """Patterns in the wrong coordinates found: the entries an integer input
    indexes (a loss's label entries), the border of an image."""
    found: list[Finding] = []
    if len(coords) < 2 or len(shape) < 2:
        return found
    arr = np.array(coords)
    name = _name(label)
    # entries indexed by an integer input: x[n, y[n]]
    for j, y in enumerate(others):
        if not (isinstance(y, np.ndarray) and np.issubdtype(y.dtype, np.integer)):
            continue
        if y.shape == shape[:1] and len(shape) == 2:
            if np.all(y[arr[:, 0]] == arr[:, 1]):
                found.append(Finding(
                    f"input {label}: every wrong coordinate found is an entry {name}[n, y[n]] "
                    f"picked by the integer input {j} (one entry per row: a loss's label "
                    f"entries, {len(coords)} of them checked)", "pattern", input_index))
                return found
        if y.shape == shape[:-1] and len(shape) >= 2:
            if np.all(y[tuple(arr[:, :-1].T)] == arr[:, -1]):
                found.append(Finding(
                    f"input {label}: every wrong coordinate found is an entry picked by the "
                    f"integer input {j} along the last axis ({len(coords)} checked)",
                    "pattern", input_index))
                return found
    # the border of the last two (spatial) axes
    if len(shape) >= 3 and len(coords) >= 3:
        h, w = shape[-2], shape[-1]
        if h >= 4 and w >= 4:
            on_border = ((arr[:, -2] == 0) | (arr[:, -2] == h - 1)
                         | (arr[:, -1] == 0) | (arr[:, -1] == w - 1))
            share = 1 - (h - 2) * (w - 2) / (h * w)  # of all coordinates, on the border
            if on_border.all() and share ** len(coords) < 0.02:  # hardly by chance
                found.append(Finding(
                    f"input {label}: every wrong coordinate found lies on the border of the "
                    f"last two axes ({len(coords)} checked): padding or edge handling?",
                    "pattern", input_index))
                return found
    return found

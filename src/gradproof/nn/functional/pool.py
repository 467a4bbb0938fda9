"""Pooling layers: max and average over sliding windows, any window and stride.

Shapes (CS231n)::

    out, cache = max_pool2d(x, pool_height=2, pool_width=2, stride=2)  # x (N, C, H, W)
    dx = max_pool2d_backward(dout, cache)        # out, dout (N, C, H', W')
    out, cache = max_pool1d(x, pool_size=2, stride=2)                  # x (N, C, L)

with ``H' = 1 + (H - pool_height) // stride`` and ``W' = 1 + (W - pool_width) // stride``
(rows and columns that do not fill a window are ignored, as in CS231n and PyTorch).

Vectorised over pixels, looped over the (few) positions ``(di, dj)`` inside a
window: for each position, :meth:`Windows.at_offset` is the strided *view* of
element ``(di, dj)`` of every window, shape (N, C, H', W'). The forward keeps a
running maximum (or sum); the backward scatters into the same views of ``dx``.

**Overlapping windows** (stride < window) share input elements, so the backward
*accumulates* (``+=``) into those views: an element that is the maximum of two
windows receives both windows' gradients. Writing ``=`` there is the classic
bug. When windows do not overlap the views are disjoint and are assigned.

**Ties** (max pooling): the gradient goes to one element, the *first* maximum
in row-major order inside the window, as PyTorch does. The gradient summed over
a window then equals ``dout`` for that window, which makes it a valid
subgradient; sending ``dout`` to every tied element would not be one (its sum
exceeds ``dout``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..._validate import cache_of, float_array, int_at_least, upstream
from .windows import Windows, param_dict, windows_fit

__all__ = [
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "max_pool1d",
    "max_pool1d_backward",
    "avg_pool1d",
    "avg_pool1d_backward",
    "PoolCache",
    # CS231n names
    "max_pool_forward_naive",
    "max_pool_backward_naive",
    "max_pool_forward_fast",
    "max_pool_backward_fast",
]


class PoolCache(NamedTuple):
    """What the pooling backward needs."""

    kind: str  # "max" or "avg"
    x_shape: tuple[int, ...]  # (N, C, H, W) or (N, C, L)
    x4: np.ndarray  # the input as (N, C, H, W): its dtype and memory layout for dx
    win: Windows
    beats: list[np.ndarray] | None  # max: where each offset beat the earlier ones


# --- checks --------------------------------------------------------------------------------
def _pool_inputs(x: object, kh: object, kw: object, stride: object, spatial: int):
    """Check a pooling layer's arguments; return ``x`` as (N, C, H, W) and the windows.

    ``stride`` is an int, or for images a pair (rows, columns).
    """
    if spatial == 2:
        x = float_array("x", x, "(N, C, H, W)")
        kh = int_at_least("pool_height", kh, 1)
        kw = int_at_least("pool_width", kw, 1)
        if isinstance(stride, tuple) and len(stride) == 2:
            sh, sw = (int_at_least(f"stride[{i}]", s, 1) for i, s in enumerate(stride))
        else:
            sh = sw = int_at_least("stride", stride, 1)
        win = Windows(x.shape[2], x.shape[3], kh, kw, sh, sw)
        return x, windows_fit(win, x.shape, "pool_height/pool_width", 2)
    x = float_array("x", x, "(N, C, L)")
    k = int_at_least("pool_size", kw, 1)
    s = int_at_least("stride", stride, 1)
    win = Windows(1, x.shape[2], 1, k, 1, s)
    return x[:, :, None, :], windows_fit(win, x.shape, "pool_size", 1)


# --- the two kinds of pooling, looped over window offsets ----------------------------------
def _max_forward(x4: np.ndarray, win: Windows) -> tuple[np.ndarray, list[np.ndarray]]:
    """Running maximum over the window offsets.

    Also returns ``beats[k - 1]``: where offset ``k`` is *strictly* larger than
    the maximum of offsets ``0 .. k-1`` (a later equal element does not take
    over, so ties go to the first maximum). The winner of a window is the last
    offset that beat the running maximum, or offset 0 if none did.
    """
    views = [win.at_offset(x4, di, dj) for di, dj in win.offsets]
    out = np.copy(views[0], order="K")
    beats = []
    for view in views[1:]:
        beats.append(np.greater(view, out))
        np.maximum(out, view, out=out)
    return out, beats


def _max_winners(beats: list[np.ndarray], like: np.ndarray):
    """``(k, mask)`` for k = last .. 0: where offset ``k`` holds its window's first maximum."""
    taken = np.zeros_like(like, dtype=bool)  # where a later offset already won
    for k in range(len(beats), 0, -1):
        yield k, beats[k - 1] & ~taken
        taken |= beats[k - 1]
    yield 0, ~taken


def _avg_forward(x4: np.ndarray, win: Windows) -> np.ndarray:
    out = np.copy(win.at_offset(x4, 0, 0), order="K")
    for di, dj in win.offsets[1:]:
        out += win.at_offset(x4, di, dj)
    out *= x4.dtype.type(1.0 / (win.kh * win.kw))
    return out


def _pool_forward(x: np.ndarray, x4: np.ndarray, win: Windows, kind: str):
    if kind == "max":
        out, beats = _max_forward(x4, win)
    else:
        out, beats = _avg_forward(x4, win), None
    cache = PoolCache(kind, tuple(x.shape), x4, win, beats)
    return (out[:, :, 0, :] if x.ndim == 3 else out), cache


def _pool_backward(dout: np.ndarray, cache: PoolCache, kind: str) -> np.ndarray:
    """dx: ``dout`` sent back through the window views (accumulated where windows overlap)."""
    cache = cache_of(cache, PoolCache, None, f"{kind}_pool2d or {kind}_pool1d")
    _, x_shape, x4, win, beats = cache
    N, C = x_shape[:2]
    one_d = len(x_shape) == 3
    out_shape = (N, C, win.Wo) if one_d else (N, C, win.Ho, win.Wo)
    dout = upstream(dout, out_shape, x4.dtype, f"{kind}_pool{1 if one_d else 2}d")
    dout4 = (dout[:, :, None, :] if one_d else dout).astype(x4.dtype, copy=False)
    dx4 = _gradient_buffer(x4, win)
    if kind == "max":
        for k, mask in _max_winners(beats, dout4):
            target = win.at_offset(dx4, *win.offsets[k])
            if win.overlapping:
                target += dout4 * mask  # an element in several windows gets every window's share
            else:
                np.multiply(dout4, mask, out=target)  # the winners' dout, straight into the view
    else:
        each = dout4 * x4.dtype.type(1.0 / (win.kh * win.kw))
        for di, dj in win.offsets:
            target = win.at_offset(dx4, di, dj)
            if win.overlapping:
                target += each
            else:
                target[...] = each
    return dx4[:, :, 0, :] if one_d else dx4


def _gradient_buffer(x4: np.ndarray, win: Windows) -> np.ndarray:
    """``dx``'s memory, in ``x4``'s layout: zeros, or for windows that tile the input (stride ==
    window) uninitialised but for the rows and columns no window covers (every other element
    is written exactly once)."""
    if not (win.sh == win.kh and win.sw == win.kw):
        return np.zeros_like(x4, order="K")
    dx4 = np.empty_like(x4, order="K")
    dx4[:, :, win.Ho * win.kh :] = 0
    dx4[:, :, :, win.Wo * win.kw :] = 0
    return dx4


# --- public API ----------------------------------------------------------------------------
def max_pool2d(
    x: np.ndarray, pool_height: int = 2, pool_width: int = 2, stride: int = 2
) -> tuple[np.ndarray, PoolCache]:
    """Max pooling over ``pool_height x pool_width`` windows every ``stride`` pixels.

    Args:
        x: input, shape (N, C, H, W), float32 or float64.
        pool_height, pool_width: window size (ints >= 1, at most H and W).
        stride: step between windows (int >= 1, or a pair (rows, columns)); smaller
            than the window means overlap.

    Returns:
        out: shape (N, C, H', W'), ``H' = 1 + (H - pool_height) // stride``; dtype of x.
        cache: a :class:`PoolCache` for :func:`max_pool2d_backward`.
    """
    x4, win = _pool_inputs(x, pool_height, pool_width, stride, spatial=2)
    return _pool_forward(x, x4, win, "max")


def max_pool2d_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Backward of :func:`max_pool2d`: ``dout`` (N, C, H', W') -> ``dx`` (N, C, H, W).

    Each window's gradient goes to its first maximum (row-major); overlapping
    windows accumulate.
    """
    return _pool_backward(dout, cache, "max")


def avg_pool2d(
    x: np.ndarray, pool_height: int = 2, pool_width: int = 2, stride: int = 2
) -> tuple[np.ndarray, PoolCache]:
    """Average pooling: the mean of each window; same arguments and shapes as :func:`max_pool2d`."""
    x4, win = _pool_inputs(x, pool_height, pool_width, stride, spatial=2)
    return _pool_forward(x, x4, win, "avg")


def avg_pool2d_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Backward of :func:`avg_pool2d`: each window element gets ``dout / (pool_height*pool_width)``.

    Overlapping windows accumulate.
    """
    return _pool_backward(dout, cache, "avg")


def max_pool1d(x: np.ndarray, pool_size: int = 2, stride: int = 2) -> tuple[np.ndarray, PoolCache]:
    """Max pooling over signals: x (N, C, L) -> out (N, C, L').

    ``L' = 1 + (L - pool_size) // stride``; ties and overlaps as in :func:`max_pool2d`.
    """
    x4, win = _pool_inputs(x, 1, pool_size, stride, spatial=1)
    return _pool_forward(x, x4, win, "max")


def max_pool1d_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Backward of :func:`max_pool1d`: ``dout`` (N, C, L') -> ``dx`` (N, C, L)."""
    return _pool_backward(dout, cache, "max")


def avg_pool1d(x: np.ndarray, pool_size: int = 2, stride: int = 2) -> tuple[np.ndarray, PoolCache]:
    """Average pooling over signals: x (N, C, L) -> out (N, C, L')."""
    x4, win = _pool_inputs(x, 1, pool_size, stride, spatial=1)
    return _pool_forward(x, x4, win, "avg")


def avg_pool1d_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Backward of :func:`avg_pool1d`: ``dout`` (N, C, L') -> ``dx`` (N, C, L)."""
    return _pool_backward(dout, cache, "avg")


# --- CS231n names: pool_param = {'pool_height': ..., 'pool_width': ..., 'stride': ...} ------
_POOL_PARAM = {"pool_height": 2, "pool_width": 2, "stride": 2}


def max_pool_forward_fast(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, PoolCache]:
    """CS231n's signature for :func:`max_pool2d`."""
    p = param_dict("pool_param", pool_param, _POOL_PARAM)
    return max_pool2d(x, p["pool_height"], p["pool_width"], p["stride"])


max_pool_backward_fast = max_pool2d_backward
# CS231n's "naive" names: the same vectorised code, which loops only over the
# positions inside a window and is short enough to read.
max_pool_forward_naive = max_pool_forward_fast
max_pool_backward_naive = max_pool2d_backward

"""Convolution layers, fast: ``conv2d`` and ``conv1d`` as one matrix product each.

Same results and the same interface as the loop version
(:mod:`gradproof.nn.functional.conv_naive`, re-exported here)::

    out, cache = conv2d(x, w, b, stride=1, pad=0)   # x (N, C, H, W), w (F, C, HH, WW), b (F,)
    dx, dw, db = conv2d_backward(dout, cache)       # out and dout (N, F, H', W')
    out, cache = conv1d(x, w, b, stride=1, pad=0)   # x (N, C, L), w (F, C, K), out (N, F, L')

with ``H' = 1 + (H + 2*pad - HH) // stride`` (the same for W and L).

How it is fast (im2col, made cheap):

* **Channel-major layout.** The windows are the columns of a matrix ``cols``
  of shape ``(C*HH*WW, M)`` with ``M = N*H'*W'`` (exactly one column per
  output pixel), and the whole layer is one BLAS product
  ``w.reshape(F, -1) @ cols`` of shape ``(F, M)``. The output is returned as
  the ``(N, F, H', W')`` *view* of that product: its memory order is
  ``(F, N, H', W')``, channel first. No transpose of a big array is made; a
  pooling layer and a ReLU keep that memory order (NumPy's ufuncs follow the
  input's layout), and the next conv layer reads it as the contiguous
  ``(C, N*H*W)`` matrix it needs, without a copy. One transpose happens at the
  network's input (free for one channel) and none at the output: the
  ``Flatten`` before the classifier copies, as it would anyway.
* **"Same" convolutions by shifted copies.** When stride is 1 and the padding
  keeps the size (``2*pad == HH - 1`` and ``WW - 1``: 3x3 with pad 1, 5 with
  pad 2), element ``(c, di, dj)`` of the window of output pixel ``m`` is input
  element ``m + (di - pad)*W + (dj - pad)`` of channel ``c``: each of the
  ``C*HH*WW`` rows of ``cols`` is one contiguous slice of the input (a
  memcpy). The few entries whose window pokes into the padding (they would
  read a neighbouring row or image) are then set to zero: a row and a column
  of each image per offset. No padded copy of the input is made. The backward
  pass (col2im) zeroes the same entries of ``dcols`` and adds each row back
  onto the same slice of ``dx``: ``HH*WW`` contiguous additions, no scatter.
* **Any other geometry.** The input is copied once, zero-padded, into a
  ``(C, N, Hp, Wp)`` buffer; a strided view of it
  (``numpy.lib.stride_tricks.as_strided``) is copied once into ``cols``, and
  the backward scatters ``dcols`` back with one strided ``+=`` per offset
  inside the window (``HH*WW`` vectorised operations, none per pixel).

The returned ``out`` and ``dx`` are views that are not C-contiguous; they
behave as ordinary arrays (use ``np.ascontiguousarray`` if a C buffer is needed).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..._validate import cache_of, upstream
from .conv_naive import NaiveConvCache, conv2d_naive, conv2d_naive_backward
from .windows import Windows, conv_inputs, param_dict

__all__ = [
    "conv2d",
    "conv2d_backward",
    "conv1d",
    "conv1d_backward",
    "conv2d_naive",
    "conv2d_naive_backward",
    "ConvCache",
    "NaiveConvCache",
    # CS231n names
    "conv_forward_naive",
    "conv_backward_naive",
    "conv_forward_fast",
    "conv_backward_fast",
]


class ConvCache(NamedTuple):
    """What the backward pass needs: the im2col matrix, the filters, shapes and geometry."""

    cols: np.ndarray  # (C*HH*WW, M): one column per window, M = N*H'*W'
    w: np.ndarray  # (F, C, HH, WW); conv1d's (F, C, K) as (F, C, 1, K)
    x_shape: tuple[int, ...]  # the input's shape, (N, C, H, W) or (N, C, L)
    win: Windows


# --- im2col and its inverse, in channel-major layout -------------------------------------
def _keeps_size(win: Windows) -> bool:
    """Stride 1 and an output of the input's size: the shifted-copy case."""
    return win.sh == win.sw == 1 and win.Ho == win.H and win.Wo == win.W


def _by_channel(a4: np.ndarray) -> np.ndarray:
    """``a4`` (N, C, H, W) as the (C, N*H*W) matrix, a view when its memory is channel-major."""
    N, C, H, W = a4.shape
    return np.ascontiguousarray(a4.transpose(1, 0, 2, 3)).reshape(C, N * H * W)


def _shift(win: Windows, di: int, dj: int, M: int) -> tuple[int, int, int]:
    """``(s, lo, hi)``: for output pixels ``lo <= m < hi``, window element ``(di, dj)`` is
    input pixel ``m + s`` of the flat (N*H*W) image stack (``_keeps_size`` geometry)."""
    s = (di - win.ph) * win.W + (dj - win.pw)
    lo = min(max(0, -s), M)
    return s, lo, max(lo, min(M, M - s))


def _zero_outside(rows: np.ndarray, win: Windows, di: int, dj: int) -> None:
    """Zero the entries of ``rows`` (C, N*H*W) whose window element ``(di, dj)`` lies in the
    padding: the first/last rows and columns of each image, as many as the offset reaches."""
    view = rows.reshape(rows.shape[0], -1, win.H, win.W)
    top, left = win.ph - di, win.pw - dj  # > 0: that many rows/columns read the top/left pad
    if top > 0:
        view[:, :, :top] = 0
    elif top < 0:
        view[:, :, max(win.H + top, 0) :] = 0
    if left > 0:
        view[:, :, :, :left] = 0
    elif left < 0:
        view[:, :, :, max(win.W + left, 0) :] = 0


def _columns(x4: np.ndarray, win: Windows) -> np.ndarray:
    """im2col: the windows of ``x4`` as the columns of a (C*HH*WW, N*H'*W') matrix (a new array).

    Row ``(c, di, dj)`` holds element ``(c, di, dj)`` of every window.
    """
    N, C = x4.shape[:2]
    M = N * win.Ho * win.Wo
    cols = np.empty((C, win.kh, win.kw, M), dtype=x4.dtype)
    if _keeps_size(win):
        x_mat = _by_channel(x4)
        for di, dj in win.offsets:
            s, lo, hi = _shift(win, di, dj, M)
            cols[:, di, dj, lo:hi] = x_mat[:, lo + s : hi + s]
            _zero_outside(cols[:, di, dj], win, di, dj)  # includes [:lo] and [hi:]
        return cols.reshape(C * win.kh * win.kw, M)
    padded = np.zeros((C, N, win.Hp, win.Wp), dtype=x4.dtype)
    padded[:, :, win.ph : win.ph + win.H, win.pw : win.pw + win.W] = x4.transpose(1, 0, 2, 3)
    item = padded.itemsize
    shape = (C, win.kh, win.kw, N, win.Ho, win.Wo)
    strides = (
        padded.strides[0], win.Wp * item, item, padded.strides[1], win.sh * win.Wp * item,
        win.sw * item,
    )
    cols.reshape(shape)[...] = as_strided(padded, shape, strides, writeable=False)
    return cols.reshape(C * win.kh * win.kw, M)


def _output_view(out_mat: np.ndarray, win: Windows, N: int) -> np.ndarray:
    """The (N, F, H', W') view of the product (F, M)."""
    return out_mat.reshape(out_mat.shape[0], N, win.Ho, win.Wo).transpose(1, 0, 2, 3)


def _fold(dcols: np.ndarray, win: Windows, N: int) -> np.ndarray:
    """col2im: add every row of ``dcols`` (C*HH*WW, M) back where it was read; dx (N, C, H, W).

    One vectorised ``+=`` per offset ``(di, dj)`` in the window; overlapping
    windows accumulate. ``dcols`` is overwritten (its padding entries zeroed).
    """
    C = dcols.shape[0] // (win.kh * win.kw)
    M = dcols.shape[1]
    rows = dcols.reshape(C, win.kh, win.kw, M)
    if _keeps_size(win):
        dx_mat = np.zeros((C, M), dtype=dcols.dtype)
        for di, dj in win.offsets:
            s, lo, hi = _shift(win, di, dj, M)
            _zero_outside(rows[:, di, dj], win, di, dj)  # they belong to no input pixel
            dx_mat[:, lo + s : hi + s] += rows[:, di, dj, lo:hi]
        return dx_mat.reshape(C, N, win.H, win.W).transpose(1, 0, 2, 3)
    dpad = np.zeros((C, N, win.Hp, win.Wp), dtype=dcols.dtype)
    rows = rows.reshape(C, win.kh, win.kw, N, win.Ho, win.Wo)
    for di, dj in win.offsets:
        win.at_offset(dpad, di, dj)[...] += rows[:, di, dj]
    dx = dpad[:, :, win.ph : win.ph + win.H, win.pw : win.pw + win.W]
    return dx.transpose(1, 0, 2, 3)


# --- forward and backward ------------------------------------------------------------------
def _conv_forward(
    x_shape: tuple[int, ...], x4: np.ndarray, w4: np.ndarray, b: np.ndarray, win: Windows
) -> tuple[np.ndarray, ConvCache]:
    """The convolution of checked 4-D inputs; ``out`` gets the number of axes of ``x_shape``."""
    N, F = x4.shape[0], w4.shape[0]
    cols = _columns(x4, win)
    out_mat = w4.reshape(F, -1) @ cols
    out_mat += b[:, None]
    out = _output_view(out_mat, win, N)
    if len(x_shape) == 3:
        out = out[:, :, 0, :]
    return out, ConvCache(cols, w4, tuple(x_shape), win)


def _conv_backward(
    dout: np.ndarray, cache: ConvCache, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(dx, dw, db)`` for :func:`_conv_forward`; ``dx`` is None when ``input_grad`` is False."""
    cols, w4, x_shape, win = cache_of(cache, ConvCache, None, "conv2d or conv1d")
    N, F = x_shape[0], w4.shape[0]
    one_d = len(x_shape) == 3
    out_shape = (N, F, win.Wo) if one_d else (N, F, win.Ho, win.Wo)
    dout = upstream(dout, out_shape, w4.dtype, "conv1d" if one_d else "conv2d")
    dout4 = dout[:, :, None, :] if one_d else dout
    dout_mat = _by_channel(dout4.astype(w4.dtype, copy=False))  # (F, M), a view if channel-major
    db = dout_mat.sum(axis=1)
    w_shape = (F, x_shape[1], w4.shape[3]) if one_d else w4.shape
    dw = (dout_mat @ cols.T).reshape(w_shape)
    if not input_grad:
        return None, dw, db
    dx4 = _fold(w4.reshape(F, -1).T @ dout_mat, win, N)
    return (dx4[:, :, 0, :] if one_d else dx4), dw, db


def conv2d(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0
) -> tuple[np.ndarray, ConvCache]:
    """2-D convolution (cross-correlation), one matrix product.

    Args:
        x: input, shape (N, C, H, W), float32 or float64.
        w: filters, shape (F, C, HH, WW), dtype of x.
        b: biases, shape (F,), dtype of x.
        stride: step between windows, in both directions (int >= 1).
        pad: zeros added on every side of H and W (int >= 0).

    Returns:
        out: shape (N, F, H', W'), ``H' = 1 + (H + 2*pad - HH) // stride``,
            ``W' = 1 + (W + 2*pad - WW) // stride``; dtype of x;
            ``out[n, f] = b[f] + sum_c xpad[n, c] (*) w[f, c]``.
        cache: a :class:`ConvCache` for :func:`conv2d_backward`.
    """
    x4, w4, b, win = conv_inputs(x, w, b, stride, pad, spatial=2)
    return _conv_forward(x.shape, x4, w4, b, win)


def conv2d_backward(
    dout: np.ndarray, cache: ConvCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv2d`.

    Args:
        dout: upstream gradient, shape (N, F, H', W').
        cache: from :func:`conv2d`.

    Returns:
        dx (N, C, H, W), dw (F, C, HH, WW), db (F,), in the dtype of x.
    """
    return _conv_backward(dout, cache)


def conv1d(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0
) -> tuple[np.ndarray, ConvCache]:
    """1-D convolution over signals (MNIST-1D, audio): :func:`conv2d` on images of height 1.

    Args:
        x: input, shape (N, C, L).
        w: filters, shape (F, C, K).
        b: biases, shape (F,).
        stride: step between windows (int >= 1).
        pad: zeros added at both ends of L (int >= 0).

    Returns:
        out: shape (N, F, L') with ``L' = 1 + (L + 2*pad - K) // stride``.
        cache: a :class:`ConvCache` for :func:`conv1d_backward`.
    """
    x4, w4, b, win = conv_inputs(x, w, b, stride, pad, spatial=1)
    return _conv_forward(x.shape, x4, w4, b, win)


def conv1d_backward(
    dout: np.ndarray, cache: ConvCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv1d`.

    ``dout`` (N, F, L') -> dx (N, C, L), dw (F, C, K), db (F,), in the dtype of x.
    """
    return _conv_backward(dout, cache)


# --- CS231n names: conv_param = {'stride': s, 'pad': p} -------------------------------------
_CONV_PARAM = {"stride": 1, "pad": 0}


def conv_forward_fast(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, ConvCache]:
    """CS231n's signature for :func:`conv2d`: ``conv_param = {'stride': s, 'pad': p}``."""
    p = param_dict("conv_param", conv_param, _CONV_PARAM)
    return conv2d(x, w, b, stride=p["stride"], pad=p["pad"])


def conv_forward_naive(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, NaiveConvCache]:
    """CS231n's signature for :func:`conv2d_naive`: ``conv_param = {'stride': s, 'pad': p}``."""
    p = param_dict("conv_param", conv_param, _CONV_PARAM)
    return conv2d_naive(x, w, b, stride=p["stride"], pad=p["pad"])


conv_backward_fast = conv2d_backward
conv_backward_naive = conv2d_naive_backward

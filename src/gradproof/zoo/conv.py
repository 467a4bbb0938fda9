"""Zoo family "conv": 2-d convolution, max pooling and average pooling (NCHW).

Shapes: x (N, C, H, W), w (F, C, HH, WW), b (F,) -> out (N, F, Ho, Wo) with
Ho = (H + 2 pad - HH) // stride + 1. Pooling uses square k x k windows.
Options (stride, pad, k) are bound with functools.partial, so every forward
takes only arrays.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .case import add, normal


def _windows(x, kh, kw, stride):
    """View of every (kh, kw) window of x (N, C, H, W): (N, C, Ho, Wo, kh, kw)."""
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]


def _add_to_windows(target, value_at, kh, kw, stride, out_hw):
    """target[window positions of offset (i, j)] += value_at(i, j) for every offset.

    ``value_at(i, j)`` has shape (N, C, Ho, Wo): what each window sends back to
    its element at offset (i, j). Windows may overlap, so this accumulates.
    """
    ho, wo = out_hw
    for i in range(kh):
        for j in range(kw):
            target[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += value_at(i, j)
    return target


def _pad(x, pad):
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def _contract(spec, a, b):
    # optimize=True turns the contraction into a matrix product (30x faster here)
    return np.einsum(spec, a, b, optimize=True)


# --- convolution --------------------------------------------------------------


def conv_forward(x, w, b, *, stride=1, pad=0):
    """Cross-correlation of x (N, C, H, W) with w (F, C, HH, WW) plus b (F,)."""
    windows = _windows(_pad(x, pad), w.shape[2], w.shape[3], stride)
    out = _contract("nchwij,fcij->nfhw", windows, w) + b[None, :, None, None]
    return out, (x, w, stride, pad)


def _conv_dxpad(dout, x, w, stride, pad):
    dxpad = np.zeros_like(_pad(x, pad))
    return _add_to_windows(dxpad, lambda i, j: _contract("nfhw,fc->nchw", dout, w[:, :, i, j]),
                           w.shape[2], w.shape[3], stride, dout.shape[2:])


def conv_backward(dout, cache):
    """dout (N, F, Ho, Wo) -> dx (N, C, H, W), dw (F, C, HH, WW), db (F,)."""
    x, w, stride, pad = cache
    h, wd = x.shape[2:]
    dx = _conv_dxpad(dout, x, w, stride, pad)[:, :, pad:pad + h, pad:pad + wd]
    windows = _windows(_pad(x, pad), w.shape[2], w.shape[3], stride)
    dw = _contract("nfhw,nchwij->fcij", dout, windows)
    return dx, dw, dout.sum(axis=(0, 2, 3))


def conv_backward_crop_one(dout, cache):
    x, w, stride, pad = cache
    dx = _conv_dxpad(dout, x, w, stride, pad)[:, :, 1:-1, 1:-1]  # right only when pad == 1
    windows = _windows(_pad(x, pad), w.shape[2], w.shape[3], stride)
    return dx, _contract("nfhw,nchwij->fcij", dout, windows), dout.sum(axis=(0, 2, 3))


def conv_backward_dw_ignores_stride(dout, cache):
    x, w, stride, pad = cache
    h, wd = x.shape[2:]
    ho, wo = dout.shape[2:]
    dx = _conv_dxpad(dout, x, w, stride, pad)[:, :, pad:pad + h, pad:pad + wd]
    # window (r, c) starts at (r + i) instead of (r * stride + i): stride forgotten in dw
    windows = sliding_window_view(_pad(x, pad), w.shape[2:], axis=(2, 3))[:, :, :ho, :wo]
    return dx, _contract("nfhw,nchwij->fcij", dout, windows), dout.sum(axis=(0, 2, 3))


def conv_inputs(n, c, hw, f, k, dtype=np.float64):
    def make(rng):
        return (normal(rng, n, c, hw, hw, dtype=dtype), normal(rng, f, c, k, k, dtype=dtype),
                normal(rng, f, dtype=dtype))
    return make


# --- max pooling -----------------------------------------------------------------


def maxpool_forward(x, *, k=2, stride=2):
    """Max over k x k windows of x (N, C, H, W)."""
    return _windows(x, k, k, stride).max(axis=(-2, -1)), (x, k, stride)


def _argmax_coordinates(x, k, stride):
    """Index arrays (n, c, row, col), each (N, C, Ho, Wo), of each window's first maximum."""
    windows = _windows(x, k, k, stride)
    n, c, ho, wo = windows.shape[:4]
    first = windows.reshape(n, c, ho, wo, k * k).argmax(axis=-1)
    n_idx, c_idx, r_idx, col_idx = np.indices((n, c, ho, wo))
    return n_idx, c_idx, r_idx * stride + first // k, col_idx * stride + first % k


def maxpool_backward(dout, cache):
    """Each window's dout goes to its first maximum; overlapping windows accumulate."""
    x, k, stride = cache
    dx = np.zeros_like(x)
    np.add.at(dx, _argmax_coordinates(x, k, stride), dout)
    return dx


def maxpool_backward_assign(dout, cache):
    x, k, stride = cache
    dx = np.zeros_like(x)
    dx[_argmax_coordinates(x, k, stride)] = dout  # `=`: a max shared by two windows keeps one
    return dx


def maxpool_backward_every_tie(dout, cache):
    x, k, stride = cache
    windows = _windows(x, k, k, stride)
    is_max = windows == windows.max(axis=(-2, -1), keepdims=True)  # every tied max gets dout
    return _add_to_windows(np.zeros_like(x), lambda i, j: dout * is_max[..., i, j], k, k, stride,
                           dout.shape[2:])


def _overlapping_peaks(rng):
    """x (2, 2, 7, 7) for 3x3/stride-2 pooling, with maxima shared by neighbouring windows."""
    x = normal(rng, 2, 2, 7, 7)
    x[:, :, 2, 2] = 5 + rng.random((2, 2))
    x[:, :, 4, 4] = 7 + rng.random((2, 2))
    return (x,)


def tied_windows(rng):
    """x (2, 2, 4, 4) for 2x2/stride-2 pooling where several windows are constant."""
    x = normal(rng, 2, 2, 4, 4)
    x[0, 0, 0:2, 0:2] = 0.3
    x[0, 1, 2:4, 2:4] = -0.4
    x[1, 0, 0:2, 2:4] = 1.25
    x[1, 1, 2, 0:2] = x[1, 1, 3, 0] = 2.0  # three tied maxima above a smaller fourth
    x[1, 1, 3, 1] = 1.0
    return (x,)


# --- average pooling ------------------------------------------------------------


def avgpool_forward(x, *, k=2, stride=2):
    return _windows(x, k, k, stride).mean(axis=(-2, -1)), (x.shape, k, stride)


def avgpool_backward(dout, cache):
    shape, k, stride = cache
    share = dout / (k * k)
    return _add_to_windows(np.zeros(shape, dout.dtype), lambda i, j: share, k, k, stride,
                           dout.shape[2:])


def avgpool_backward_no_area(dout, cache):
    shape, k, stride = cache  # each element gets all of dout, not dout / (k * k)
    return _add_to_windows(np.zeros(shape, dout.dtype), lambda i, j: dout, k, k, stride,
                           dout.shape[2:])


# --- registration -------------------------------------------------------------------

F = "conv"
CONV_PAD2 = partial(conv_forward, stride=1, pad=2)
CONV_STRIDE2 = partial(conv_forward, stride=2, pad=1)
POOL3 = partial(maxpool_forward, k=3, stride=2)
add("correct", F, "conv_pad2", "3x3 convolution, stride 1, pad 2", CONV_PAD2, conv_backward,
    conv_inputs(2, 3, 5, 4, 3))
add("bug", F, "conv_crop_pad1", "conv dx cropped with [1:-1] (right only for pad 1) at pad 2",
    CONV_PAD2, conv_backward_crop_one, conv_inputs(2, 3, 5, 4, 3),
    expect="shape (input 0): (2, 3, 7, 7) for (2, 3, 5, 5)", ref_backward=conv_backward)
add("correct", F, "conv_stride2", "3x3 convolution, stride 2, pad 1", CONV_STRIDE2, conv_backward,
    conv_inputs(2, 3, 7, 4, 3))
add("bug", F, "conv_dw_ignores_stride", "conv dw indexes windows at r + i instead of r*stride + i",
    CONV_STRIDE2, conv_backward_dw_ignores_stride, conv_inputs(2, 3, 7, 4, 3),
    expect="dw (input 1) wrong", ref_backward=conv_backward)
add("correct", F, "maxpool_overlapping", "3x3 max pooling, stride 2 (windows overlap)", POOL3,
    maxpool_backward, _overlapping_peaks)
add("bug", F, "maxpool_assign_overlapping",
    "max-pool backward assigns (=) where overlapping windows need +=", POOL3,
    maxpool_backward_assign, _overlapping_peaks, expect="shared maxima x[:, :, 2, 2] and [4, 4]",
    ref_backward=maxpool_backward)
add("bug", F, "maxpool_every_tie",
    "max-pool backward sends dout to every tied maximum (sum exceeds dout)", maxpool_forward,
    maxpool_backward_every_tie, tied_windows,
    expect="kink: not a valid subgradient (tied windows get k * dout)",
    ref_backward=maxpool_backward)
add("correct", F, "avgpool", "2x2 average pooling", avgpool_forward, avgpool_backward,
    lambda rng: (normal(rng, 2, 3, 4, 4),))
add("bug", F, "avgpool_no_area", "average-pool backward forgets the 1/(k*k)", avgpool_forward,
    avgpool_backward_no_area, lambda rng: (normal(rng, 2, 3, 4, 4),), expect="factor 4",
    ref_backward=avgpool_backward)

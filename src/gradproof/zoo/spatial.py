"""Zoo family "spatial": convolution and pooling bugs confined to a structure (NCHW).

The structures of an image layer: one input channel of every filter, one kernel
tap, the taps off the kernel's diagonal, the border pixels, every other pixel
(a stride phase), the maxima of the pooling windows. Sizes are realistic:

- convolution: x (8, 3, 16, 16), w (16, 3, 3, 3), b (16,), stride 1, pad 1;
- ResNet downsampling shortcut: x (8, 16, 16, 16), w (32, 16), b (32,), stride 2;
- max pooling 2x2, stride 2: x (8, 16, 16, 16).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .case import add, mask, normal
from .conv import (
    _argmax_coordinates,
    _contract,
    _pad,
    _windows,
    conv_backward,
    conv_forward,
    conv_inputs,
    maxpool_backward,
    maxpool_forward,
)

CONV = partial(conv_forward, stride=1, pad=1)
CONV_INPUTS = conv_inputs(8, 3, 16, 16, 3)


def border(shape) -> np.ndarray:
    """Mask of the border pixels (first and last row and column) of (N, C, H, W)."""
    where = np.zeros(shape, dtype=bool)
    where[:, :, [0, -1], :] = True
    where[:, :, :, [0, -1]] = True
    return where


# --- convolution: one input channel, one tap, the off-diagonal taps -------------------------

CHANNEL = 1  # the input channel (green) whose slice of every filter is wrong
TAP = (1, 2)  # the kernel tap whose gradient is wrong


def conv_backward_channel_gain(dout, cache):
    dx, dw, db = conv_backward(dout, cache)
    dw[:, CHANNEL] *= 1.1  # channel 1's preprocessing gain 1.1 folded into dw as well
    return dx, dw, db


def conv_backward_tap_offset(dout, cache):
    x, w, stride, pad = cache
    dx, dw, db = conv_backward(dout, cache)
    windows = _windows(_pad(x, pad), w.shape[2], w.shape[3], stride)
    # a per-tap loop with an off-by-one: tap (1, 2) is read from the windows at offset (1, 1)
    dw[:, :, TAP[0], TAP[1]] = _contract("nfhw,nchw->fc", dout, windows[..., TAP[0], TAP[1] - 1])
    return dx, dw, db


def conv_backward_kernel_transposed(dout, cache):
    dx, dw, db = conv_backward(dout, cache)
    return dx, dw.transpose(0, 1, 3, 2), db  # im2col columns reshaped as (kw, kh)


def off_diagonal_taps(shape) -> np.ndarray:
    """Mask of the taps (i, j), i != j, of every filter (F, C, K, K)."""
    return np.broadcast_to(~np.eye(shape[2], dtype=bool), shape).copy()


# --- convolution with replicate padding: the border of dx ----------------------------------


def conv_replicate_forward(x, w, b):
    """3x3 convolution, stride 1, of x padded by 1 with copies of its border ("edge")."""
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    out, _ = conv_forward(xpad, w, b, stride=1, pad=0)
    return out, (xpad, w)


def _fold_edges(dxpad):
    """Gradient of an edge-padded (pad 1) array w.r.t. the unpadded one.

    A padding cell is a copy of the border pixel next to it, so its gradient is
    added to that pixel: rows first, then columns (corners reach the corner pixel).
    """
    d = dxpad.copy()
    d[:, :, 1] += d[:, :, 0]
    d[:, :, -2] += d[:, :, -1]
    d[:, :, :, 1] += d[:, :, :, 0]
    d[:, :, :, -2] += d[:, :, :, -1]
    return d[:, :, 1:-1, 1:-1]


def conv_replicate_backward(dout, cache):
    """dout (N, F, H, W) -> dx (N, C, H, W), dw, db."""
    xpad, w = cache
    dxpad, dw, db = conv_backward(dout, (xpad, w, 1, 0))
    return _fold_edges(dxpad), dw, db


def conv_replicate_backward_zero_pad(dout, cache):
    xpad, w = cache
    dxpad, dw, db = conv_backward(dout, (xpad, w, 1, 0))
    return dxpad[:, :, 1:-1, 1:-1], dw, db  # cropped as for zero padding: the copies are lost


# --- ResNet downsampling shortcut (1x1, stride 2): every other pixel -------------------------


def shortcut_forward(x, w, b):
    """x (N, C, H, W), w (F, C), b (F,) -> 1x1 convolution at stride 2 (N, F, H/2, W/2)."""
    sampled = x[:, :, ::2, ::2]
    return _contract("nchw,fc->nfhw", sampled, w) + b[None, :, None, None], (x.shape, sampled, w)


def _shortcut_grads(dout, cache, phase):
    shape, sampled, w = cache
    dx = np.zeros(shape, dtype=dout.dtype)
    dx[:, :, phase::2, phase::2] = _contract("nfhw,fc->nchw", dout, w)
    return dx, _contract("nfhw,nchw->fc", dout, sampled), dout.sum(axis=(0, 2, 3))


def shortcut_backward(dout, cache):
    """dout (N, F, H/2, W/2) -> dx (N, C, H, W), dw (F, C), db (F,)."""
    return _shortcut_grads(dout, cache, phase=0)


def shortcut_backward_odd_phase(dout, cache):
    return _shortcut_grads(dout, cache, phase=1)  # scattered to the odd pixels: off by one


def every_other_pixel(shape) -> np.ndarray:
    """Mask of the pixels (even, even) and (odd, odd) of (N, C, H, W)."""
    rows, cols = np.indices(shape[2:])
    return np.broadcast_to(rows % 2 == cols % 2, shape).copy()


def shortcut_inputs(rng):
    return normal(rng, 8, 16, 16, 16), normal(rng, 32, 16, scale=0.25), normal(rng, 32)


# --- max pooling: the maximum of every window ------------------------------------------------


def maxpool_backward_divides_by_area(dout, cache):
    _, k, _ = cache
    return maxpool_backward(dout / (k * k), cache)  # copied from average pooling


def window_maxima(x, k=2, stride=2) -> np.ndarray:
    """Mask of each k x k window's first maximum in x (N, C, H, W)."""
    where = np.zeros(x.shape, dtype=bool)
    where[_argmax_coordinates(x, k, stride)] = True
    return where


# --- registration ------------------------------------------------------------------------------

F = "spatial"
add("correct", F, "conv_8x3x16x16", "3x3 convolution, 16 filters, stride 1, pad 1", CONV,
    conv_backward, CONV_INPUTS)
add("bug", F, "conv_dw_input_channel",
    "input channel 1 of every filter: dw[:, 1] 10 % too large (a preprocessing gain)", CONV,
    conv_backward_channel_gain, CONV_INPUTS, expect="dw[:, 1] (input 1): one input channel",
    ref_backward=conv_backward,
    region=lambda inputs: {1: mask(inputs[1].shape, (slice(None), CHANNEL))})
add("bug", F, "conv_dw_tap", "dw[:, :, 1, 2] read from the windows of tap (1, 1)", CONV,
    conv_backward_tap_offset, CONV_INPUTS, expect="dw[:, :, 1, 2] (input 1): one kernel tap",
    ref_backward=conv_backward, region=lambda inputs: {1: mask(inputs[1].shape, (..., *TAP))})
add("bug", F, "conv_dw_kernel_transposed",
    "dw's kernel axes transposed (im2col reshaped as (kw, kh)): right on the diagonal only",
    CONV, conv_backward_kernel_transposed, CONV_INPUTS,
    expect="dw (input 1) at the off-diagonal taps", ref_backward=conv_backward,
    region=lambda inputs: {1: off_diagonal_taps(inputs[1].shape)})
add("correct", F, "conv_replicate_pad", "3x3 convolution of x padded with copies of its border",
    conv_replicate_forward, conv_replicate_backward, CONV_INPUTS)
add("bug", F, "conv_replicate_pad_border",
    "replicate padding in the forward, zero-padding crop in the backward", conv_replicate_forward,
    conv_replicate_backward_zero_pad, CONV_INPUTS,
    expect="the border pixels of dx (input 0)", ref_backward=conv_replicate_backward,
    region=lambda inputs: {0: border(inputs[0].shape)})
add("correct", F, "shortcut_stride2", "ResNet downsampling shortcut: 1x1 convolution, stride 2",
    shortcut_forward, shortcut_backward, shortcut_inputs)
add("bug", F, "shortcut_odd_phase",
    "the shortcut's dx scattered to x[:, :, 1::2, 1::2] instead of [::2, ::2]",
    shortcut_forward, shortcut_backward_odd_phase, shortcut_inputs,
    expect="every other pixel of dx (input 0): stride 2 in rows and columns",
    ref_backward=shortcut_backward, region=lambda inputs: {0: every_other_pixel(inputs[0].shape)})
POOL_INPUTS = (lambda rng: (normal(rng, 8, 16, 16, 16),))
add("correct", F, "maxpool_8x16x16x16", "2x2 max pooling, stride 2", maxpool_forward,
    maxpool_backward, POOL_INPUTS)
add("bug", F, "maxpool_divides_by_area",
    "max-pool backward divides dout by k * k (copied from average pooling)", maxpool_forward,
    maxpool_backward_divides_by_area, POOL_INPUTS,
    expect="the maximum of every window of dx (input 0), factor 1/4",
    ref_backward=maxpool_backward, region=lambda inputs: {0: window_maxima(inputs[0])})

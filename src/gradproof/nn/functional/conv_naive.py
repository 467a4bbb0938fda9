"""The 2-D convolution written with loops: the version to read and learn from.

Every output pixel is one dot product between a filter and the window of the
(zero-padded) input under it::

    out[n, f, i, j] = b[f] + sum_{c, di, dj} w[f, c, di, dj] * xpad[n, c, i*s + di, j*s + dj]

The backward pass reverses each of those dot products: the window gets
``dout[n, f, i, j] * w[f]`` added to its gradient (windows overlap, so it is
``+=``), ``w[f]`` gets ``dout[n, f, i, j] * window``, and ``b[f]`` the sum of
``dout[:, f]``. The loops run over images and output pixels (all filters at
once, to keep the benchmarks bearable); they make this slow (see
:mod:`gradproof.nn.functional.conv` for the fast version); the results agree
with it to rounding.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..._validate import cache_of, upstream
from .windows import Windows, conv_inputs

__all__ = ["conv2d_naive", "conv2d_naive_backward"]


class NaiveConvCache(NamedTuple):
    """What :func:`conv2d_naive_backward` needs: the padded input, the weights, the geometry."""

    x_shape: tuple[int, ...]
    xpad: np.ndarray
    w: np.ndarray
    win: Windows


def conv2d_naive(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0
) -> tuple[np.ndarray, NaiveConvCache]:
    """2-D convolution (cross-correlation, as in every deep-learning library), with loops.

    Args:
        x: input, shape (N, C, H, W).
        w: filters, shape (F, C, HH, WW).
        b: biases, shape (F,).
        stride: step between windows, in both directions.
        pad: zeros added on every side of H and W.

    Returns:
        out: shape (N, F, H', W') with ``H' = 1 + (H + 2*pad - HH) // stride`` and
            ``W' = 1 + (W + 2*pad - WW) // stride``; dtype of x.
        cache: for :func:`conv2d_naive_backward`.
    """
    x, w, b, win = conv_inputs(x, w, b, stride, pad)
    N, F = x.shape[0], w.shape[0]
    xpad = np.pad(x, ((0, 0), (0, 0), (win.ph, win.ph), (win.pw, win.pw)))
    out = np.empty((N, F, win.Ho, win.Wo), dtype=x.dtype)
    for n in range(N):
        for i in range(win.Ho):
            for j in range(win.Wo):
                top, left = i * win.sh, j * win.sw
                window = xpad[n, :, top : top + win.kh, left : left + win.kw]  # (C, HH, WW)
                # one dot product per filter: w (F, C, HH, WW) times the window, summed
                out[n, :, i, j] = np.sum(w * window, axis=(1, 2, 3)) + b
    return out, NaiveConvCache(x.shape, xpad, w, win)


def conv2d_naive_backward(
    dout: np.ndarray, cache: NaiveConvCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv2d_naive`.

    Args:
        dout: upstream gradient, shape (N, F, H', W').
        cache: from :func:`conv2d_naive`.

    Returns:
        dx: shape (N, C, H, W); dw: shape (F, C, HH, WW); db: shape (F,);
        each in the dtype of its input.
    """
    x_shape, xpad, w, win = cache_of(cache, NaiveConvCache, None, "conv2d_naive")
    N, F = x_shape[0], w.shape[0]
    dout = upstream(dout, (N, F, win.Ho, win.Wo), w.dtype, "conv2d_naive")
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    for n in range(N):
        for i in range(win.Ho):
            for j in range(win.Wo):
                top, left = i * win.sh, j * win.sw
                rows, cols = slice(top, top + win.kh), slice(left, left + win.kw)
                g = dout[n, :, i, j][:, None, None, None]  # (F, 1, 1, 1): one value per filter
                dxpad[n, :, rows, cols] += np.sum(g * w, axis=0)  # += : windows overlap
                dw += g * xpad[n, :, rows, cols]
    db = dout.sum(axis=(0, 2, 3)).astype(w.dtype, copy=False)
    dx = dxpad[:, :, win.ph : win.ph + win.H, win.pw : win.pw + win.W]
    return dx.copy(), dw, db

"""Sliding-window geometry and the argument checks shared by convolution and pooling.

A window of ``kh x kw`` slides over the last two axes of an input of height
``H`` and width ``W``, zero-padded by ``ph`` rows and ``pw`` columns on each
side, in steps of ``sh`` rows and ``sw`` columns. There are::

    Ho = 1 + (H + 2*ph - kh) // sh      Wo = 1 + (W + 2*pw - kw) // sw

windows (CS231n's and PyTorch's formula: rows or columns left over at the
bottom or right that do not fill a window are ignored). Window ``(i, j)`` of the
padded input covers rows ``i*sh .. i*sh + kh - 1`` and columns
``j*sw .. j*sw + kw - 1``.

The 1-D layers (``conv1d``, ``max_pool1d``) are the 2-D ones on inputs of height
1, so this one geometry serves both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._validate import check_options, float_array, int_at_least, same_dtype
from ...errors import InputError, InputTypeError, describe

__all__: list[str] = []  # helpers for conv.py and pool.py, not part of the public API

@dataclass(frozen=True)
class Windows:
    """Where the ``kh x kw`` windows lie on an ``H x W`` input (see the module docstring)."""

    H: int
    W: int
    kh: int
    kw: int
    sh: int = 1
    sw: int = 1
    ph: int = 0
    pw: int = 0

    @property
    def Hp(self) -> int:
        """Padded height ``H + 2*ph``."""
        return self.H + 2 * self.ph

    @property
    def Wp(self) -> int:
        """Padded width ``W + 2*pw``."""
        return self.W + 2 * self.pw

    @property
    def Ho(self) -> int:
        """Number of window rows (the output height)."""
        return 1 + (self.Hp - self.kh) // self.sh

    @property
    def Wo(self) -> int:
        """Number of window columns (the output width)."""
        return 1 + (self.Wp - self.kw) // self.sw

    @property
    def offsets(self) -> list[tuple[int, int]]:
        """The ``(di, dj)`` positions inside a window, in row-major order."""
        return [(di, dj) for di in range(self.kh) for dj in range(self.kw)]

    @property
    def overlapping(self) -> bool:
        """True when neighbouring windows share elements (stride smaller than the window)."""
        return self.sh < self.kh or self.sw < self.kw

    def at_offset(self, a: np.ndarray, di: int, dj: int) -> np.ndarray:
        """View of ``a[..., Hp, Wp]``: element ``(di, dj)`` of every window, shape (..., Ho, Wo).

        A view, not a copy, so ``at_offset(dx, di, dj)[...] += g`` scatters
        ``g`` back to the window elements and overlapping windows accumulate.
        """
        rows = slice(di, di + self.sh * (self.Ho - 1) + 1, self.sh)
        cols = slice(dj, dj + self.sw * (self.Wo - 1) + 1, self.sw)
        return a[..., rows, cols]


# --- argument checks ---------------------------------------------------------------
def windows_fit(win: Windows, x_shape: tuple[int, ...], window: str, spatial: int) -> Windows:
    """Raise unless at least one window fits in the padded input; return ``win``.

    ``window`` names the argument that sets the window size (``"w"``,
    ``"pool_height/pool_width"``); ``spatial`` is 2 for images, 1 for signals.
    """
    if win.kh > win.Hp or win.kw > win.Wp:
        if spatial == 1:
            size, padded, pad = f"{win.kw}", f"L + 2*pad = {win.Wp}", f"{win.pw}"
        else:
            size, padded = f"{win.kh} x {win.kw}", f"(H + 2*pad, W + 2*pad) = ({win.Hp}, {win.Wp})"
            pad = f"{win.ph}"
        raise InputError(
            f"the window set by {window} ({size}) is larger than the padded input "
            f"{padded} of x with shape {tuple(x_shape)} (pad {pad}); use a smaller window "
            "or more padding"
        )
    return win


_CONV_LAYOUTS = {  # spatial axes -> (x layout, w layout)
    2: ("(N, C, H, W)", "(F, C, HH, WW)"),
    1: ("(N, C, L)", "(F, C, K)"),
}


def conv_inputs(
    x: object, w: object, b: object, stride: object, pad: object, spatial: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Windows]:
    """Check a convolution's arguments; return ``x`` and ``w`` as 4-D arrays, ``b``, the windows.

    ``spatial`` is 2 for ``conv2d`` and 1 for ``conv1d``, whose signals of length
    ``L`` become images of height 1 (the stride and padding then act on the
    width only).
    """
    x_layout, w_layout = _CONV_LAYOUTS[spatial]
    x = float_array("x", x, x_layout)
    w = float_array("w", w, w_layout)
    b = float_array("b", b, "(F,)")
    same_dtype(x, w=w, b=b)
    if x.shape[1] == 0:
        raise InputError(f"x must have shape {x_layout} with C >= 1 channel, got {x.shape}")
    if 0 in w.shape:
        raise InputError(
            f"w must have shape {w_layout} with at least one filter (F >= 1) and a kernel of "
            f"size >= 1 along each axis, got {w.shape}")
    if w.shape[1] != x.shape[1]:
        raise InputError(
            f"w must have shape {w_layout} with C == x.shape[1] == {x.shape[1]} "
            f"(the input channels), got {w.shape}"
        )
    if b.shape != (w.shape[0],):
        raise InputError(
            f"b must have shape (F,) = ({w.shape[0]},) with F = w.shape[0], got {b.shape}"
        )
    s = int_at_least("stride", stride, 1)
    p = int_at_least("pad", pad, 0)
    if spatial == 1:
        x, w = x[:, :, None, :], w[:, :, None, :]
        win = Windows(1, x.shape[3], 1, w.shape[3], 1, s, 0, p)
    else:
        win = Windows(x.shape[2], x.shape[3], w.shape[2], w.shape[3], s, s, p, p)
    return x, w, b, windows_fit(win, x.shape, "w", spatial)


def param_dict(name: str, params: object, defaults: dict[str, int]) -> dict[str, int]:
    """CS231n's ``conv_param``/``pool_param``: ``defaults`` updated from ``params``.

    Unknown keys are an error (a misspelt ``'padding'`` must not be ignored).
    """
    if not isinstance(params, dict):
        raise InputTypeError(
            f"{name} must be a dict with keys {sorted(defaults)}, got {describe(params)}"
        )
    check_options(name, params, defaults)
    return {**defaults, **params}

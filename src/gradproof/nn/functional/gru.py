"""GRU: torch.nn.GRU's equations, so that it can be checked against PyTorch.

Gate order r, z, n (reset, update, new), with separate input and hidden biases::

    r   = σ(x Wx_r + bx_r + h Wh_r + bh_r)
    z   = σ(x Wx_z + bx_z + h Wh_z + bh_z)
    n   = tanh(x Wx_n + bx_n + r * (h Wh_n + bh_n))
    h'  = (1 - z) * n + z * h

This is the variant of Cho et al. (2014) as PyTorch and cuDNN implement it: the
reset gate multiplies ``h Wh_n + bh_n`` *after* the matrix product (the
original paper applies it to ``h`` before). Mapping to ``torch.nn.GRU``
(``batch_first=True``): ``Wx = weight_ih_l0.T`` (D, 3H), ``Wh = weight_hh_l0.T``
(H, 3H), ``bx = bias_ih_l0``, ``bh = bias_hh_l0`` (3H,).
"""

from __future__ import annotations

import numpy as np

from ._recurrence import (
    CELLS,
    ScanCache,
    backward_arguments,
    check_recurrent,
    scan_backward,
    scan_forward,
)

__all__ = ["gru_step", "gru_step_backward", "gru", "gru_backward"]

_GRU = CELLS["gru"]


def gru_step(
    x: np.ndarray,
    prev_h: np.ndarray,
    Wx: np.ndarray,
    Wh: np.ndarray,
    bx: np.ndarray,
    bh: np.ndarray,
) -> tuple[np.ndarray, ScanCache]:
    """One GRU step. x (N, D), prev_h (N, H), Wx (D, 3H), Wh (H, 3H), bx (3H,), bh (3H,)
    -> ``(next_h (N, H), cache)``."""
    check_recurrent(_GRU, x, prev_h, Wx, Wh, {"bx": bx, "bh": bh}, step=True, h_name="prev_h")
    hs, _, cache = scan_forward(_GRU, x[:, None], prev_h, None, Wx, Wh, bx, bh)
    return hs[:, 0], cache


def gru_step_backward(dnext_h: np.ndarray, cache: ScanCache) -> tuple[np.ndarray, ...]:
    """Gradients of :func:`gru_step`: ``(dx, dprev_h, dWx, dWh, dbx, dbh)``.

    dnext_h: next_h's shape (N, H) and dtype.
    """
    cache, dhs, _ = backward_arguments(_GRU, "gru_step", cache, dnext_h)
    dx, dprev_h, _, dWx, dWh, dbx, dbh = scan_backward(dhs, None, cache)
    return dx[:, 0], dprev_h, dWx, dWh, dbx, dbh


def gru(
    x: np.ndarray,
    h0: np.ndarray,
    Wx: np.ndarray,
    Wh: np.ndarray,
    bx: np.ndarray,
    bh: np.ndarray,
) -> tuple[np.ndarray, ScanCache]:
    """A GRU over a whole sequence. x (N, T, D), h0 (N, H), Wx (D, 3H), Wh (H, 3H),
    bx (3H,), bh (3H,) -> ``(h (N, T, H), cache)``."""
    check_recurrent(_GRU, x, h0, Wx, Wh, {"bx": bx, "bh": bh}, step=False, h_name="h0")
    hs, _, cache = scan_forward(_GRU, x, h0, None, Wx, Wh, bx, bh)
    return hs, cache


def gru_backward(dh: np.ndarray, cache: ScanCache) -> tuple[np.ndarray, ...]:
    """Backpropagation through time for :func:`gru`.

    dh (N, T, H) -> ``(dx (N, T, D), dh0 (N, H), dWx (D, 3H), dWh (H, 3H), dbx, dbh (3H,))``.
    """
    cache, dh, _ = backward_arguments(_GRU, "gru", cache, dh)
    dx, dh0, _, dWx, dWh, dbx, dbh = scan_backward(dh, None, cache)
    return dx, dh0, dWx, dWh, dbx, dbh

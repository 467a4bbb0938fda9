"""Recurrent layers: vanilla RNN and LSTM (CS231n); the GRU is in :mod:`.gru`, the
temporal layers in :mod:`.temporal`.

Every layer here is a cell from :mod:`._recurrence` run by one shared scan;
the step functions are that scan over a single time step. Shapes: N sequences,
T time steps, D input features, H hidden units.

==============================  ==========================================================
vanilla RNN                     ``h_t = tanh(x_t Wx + h_{t-1} Wh + b)``
LSTM (gate order i, f, o, g)    ``a = x_t Wx + h_{t-1} Wh + b``, ``i, f, o = σ(a_i, a_f,
                                a_o)``, ``g = tanh(a_g)``, ``c_t = f c_{t-1} + i g``,
                                ``h_t = o tanh(c_t)``
GRU (gate order r, z, n)        see :mod:`.gru`
==============================  ==========================================================

Backward functions return one gradient per input, in argument order. The
CS231n names (``rnn_step_forward`` ...) are aliases; ``lstm_step_forward``
returns CS231n's triple ``(next_h, next_c, cache)``, while :func:`lstm_step`
returns ``((next_h, next_c), cache)`` so that ``gradproof.check_vjp`` sees a
tuple output.
"""

from __future__ import annotations

import numpy as np

from ..._validate import expect_dim, float_array
from ._recurrence import (
    CELLS,
    ScanCache,
    backward_arguments,
    check_recurrent,
    scan_backward,
    scan_forward,
)

__all__ = [
    "rnn_step",
    "rnn_step_backward",
    "rnn",
    "rnn_backward",
    "lstm_step",
    "lstm_step_backward",
    "lstm",
    "lstm_backward",
    "rnn_step_forward",
    "rnn_forward",
    "lstm_step_forward",
    "lstm_forward",
]

_RNN, _LSTM = CELLS["rnn"], CELLS["lstm"]


# --- vanilla RNN ---------------------------------------------------------------------
def rnn_step(
    x: np.ndarray, prev_h: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, ScanCache]:
    """One vanilla-RNN step: ``next_h = tanh(x Wx + prev_h Wh + b)``.

    x (N, D), prev_h (N, H), Wx (D, H), Wh (H, H), b (H,) -> ``(next_h (N, H), cache)``.
    """
    check_recurrent(_RNN, x, prev_h, Wx, Wh, {"b": b}, step=True, h_name="prev_h")
    hs, _, cache = scan_forward(_RNN, x[:, None], prev_h, None, Wx, Wh, b)
    return hs[:, 0], cache


def rnn_step_backward(dnext_h: np.ndarray, cache: ScanCache) -> tuple[np.ndarray, ...]:
    """Gradients of :func:`rnn_step`: ``(dx, dprev_h, dWx, dWh, db)``, shaped like the inputs.

    dnext_h: next_h's shape (N, H) and dtype.
    """
    cache, dhs, _ = backward_arguments(_RNN, "rnn_step", cache, dnext_h)
    dx, dprev_h, _, dWx, dWh, db, _ = scan_backward(dhs, None, cache)
    return dx[:, 0], dprev_h, dWx, dWh, db


def rnn(
    x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, ScanCache]:
    """A vanilla RNN over a whole sequence.

    x (N, T, D), h0 (N, H), Wx (D, H), Wh (H, H), b (H,) -> ``(h (N, T, H), cache)``;
    ``h[:, t]`` is the hidden state after step t (``h0`` is not included).
    """
    check_recurrent(_RNN, x, h0, Wx, Wh, {"b": b}, step=False, h_name="h0")
    hs, _, cache = scan_forward(_RNN, x, h0, None, Wx, Wh, b)
    return hs, cache


def rnn_backward(dh: np.ndarray, cache: ScanCache) -> tuple[np.ndarray, ...]:
    """Backpropagation through time for :func:`rnn`.

    dh (N, T, H): upstream gradient of every hidden state. Returns
    ``(dx (N, T, D), dh0 (N, H), dWx (D, H), dWh (H, H), db (H,))``.
    """
    cache, dh, _ = backward_arguments(_RNN, "rnn", cache, dh)
    dx, dh0, _, dWx, dWh, db, _ = scan_backward(dh, None, cache)
    return dx, dh0, dWx, dWh, db


# --- LSTM ----------------------------------------------------------------------------
def lstm_step(
    x: np.ndarray,
    prev_h: np.ndarray,
    prev_c: np.ndarray,
    Wx: np.ndarray,
    Wh: np.ndarray,
    b: np.ndarray,
) -> tuple[tuple[np.ndarray, np.ndarray], ScanCache]:
    """One LSTM step, gate order i, f, o, g (CS231n).

    x (N, D), prev_h (N, H), prev_c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,)
    -> ``((next_h (N, H), next_c (N, H)), cache)``.
    """
    check_recurrent(_LSTM, x, prev_h, Wx, Wh, {"b": b}, step=True, h_name="prev_h")
    float_array("prev_c", prev_c, "N H")
    expect_dim("prev_c", prev_c, 0, prev_h.shape[0], "N == prev_h.shape[0]")
    expect_dim("prev_c", prev_c, 1, prev_h.shape[1], "H == prev_h.shape[1]")
    hs, next_c, cache = scan_forward(_LSTM, x[:, None], prev_h, prev_c, Wx, Wh, b)
    return (hs[:, 0], next_c), cache


def lstm_step_backward(
    dnext_h: np.ndarray, dnext_c: np.ndarray, cache: ScanCache
) -> tuple[np.ndarray, ...]:
    """Gradients of :func:`lstm_step`: ``(dx, dprev_h, dprev_c, dWx, dWh, db)``.

    dnext_h, dnext_c: the shapes (N, H) and dtypes of next_h and next_c.
    """
    cache, dhs, dnext_c = backward_arguments(_LSTM, "lstm_step", cache, dnext_h, dnext_c)
    dx, dprev_h, dprev_c, dWx, dWh, db, _ = scan_backward(dhs, dnext_c, cache)
    return dx[:, 0], dprev_h, dprev_c, dWx, dWh, db


def lstm(
    x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, ScanCache]:
    """An LSTM over a whole sequence; the initial cell state is zero (CS231n).

    x (N, T, D), h0 (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,) -> ``(h (N, T, H), cache)``.
    """
    check_recurrent(_LSTM, x, h0, Wx, Wh, {"b": b}, step=False, h_name="h0")
    hs, _, cache = scan_forward(_LSTM, x, h0, np.zeros_like(h0), Wx, Wh, b)
    return hs, cache


def lstm_backward(dh: np.ndarray, cache: ScanCache) -> tuple[np.ndarray, ...]:
    """Backpropagation through time for :func:`lstm`.

    dh (N, T, H) -> ``(dx (N, T, D), dh0 (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,))``.
    """
    cache, dh, _ = backward_arguments(_LSTM, "lstm", cache, dh)
    dx, dh0, _, dWx, dWh, db, _ = scan_backward(dh, None, cache)
    return dx, dh0, dWx, dWh, db


# --- CS231n names ----------------------------------------------------------------------
def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """CS231n's ``lstm_step_forward``: ``(next_h, next_c, cache)`` (see :func:`lstm_step`)."""
    (next_h, next_c), cache = lstm_step(x, prev_h, prev_c, Wx, Wh, b)
    return next_h, next_c, cache


rnn_step_forward = rnn_step
rnn_forward = rnn
lstm_forward = lstm

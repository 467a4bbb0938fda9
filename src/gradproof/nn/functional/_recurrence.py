"""The machinery shared by every recurrent layer: a cell table and one scan.

A recurrent layer is a *cell* applied along time. Each cell (vanilla RNN,
LSTM, GRU) is two small functions, its forward and its local backward, kept
side by side in :data:`CELLS`; :func:`scan_forward` and :func:`scan_backward`
run any cell over a sequence. A single step (``rnn_step``, ``lstm_step``) is the
scan over one time step, so steps and sequences cannot disagree.

Layout: the input projection ``ax = x @ Wx + bx`` is computed for all time
steps in one matrix product before the loop, and in the backward ``dx``,
``dWx``, ``dWh`` and the biases are computed after the loop in one product
each; only ``h @ Wh`` (forward) and ``dah @ Wh.T`` (backward) run per step.

Cell contract, with ``G*H`` pre-activation columns (G gates of width H):
``forward(ax_t, ah_t, prev_h, prev_c) -> (h, c, saved)`` where ``ax_t`` and
``ah_t`` are the input and hidden projections (N, G*H); ``backward(dh, dc,
saved) -> (dax_t, dah_t, dh_direct, dprev_c)`` where ``dh_direct`` is the part
of ``d prev_h`` that does not flow through ``Wh`` (GRU's ``z * h`` path).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ...errors import InputError
from ._checks import cache_of, upstream
from ._sequence_checks import (
    affine_grads,
    cast_like,
    expect_dim,
    float_array,
    nonempty_time,
)
from .activations import logistic as sigmoid  # overflow-free in both tails

__all__ = [
    "Cell",
    "CELLS",
    "ScanCache",
    "scan_forward",
    "scan_backward",
    "check_recurrent",
    "backward_arguments",
]


class Cell(NamedTuple):
    name: str
    gates: int  # the pre-activation has gates * H columns
    has_state: bool  # carries a cell state c besides h (LSTM)
    split_bias: bool  # separate input and hidden biases (GRU, as torch.nn.GRU)
    forward: Callable
    backward: Callable


# --- vanilla RNN: h = tanh(a), a = x Wx + h Wh + b -------------------------------
def _rnn_forward(ax, ah, prev_h, prev_c):
    h = np.tanh(ax + ah)
    return h, None, h


def _rnn_backward(dh, dc, h):
    da = dh * (1.0 - h * h)
    return da, da, None, None


# --- LSTM, CS231n gate order i, f, o, g ---------------------------------------------
def _lstm_forward(ax, ah, prev_h, prev_c):
    a = ax + ah
    H = a.shape[1] // 4
    ifo = sigmoid(a[:, : 3 * H])  # one call for the three sigmoid gates
    i, f, o = ifo[:, :H], ifo[:, H : 2 * H], ifo[:, 2 * H :]
    g = np.tanh(a[:, 3 * H :])
    c = f * prev_c + i * g
    tanh_c = np.tanh(c)
    return o * tanh_c, c, (i, f, o, g, prev_c, tanh_c)


def _lstm_backward(dh, dc_next, saved):
    i, f, o, g, prev_c, tanh_c = saved
    dc = dc_next + dh * o * (1.0 - tanh_c * tanh_c)
    da = np.concatenate(
        [
            dc * g * i * (1.0 - i),  # input gate
            dc * prev_c * f * (1.0 - f),  # forget gate
            dh * tanh_c * o * (1.0 - o),  # output gate
            dc * i * (1.0 - g * g),  # block input
        ],
        axis=1,
    )
    return da, da, None, dc * f


# --- GRU, torch.nn.GRU's equations and gate order r, z, n ---------------------------
def _gru_forward(ax, ah, prev_h, prev_c):
    H = ax.shape[1] // 3
    rz = sigmoid(ax[:, : 2 * H] + ah[:, : 2 * H])  # one call for both sigmoid gates
    r, z = rz[:, :H], rz[:, H:]
    hn = ah[:, 2 * H :]  # W_hn h + b_hn, gated by r
    n = np.tanh(ax[:, 2 * H :] + r * hn)
    h = n + z * (prev_h - n)  # (1 - z) * n + z * prev_h
    return h, None, (r, z, n, hn, prev_h)


def _gru_backward(dh, dc, saved):
    r, z, n, hn, prev_h = saved
    dan = dh * (1.0 - z) * (1.0 - n * n)
    dar = dan * hn * r * (1.0 - r)
    daz = dh * (prev_h - n) * z * (1.0 - z)
    dax = np.concatenate([dar, daz, dan], axis=1)
    dah = np.concatenate([dar, daz, dan * r], axis=1)
    return dax, dah, dh * z, None


CELLS = {
    "rnn": Cell("rnn", 1, False, False, _rnn_forward, _rnn_backward),
    "lstm": Cell("lstm", 4, True, False, _lstm_forward, _lstm_backward),
    "gru": Cell("gru", 3, False, True, _gru_forward, _gru_backward),
}


class ScanCache(NamedTuple):
    cell: Cell
    x: np.ndarray  # (N, T, D)
    h0: np.ndarray  # (N, H)
    c0: np.ndarray | None  # (N, H) for cells with a state
    Wx: np.ndarray
    Wh: np.ndarray
    bx: np.ndarray
    bh: np.ndarray | None
    hs: np.ndarray  # (N, T, H)
    saved: list[Any]  # what each step's cell backward needs


def scan_forward(
    cell: Cell,
    x: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray | None,
    Wx: np.ndarray,
    Wh: np.ndarray,
    bx: np.ndarray,
    bh: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, ScanCache]:
    """Run ``cell`` over ``x`` (N, T, D) from ``h0`` (and ``c0``): ``(hs, c_T, cache)``.

    ``hs`` (N, T, H) holds every hidden state; ``c_T`` is the last cell state
    (None for cells without one).
    """
    N, T, _ = x.shape
    ax = x @ Wx + bx  # (N, T, G*H) for all steps at once
    hs = np.empty((N, T, h0.shape[1]), dtype=np.result_type(ax, h0, Wh))
    h, c, saved = h0, c0, []
    for t in range(T):
        ah = h @ Wh if bh is None else h @ Wh + bh
        h, c, step_saved = cell.forward(ax[:, t], ah, h, c)
        hs[:, t] = h
        saved.append(step_saved)
    return hs, c, ScanCache(cell, x, h0, c0, Wx, Wh, bx, bh, hs, saved)


def scan_backward(dhs: np.ndarray, dc_last: np.ndarray | None, cache: ScanCache) -> tuple:
    """Backpropagation through time for :func:`scan_forward`.

    ``dhs`` (N, T, H) is the upstream gradient of every hidden state and
    ``dc_last`` that of the last cell state (None: zero). Returns
    ``(dx, dh0, dc0, dWx, dWh, dbx, dbh)``, each in its input's dtype
    (``dc0`` and ``dbh`` are None when the cell has no state / no hidden bias).
    """
    cell, x, h0, c0, Wx, Wh, bx, bh, hs, saved = cache
    N, T, H = hs.shape
    dax = np.empty((N, T, Wx.shape[1]), dtype=hs.dtype)
    dah = dax if not cell.split_bias else np.empty_like(dax)
    dh = np.zeros((N, H), dtype=hs.dtype)
    dc = None
    if cell.has_state:
        dc = np.zeros((N, H), dtype=hs.dtype) if dc_last is None else dc_last
    for t in reversed(range(T)):
        dh = dh + dhs[:, t]  # from the output at t and from step t + 1
        dax_t, dah_t, dh_direct, dc = cell.backward(dh, dc, saved[t])
        dax[:, t] = dax_t
        if cell.split_bias:
            dah[:, t] = dah_t
        dh = dah_t @ Wh.T
        if dh_direct is not None:
            dh = dh + dh_direct
    dx, dWx, dbx = affine_grads(x, Wx, dax)
    h_prev = np.concatenate([h0[:, None, :], hs[:, :-1]], axis=1)  # h_{t-1} for every t
    _, dWh, dbh = affine_grads(h_prev, Wh, dah, need_dx=False)
    return (
        cast_like(dx, x),
        cast_like(dh, h0),
        cast_like(dc, c0) if c0 is not None else None,
        cast_like(dWx, Wx),
        cast_like(dWh, Wh),
        cast_like(dbx, bx),
        cast_like(dbh, bh) if bh is not None else None,
    )


def check_recurrent(
    cell: Cell,
    x: np.ndarray,
    h: np.ndarray,
    Wx: np.ndarray,
    Wh: np.ndarray,
    biases: dict[str, np.ndarray],
    *,
    step: bool,
    h_name: str,
) -> None:
    """Validate the inputs of a recurrent layer; messages name the argument.

    ``x`` is (N, D) for a step and (N, T, D) for a sequence; ``h`` (N, H) is
    ``prev_h`` or ``h0``; ``Wx`` (D, G*H), ``Wh`` (H, G*H), each bias (G*H,).
    """
    G = cell.gates
    gh = "H" if G == 1 else f"{G}H"
    float_array("x", x, "N D" if step else "N T D")
    if not step:
        nonempty_time("x", x)
    float_array(h_name, h, "N H")
    expect_dim(h_name, h, 0, x.shape[0], "N == x.shape[0]")
    H = h.shape[1]
    float_array("Wx", Wx, f"D {gh}")
    expect_dim("Wx", Wx, 0, x.shape[-1], "D == x.shape[-1]")
    expect_dim("Wx", Wx, 1, G * H, f"{gh} with H == {h_name}.shape[1]")
    float_array("Wh", Wh, f"H {gh}")
    expect_dim("Wh", Wh, 0, H, f"H == {h_name}.shape[1]")
    expect_dim("Wh", Wh, 1, G * H, f"{gh} with H == {h_name}.shape[1]")
    for name, b in biases.items():
        float_array(name, b, gh)
        expect_dim(name, b, 0, G * H, f"{gh} with H == {h_name}.shape[1]")


def backward_arguments(
    cell: Cell, layer: str, cache: object, dh: object, dc: object = None
) -> tuple[ScanCache, np.ndarray, np.ndarray | None]:
    """Check a recurrent backward's arguments: ``(cache, dhs (N, T, H), dc (N, H) or None)``.

    ``layer`` is the forward's name: ``"lstm_step"`` for a single step, whose
    upstream gradient ``dnext_h`` is (N, H) (returned as (N, 1, H) for the
    scan), or ``"lstm"`` for a sequence, whose ``dh`` is (N, T, H). ``dc`` is
    ``dnext_c`` (N, H), the second output's gradient of a step of a cell with a
    state (an LSTM step); it is ignored otherwise. Each must have its output's
    shape and dtype exactly.
    """
    step = layer.endswith("_step")
    backward = f"{layer}_backward"
    cache = cache_of(cache, ScanCache, backward, layer)
    if cache.cell.name != cell.name:  # compare names: a cache may be a deep copy
        other = layer.replace(cell.name, cache.cell.name, 1)
        raise InputError(
            f"{backward}() takes the cache of {layer}(), got one from {other}(); "
            f"use {other}_backward()"
        )
    N, T, H = cache.hs.shape
    if step and T != 1:
        raise InputError(
            f"{backward}() takes the cache of one step, got the cache of {T} time steps "
            f"from {cell.name}(); use {cell.name}_backward()"
        )
    if step:
        dhs = upstream(dh, (N, H), cache.hs.dtype, layer, "dnext_h")[:, None]
    else:
        dhs = upstream(dh, (N, T, H), cache.hs.dtype, layer, "dh")
    if not (step and cell.has_state):
        return cache, dhs, None
    # next_c's dtype: the gates' (hs's) combined with prev_c's
    dc = upstream(dc, (N, H), np.result_type(cache.hs, cache.c0), layer, "dnext_c")
    return cache, dhs, dc

"""The machinery shared by every recurrent layer: a cell table and one scan.

A recurrent layer is a *cell* applied along time. Each cell (vanilla RNN,
LSTM, GRU) is three small functions kept side by side in :data:`CELLS`: its
forward step, the local slopes its backward needs (computed once for all
time steps), and its backward step. :func:`scan_forward` and
:func:`scan_backward` run any cell over a sequence. A single step
(``rnn_step``, ``lstm_step``) is the scan over one time step, so steps and
sequences cannot disagree.

Where the time goes, and how it is kept short:

* The input projection ``ax = x @ Wx + bx`` is one matrix product for all
  time steps before the loop; in the backward, ``dx``, ``dWx``, ``dWh`` and
  the biases are one product (or sum) each after the loop. Only ``h @ Wh``
  (forward) and ``da @ Wh.T`` (backward) run per step: one GEMM per step.
* Everything lives in preallocated time-major buffers (T, N, ...): the
  hidden states ``hs[0] = h0, hs[1], ..., hs[T]`` (so ``hs[:-1]`` is every
  ``h_{t-1}``, the left factor of ``dWh``, without a copy), the gate
  activations ``acts`` (which first hold the input projection: a step adds
  ``h_{t-1} @ Wh`` and applies the nonlinearities in place), the cell states.
  A step works in place with ``out=`` and allocates (almost) nothing; a
  fresh large array costs page faults, not just a copy.
* The backward's slopes (``i (1 - i) g``, ``1 - tanh(c)**2``, ...) do not depend
  on the recurrence, so they are computed for all steps at once before the
  loop, straight into the buffer of the pre-activation gradients; a backward
  step then multiplies its slice by ``dh`` (or ``dc``) in place and runs the
  GEMM.

Cell contract, with ``G*H`` pre-activation columns (G gates of width H):

* ``forward(ah, t, run)``: ``run.acts[t]`` (N, G*H) holds the input projection
  of step ``t``, ``ah`` (N, G*H) the hidden one (``h_{t-1} @ Wh + bh``, a
  scratch buffer the cell may overwrite); turns ``run.acts[t]`` into the
  gate activations and writes ``run.hs[t + 1]`` (and ``run.cs[t + 1]``,
  ``run.extra[t]``).
* ``slopes(run, dax, dah) -> k``: writes the per-step factors of the
  pre-activation gradients into ``dax`` (T, N, G*H) and ``dah`` (the same
  array unless the cell has a separate hidden bias); returns any other
  factor the backward step needs.
* ``backward(dh, dc, t, run, k, dax_t, dah_t) -> (dh_direct, dprev_c)``:
  ``dh``, ``dc`` are the gradients of ``h_t``, ``c_t``; multiplies ``dax_t``
  and ``dah_t`` in place into the gradients of the pre-activations;
  ``dh_direct`` is the part of ``d h_{t-1}`` that does not flow through
  ``Wh`` (GRU's ``z * h`` path), or None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..._validate import cache_of, cast_like, expect_dim, float_array, nonempty_time, upstream
from ...errors import InputError

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
    slopes: Callable
    backward: Callable


class Run:
    """The time-major buffers of one scan: states, gate activations, what backward reads."""

    def __init__(self, T: int, N: int, H: int, G: int, has_state: bool, dtype: np.dtype):
        self.hs = np.empty((T + 1, N, H), dtype)  # hs[0] = h0, hs[t + 1] = h_t
        self.cs = np.empty((T + 1, N, H), dtype) if has_state else None
        # the input projection, then the gates (the vanilla RNN's only "gate" is h itself)
        self.acts = np.empty((T, N, G * H), dtype) if G > 1 else self.hs[1:]
        self.extra = np.empty((T, N, H), dtype) if G > 1 else None  # tanh(c_t), W_hn h + b_hn


def _sigmoid_(a: np.ndarray) -> None:
    """``a = 1 / (1 + exp(-a))`` in place. Exact in both tails: for very negative ``a``,
    ``exp(-a)`` overflows to inf and the result is 0, its correct limit."""
    np.negative(a, out=a)
    with np.errstate(over="ignore"):
        np.exp(a, out=a)
    a += 1
    np.reciprocal(a, out=a)


def _one_minus_(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.subtract(1, a, out=out)


# --- vanilla RNN: h = tanh(a), a = x Wx + h Wh + b -------------------------------
def _rnn_forward(ah, t, run):
    a = run.acts[t]  # is run.hs[t + 1]
    a += ah
    np.tanh(a, out=a)


def _rnn_slopes(run, dax, dah):
    h = run.hs[1:]
    _one_minus_(np.multiply(h, h, out=dax), out=dax)  # tanh' = 1 - h**2


def _rnn_backward(dh, dc, t, run, k, dax_t, dah_t):
    dax_t *= dh
    return None, None


# --- LSTM, CS231n gate order i, f, o, g ---------------------------------------------
def _lstm_forward(ah, t, run):
    H = run.hs.shape[2]
    a = run.acts[t]
    a += ah
    _sigmoid_(a[:, : 3 * H])  # i, f, o
    np.tanh(a[:, 3 * H :], out=a[:, 3 * H :])  # g
    i, f, o, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
    c = run.cs[t + 1]
    np.multiply(f, run.cs[t], out=c)
    c += i * g
    np.tanh(c, out=run.extra[t])
    np.multiply(o, run.extra[t], out=run.hs[t + 1])


def _lstm_slopes(run, dax, dah):
    """``da = dax * (dc, dc, dh, dc)`` per gate block; returns ``kc``: ``dc += dh * kc``."""
    H = run.hs.shape[2]
    a, tanh_c = run.acts, run.extra
    i, f, o, g = a[..., :H], a[..., H : 2 * H], a[..., 2 * H : 3 * H], a[..., 3 * H :]
    ki, kf, ko, kg = dax[..., :H], dax[..., H : 2 * H], dax[..., 2 * H : 3 * H], dax[..., 3 * H :]
    _one_minus_(i, out=ki)
    ki *= i
    ki *= g  # input gate: g i (1 - i)
    _one_minus_(f, out=kf)
    kf *= f
    kf *= run.cs[:-1]  # forget gate: c_{t-1} f (1 - f)
    _one_minus_(o, out=ko)
    ko *= o
    ko *= tanh_c  # output gate: tanh(c) o (1 - o)
    _one_minus_(np.multiply(g, g, out=kg), out=kg)
    kg *= i  # block input: i (1 - g**2)
    kc = _one_minus_(tanh_c * tanh_c, out=np.empty_like(tanh_c))
    kc *= o
    return kc


def _lstm_backward(dh, dc_next, t, run, kc, dax_t, dah_t):
    N, H = dh.shape
    dc = dh * kc[t]
    if dc_next is not None:
        dc += dc_next
    dax_t[:, : 2 * H].reshape(N, 2, H)[...] *= dc[:, None, :]  # i and f
    dax_t[:, 2 * H : 3 * H] *= dh  # o sees dh, not dc
    dax_t[:, 3 * H :] *= dc  # g
    dc *= run.acts[t, :, H : 2 * H]  # dc_{t-1} = dc * f
    return None, dc


# --- GRU, torch.nn.GRU's equations and gate order r, z, n ---------------------------
def _gru_forward(ah, t, run):
    H = run.hs.shape[2]
    a = run.acts[t]
    rz, n = a[:, : 2 * H], a[:, 2 * H :]
    rz += ah[:, : 2 * H]
    _sigmoid_(rz)
    hn = ah[:, 2 * H :]
    run.extra[t] = hn  # W_hn h + b_hn, gated by r
    hn *= rz[:, :H]
    n += hn
    np.tanh(n, out=n)
    h = run.hs[t + 1]
    np.subtract(run.hs[t], n, out=h)
    h *= rz[:, H:]
    h += n  # (1 - z) * n + z * prev_h


def _gru_slopes(run, dax, dah):
    """The pre-activation gradients are ``dh * dax`` (input side) and ``dh * dah``."""
    H = run.hs.shape[2]
    a, hn = run.acts, run.extra
    r, z, n = a[..., :H], a[..., H : 2 * H], a[..., 2 * H :]
    kr, kz, kn = dax[..., :H], dax[..., H : 2 * H], dax[..., 2 * H :]
    one_minus_z = _one_minus_(z, out=np.empty_like(z))
    _one_minus_(np.multiply(n, n, out=kn), out=kn)
    kn *= one_minus_z  # d h / d a_n = (1 - z) (1 - n**2)
    _one_minus_(r, out=kr)
    kr *= r
    kr *= hn
    kr *= kn  # reset gate, through n
    np.subtract(run.hs[:-1], n, out=kz)
    kz *= z
    kz *= one_minus_z  # update gate: (h_{t-1} - n) z (1 - z)
    dah[..., : 2 * H] = dax[..., : 2 * H]
    np.multiply(kn, r, out=dah[..., 2 * H :])  # the hidden side of n is gated by r


def _gru_backward(dh, dc, t, run, k, dax_t, dah_t):
    N, H = dh.shape
    dax_t.reshape(N, 3, H)[...] *= dh[:, None, :]
    dah_t.reshape(N, 3, H)[...] *= dh[:, None, :]
    return dh * run.acts[t, :, H : 2 * H], None  # z * dh flows straight to h_{t-1}


CELLS = {
    "rnn": Cell("rnn", 1, False, False, _rnn_forward, _rnn_slopes, _rnn_backward),
    "lstm": Cell("lstm", 4, True, False, _lstm_forward, _lstm_slopes, _lstm_backward),
    "gru": Cell("gru", 3, False, True, _gru_forward, _gru_slopes, _gru_backward),
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
    hs: np.ndarray  # (N, T, H): the output, a view of run.hs[1:]
    run: Run  # the time-major buffers
    x_steps: np.ndarray  # x as (T*N, D), time-major


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

    ``hs`` (N, T, H) holds every hidden state (a view of time-major memory);
    ``c_T`` is the last cell state (None for cells without one). Everything is
    computed in the dtype of all inputs together (float32 if all are).
    """
    N, T, D = x.shape
    H = h0.shape[1]
    dtype = np.result_type(*(a for a in (x, h0, c0, Wx, Wh, bx, bh) if a is not None))
    run = Run(T, N, H, cell.gates, cell.has_state, dtype)
    x_steps = x.transpose(1, 0, 2).reshape(T * N, D)  # time-major: step t is rows t*N..
    ax = run.acts.reshape(T * N, -1)  # a view: acts is contiguous
    np.matmul(x_steps.astype(dtype, copy=False), Wx.astype(dtype, copy=False), out=ax)
    ax += bx
    run.hs[0] = h0
    if cell.has_state:
        run.cs[0] = c0
    ah = np.empty((N, cell.gates * H), dtype)
    Wh_d = Wh.astype(dtype, copy=False)
    for t in range(T):
        np.matmul(run.hs[t], Wh_d, out=ah)  # the one GEMM of the step
        if bh is not None:
            ah += bh
        cell.forward(ah, t, run)
    hs = run.hs[1:].transpose(1, 0, 2)
    c_last = run.cs[T] if cell.has_state else None
    return hs, c_last, ScanCache(cell, x, h0, c0, Wx, Wh, bx, bh, hs, run, x_steps)


def scan_backward(dhs: np.ndarray, dc_last: np.ndarray | None, cache: ScanCache) -> tuple:
    """Backpropagation through time for :func:`scan_forward`.

    ``dhs`` (N, T, H) is the upstream gradient of every hidden state and
    ``dc_last`` that of the last cell state (None: zero). Returns
    ``(dx, dh0, dc0, dWx, dWh, dbx, dbh)``, each in its input's dtype
    (``dc0`` and ``dbh`` are None when the cell has no state / no hidden bias).
    """
    cell, x, h0, c0, Wx, Wh, bx, bh, _, run, x_steps = cache
    T, N, H = run.hs.shape[0] - 1, run.hs.shape[1], run.hs.shape[2]
    dtype = run.hs.dtype
    dax = np.empty((T, N, Wx.shape[1]), dtype)
    dah = np.empty_like(dax) if cell.split_bias else dax
    slopes = cell.slopes(run, dax, dah)
    WhT = np.ascontiguousarray(Wh.T, dtype=dtype)  # BLAS runs a contiguous right factor faster
    dh = np.zeros((N, H), dtype)
    dc = dc_last.astype(dtype, copy=False) if dc_last is not None else None
    for t in reversed(range(T)):
        dh += dhs[:, t]  # from the output at t and from step t + 1
        dh_direct, dc = cell.backward(dh, dc, t, run, slopes, dax[t], dah[t])
        np.matmul(dah[t], WhT, out=dh)  # the one GEMM of the step
        if dh_direct is not None:
            dh += dh_direct
    dax2, dah2 = dax.reshape(T * N, -1), dah.reshape(T * N, -1)
    dx = (dax2 @ Wx.T).reshape(T, N, -1).transpose(1, 0, 2)
    dWx = x_steps.T @ dax2
    dWh = run.hs[:-1].reshape(T * N, H).T @ dah2  # hs[:-1]: h_{t-1} for every t
    return (
        cast_like(np.ascontiguousarray(dx), x),
        cast_like(dh, h0),
        cast_like(dc, c0) if c0 is not None else None,
        cast_like(dWx, Wx),
        cast_like(dWh, Wh),
        cast_like(dax2.sum(axis=0), bx),
        cast_like(dah2.sum(axis=0), bh) if bh is not None else None,
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

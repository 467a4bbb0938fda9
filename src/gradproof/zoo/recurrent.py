"""Zoo family "recurrent": a vanilla tanh RNN over a sequence and one LSTM step.

RNN: x (N, T, D), h0 (N, H), wx (D, H), wh (H, H), b (H,) -> h (N, T, H).
LSTM step: x (N, D), h_prev (N, H), c_prev (N, H), wx (D, 4H), wh (H, 4H), b (4H,)
-> (h, c), each (N, H); gates in the order i, f, o, g along the 4H axis.
"""

from __future__ import annotations

import numpy as np

from .activations import sigmoid
from .case import add, normal

# --- vanilla RNN ----------------------------------------------------------------


def rnn_forward(x, h0, wx, wh, b):
    n, t_len, _ = x.shape
    hs = np.empty((n, t_len, h0.shape[1]), dtype=x.dtype)
    h = h0
    for t in range(t_len):
        h = np.tanh(x[:, t] @ wx + h @ wh + b)
        hs[:, t] = h
    return hs, (x, h0, wx, wh, hs)


def _rnn_backward(dout, cache, slip=None):
    """Backprop through time. ``slip`` reproduces a student's mistake:

    - ``"no_carry"``: the gradient dh_next arriving from step t+1 is dropped;
    - ``"h_prev_at_first_step"``: at t = 0 the tanh derivative uses 1 - h0**2
      (the previous state) instead of 1 - h[:, 0]**2.
    """
    x, h0, wx, wh, hs = cache
    dx = np.zeros_like(x)
    dwx, dwh, db = np.zeros_like(wx), np.zeros_like(wh), np.zeros(wx.shape[1], dtype=x.dtype)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(x.shape[1])):
        h_prev = hs[:, t - 1] if t > 0 else h0
        h_t = h_prev if (t == 0 and slip == "h_prev_at_first_step") else hs[:, t]
        dh = dout[:, t] if slip == "no_carry" else dout[:, t] + dh_next
        da = dh * (1 - h_t**2)
        dx[:, t] = da @ wx.T
        dwx += x[:, t].T @ da
        dwh += h_prev.T @ da
        db += da.sum(axis=0)
        dh_next = da @ wh.T
    return dx, dh_next, dwx, dwh, db


def rnn_backward(dout, cache):
    """dout (N, T, H) -> dx, dh0, dwx, dwh, db."""
    return _rnn_backward(dout, cache)


def rnn_backward_no_carry(dout, cache):
    return _rnn_backward(dout, cache, slip="no_carry")


def rnn_backward_first_step(dout, cache):
    return _rnn_backward(dout, cache, slip="h_prev_at_first_step")


def rnn_inputs(rng):
    n, t, d, h = 2, 4, 3, 5
    return (normal(rng, n, t, d), normal(rng, n, h, scale=0.5), normal(rng, d, h, scale=0.5),
            normal(rng, h, h, scale=0.4), normal(rng, h, scale=0.1))


# --- LSTM step ----------------------------------------------------------------------


def lstm_step_forward(x, h_prev, c_prev, wx, wh, b):
    hid = h_prev.shape[1]
    a = x @ wx + h_prev @ wh + b
    i, f, o = (sigmoid(a[:, k * hid:(k + 1) * hid]) for k in range(3))
    g = np.tanh(a[:, 3 * hid:])
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    return (o * tanh_c, c), (x, h_prev, c_prev, wx, wh, i, f, o, g, c, tanh_c)


def _lstm_gate_grads(dh, dc, cache, forget_slip=False):
    """Gradients of the four gate pre-activations (i, f, o, g) and of c_prev.

    ``forget_slip`` reproduces a student's mistake: the forget gate's gradient
    uses the new cell c instead of c_prev (the value f multiplies).
    """
    _, _, c_prev, _, _, i, f, o, g, c, tanh_c = cache
    dc_total = dc + dh * o * (1 - tanh_c**2)
    forget_factor = c if forget_slip else c_prev
    return (dc_total * g * i * (1 - i), dc_total * forget_factor * f * (1 - f),
            dh * tanh_c * o * (1 - o), dc_total * i * (1 - g**2), dc_total * f)


def _lstm_input_grads(da, dc_prev, cache):
    x, h_prev, _, wx, wh = cache[:5]
    return da @ wx.T, da @ wh.T, dc_prev, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def lstm_step_backward(dh, dc, cache):
    """dh, dc (N, H) -> dx, dh_prev, dc_prev, dwx, dwh, db."""
    di, df, do, dg, dc_prev = _lstm_gate_grads(dh, dc, cache)
    return _lstm_input_grads(np.concatenate([di, df, do, dg], axis=1), dc_prev, cache)


def lstm_step_backward_forget_slip(dh, dc, cache):
    di, df, do, dg, dc_prev = _lstm_gate_grads(dh, dc, cache, forget_slip=True)
    return _lstm_input_grads(np.concatenate([di, df, do, dg], axis=1), dc_prev, cache)


def lstm_step_backward_gate_order(dh, dc, cache):
    di, df, do, dg, dc_prev = _lstm_gate_grads(dh, dc, cache)
    # forward order is i, f, o, g; the backward stacks i, f, g, o
    return _lstm_input_grads(np.concatenate([di, df, dg, do], axis=1), dc_prev, cache)


def lstm_inputs(n=3, d=4, hid=5, dtype=np.float64):
    def make(rng):
        return (normal(rng, n, d, dtype=dtype), normal(rng, n, hid, scale=0.5, dtype=dtype),
                normal(rng, n, hid, dtype=dtype), normal(rng, d, 4 * hid, scale=0.5, dtype=dtype),
                normal(rng, hid, 4 * hid, scale=0.5, dtype=dtype),
                normal(rng, 4 * hid, scale=0.1, dtype=dtype))
    return make


# --- registration ----------------------------------------------------------------------

F = "recurrent"
add("correct", F, "rnn", "vanilla tanh RNN over 4 time steps", rnn_forward, rnn_backward,
    rnn_inputs)
add("bug", F, "rnn_no_carry", "BPTT drops the dh arriving from the next time step",
    rnn_forward, rnn_backward_no_carry, rnn_inputs, expect="wrong at every step but the last",
    ref_backward=rnn_backward)
add("bug", F, "rnn_first_step", "at t = 0 the tanh derivative uses h0 instead of h[:, 0]",
    rnn_forward, rnn_backward_first_step, rnn_inputs,
    expect="slice axis 1 index 0 of dx (input 0); dh0, dwx, dwh, db", ref_backward=rnn_backward)
LSTM = lstm_step_forward
add("correct", F, "lstm_step", "one LSTM step (outputs h and c)", LSTM, lstm_step_backward,
    lstm_inputs())
add("bug", F, "lstm_forget_gate", "forget-gate gradient uses the new cell c instead of c_prev",
    LSTM, lstm_step_backward_forget_slip, lstm_inputs(),
    expect="forget-gate columns 5:10 of dwx, dwh, db; dx, dh_prev through them",
    ref_backward=lstm_step_backward)
add("bug", F, "lstm_gate_order", "backward stacks the gates as i, f, g, o; forward uses i, f, o, g",
    LSTM, lstm_step_backward_gate_order, lstm_inputs(),
    expect="columns 10:20 of dwx, dwh, db swapped; dx, dh_prev through them",
    ref_backward=lstm_step_backward)

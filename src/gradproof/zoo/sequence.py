"""Zoo family "sequence": recurrent and token-level bugs confined to gates and tokens.

Gates are blocks of columns of the recurrent weights (every H-th block of the
4H columns of an LSTM, of the 3H columns of a GRU); tokens are rows of a
(N, T, D) input (padding positions, a class token). Sizes are realistic:

- LSTM over a sequence: x (8, 10, 32), h0 (8, 64), wx (32, 256), wh (64, 256),
  b (256,) -> h (8, 10, 64); gates i, f, o, g along the 256 columns;
- one LSTM step with N=8, D=32, H=64, checked in its weights;
- GRU over a sequence: x (8, 10, 32), h0 (8, 64), wx (32, 192), wh (64, 192),
  b (192,) -> h (8, 10, 64); gates r, z, n along the 192 columns;
- a token-level loss on scores (16, 24, 64) with padding labels -1;
- class-token pooling of x (16, 32, 64) through w (64, 32).
"""

from __future__ import annotations

import numpy as np

from .activations import sigmoid
from .case import add, mask, normal
from .recurrent import (
    _lstm_gate_grads,
    _lstm_input_grads,
    lstm_inputs,
    lstm_step_backward,
    lstm_step_forward,
)

N, T, D, H = 8, 10, 32, 64


def gate_columns(shape, gate, hidden=H) -> np.ndarray:
    """Mask of one gate's columns (gate * H to (gate + 1) * H) of every row of a matrix."""
    return mask(shape, (..., slice(gate * hidden, (gate + 1) * hidden)))


def recurrent_inputs(gates):
    def make(rng):
        return (normal(rng, N, T, D), normal(rng, N, H, scale=0.5),
                normal(rng, D, gates * H, scale=D**-0.5), normal(rng, H, gates * H, scale=H**-0.5),
                normal(rng, gates * H, scale=0.1))
    return make


# --- LSTM: the forget gate's derivative ----------------------------------------------------

FORGET = 1  # gate order i, f, o, g


def _forget_sigmoid_slip(gate_grads, cache):
    """Drop the (1 - f) of the forget gate's sigmoid derivative: f instead of f * (1 - f)."""
    di, df, do, dg, dc_prev = gate_grads
    return di, df / (1 - cache[6]), do, dg, dc_prev


def _lstm_step_grads(dh, dc, cache, slip):
    di, df, do, dg, dc_prev = _lstm_gate_grads(dh, dc, cache)
    if slip:
        di, df, do, dg, dc_prev = _forget_sigmoid_slip((di, df, do, dg, dc_prev), cache)
    return _lstm_input_grads(np.concatenate([di, df, do, dg], axis=1), dc_prev, cache)


def lstm_step_backward_forget_slip(dh, dc, cache):
    return _lstm_step_grads(dh, dc, cache, slip=True)


def lstm_forward(x, h0, wx, wh, b):
    """x (N, T, D), h0 (N, H), weights (D, 4H), (H, 4H), (4H,) -> h (N, T, H); c0 = 0."""
    h, c = h0, np.zeros_like(h0)
    hs, caches = [], []
    for t in range(x.shape[1]):
        (h, c), cache = lstm_step_forward(x[:, t], h, c, wx, wh, b)
        hs.append(h)
        caches.append(cache)
    return np.stack(hs, axis=1), caches


def _lstm_backward(dout, caches, slip=False):
    dxs = []
    dh_next = dc_next = np.zeros_like(dout[:, 0])
    dwx = dwh = db = 0
    for t in reversed(range(len(caches))):
        dx, dh_next, dc_next, dwx_t, dwh_t, db_t = _lstm_step_grads(
            dout[:, t] + dh_next, dc_next, caches[t], slip)
        dxs.append(dx)
        dwx, dwh, db = dwx + dwx_t, dwh + dwh_t, db + db_t
    return np.stack(dxs[::-1], axis=1), dh_next, dwx, dwh, db


def lstm_backward(dout, caches):
    """dout (N, T, H) -> dx (N, T, D), dh0 (N, H), dwx, dwh, db."""
    return _lstm_backward(dout, caches)


def lstm_backward_forget_slip(dout, caches):
    return _lstm_backward(dout, caches, slip=True)


# --- GRU: the candidate's recurrent weights ----------------------------------------------------

CANDIDATE = 2  # gate order r, z, n


def gru_forward(x, h0, wx, wh, b):
    """GRU over x (N, T, D) from h0 (N, H) -> h (N, T, H), PyTorch's gate equations:

    r, z = sigmoid(x wx + b + h wh) (first 2H columns), n = tanh(x wx_n + b_n + r * (h wh_n)),
    h_next = (1 - z) * n + z * h.
    """
    hid = h0.shape[1]
    h, hs, steps = h0, [], []
    for t in range(x.shape[1]):
        ax, ah = x[:, t] @ wx + b, h @ wh
        r = sigmoid(ax[:, :hid] + ah[:, :hid])
        z = sigmoid(ax[:, hid:2 * hid] + ah[:, hid:2 * hid])
        n = np.tanh(ax[:, 2 * hid:] + r * ah[:, 2 * hid:])
        steps.append((x[:, t], h, r, z, n, ah[:, 2 * hid:]))
        h = (1 - z) * n + z * h
        hs.append(h)
    return np.stack(hs, axis=1), (wx, wh, steps)


def _gru_backward(dout, cache, forget_reset=False):
    """``forget_reset``: dwh's candidate block uses dn, not dn * r (r multiplies h wh_n)."""
    wx, wh, steps = cache
    dxs, dh_next = [], np.zeros_like(dout[:, 0])
    dwx, dwh, db = np.zeros_like(wx), np.zeros_like(wh), np.zeros(wx.shape[1], dtype=wx.dtype)
    for t in reversed(range(len(steps))):
        x_t, h_prev, r, z, n, ah_n = steps[t]
        dh = dout[:, t] + dh_next
        dn = dh * (1 - z) * (1 - n**2)
        dz = dh * (h_prev - n) * z * (1 - z)
        dr = dn * ah_n * r * (1 - r)
        dax = np.concatenate([dr, dz, dn], axis=1)
        dah = np.concatenate([dr, dz, dn * r], axis=1)
        dxs.append(dax @ wx.T)
        dwx += x_t.T @ dax
        db += dax.sum(axis=0)
        dwh += h_prev.T @ (dax if forget_reset else dah)
        dh_next = dh * z + dah @ wh.T
    return np.stack(dxs[::-1], axis=1), dh_next, dwx, dwh, db


def gru_backward(dout, cache):
    """dout (N, T, H) -> dx (N, T, D), dh0 (N, H), dwx, dwh, db."""
    return _gru_backward(dout, cache)


def gru_backward_forgets_reset(dout, cache):
    return _gru_backward(dout, cache, forget_reset=True)


# --- token-level loss with padding: the padding tokens' rows -------------------------------------

IGNORE = -1  # the label of a padding position


def sequence_loss_forward(x, y):
    """Mean cross-entropy of scores x (N, T, V) over the tokens whose label y (N, T) != -1."""
    keep = y != IGNORE
    shifted = x - x.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_probs, np.where(keep, y, 0)[..., None], axis=-1)[..., 0]
    count = keep.sum()
    return np.asarray(-(picked * keep).sum() / count, dtype=x.dtype), (np.exp(log_probs), y, count)


def sequence_loss_backward(dout, cache):
    """dout () -> dx (N, T, V), zero at padding positions, None."""
    probs, y, count = cache
    keep = y != IGNORE
    grad = probs * keep[..., None]
    grad[keep, y[keep]] -= 1
    return dout * grad / count, None


def sequence_loss_backward_forgets_padding(dout, cache):
    probs, y, count = cache
    grad = probs.copy()
    n, t = np.indices(y.shape)
    grad[n, t, y] -= 1  # no mask: padding positions get softmax - onehot(class -1 = V - 1)
    return dout * grad / count, None


def sequence_loss_inputs(rng):
    n, t, v = 16, 24, 64
    y = rng.integers(0, v, size=(n, t))
    lengths = rng.integers(12, t + 1, size=n)
    y[np.arange(t)[None, :] >= lengths[:, None]] = IGNORE
    return normal(rng, n, t, v, scale=2.0), y


def padding_rows(inputs) -> np.ndarray:
    x, y = inputs
    return np.broadcast_to((y == IGNORE)[..., None], x.shape).copy()


# --- class-token pooling: token 0's row ----------------------------------------------------------


def cls_pool_forward(x, w):
    """x (N, T, D), class token at t = 0; w (D, M) -> (x[:, 0] + mean(x[:, 1:])) @ w (N, M)."""
    pooled = x[:, 0] + x[:, 1:].mean(axis=1)
    return pooled @ w, (x.shape, pooled, w)


def cls_pool_backward(dout, cache):
    """dout (N, M) -> dx (N, T, D), dw (D, M)."""
    shape, pooled, w = cache
    dpooled = dout @ w.T
    dx = np.empty(shape, dtype=dout.dtype)
    dx[:, 0] = dpooled
    dx[:, 1:] = (dpooled / (shape[1] - 1))[:, None]
    return dx, pooled.T @ dout


def cls_pool_backward_mean_over_all(dout, cache):
    shape, pooled, w = cache
    dpooled = dout @ w.T
    dx = np.repeat((dpooled / (shape[1] - 1))[:, None], shape[1], axis=1)  # the class token too
    dx[:, 0] += dpooled
    return dx, pooled.T @ dout


# --- registration --------------------------------------------------------------------------------

F = "sequence"
LSTM_INPUTS = recurrent_inputs(4)
add("correct", F, "lstm_sequence", "LSTM over 10 steps, N=8, D=32, H=64", lstm_forward,
    lstm_backward, LSTM_INPUTS)
add("bug", F, "lstm_forget_gate_sigmoid_slip",
    "forget-gate derivative f instead of f * (1 - f), over 10 steps", lstm_forward,
    lstm_backward_forget_slip, LSTM_INPUTS,
    expect="every input: the forget gate's error flows back through time",
    ref_backward=lstm_backward,
    region=lambda inputs: {i: np.ones(x.shape, dtype=bool) for i, x in enumerate(inputs)})
STEP_INPUTS = lstm_inputs(N, D, H)
WEIGHTS = (3, 4, 5)
add("correct", F, "lstm_step_weights", "one LSTM step, N=8, D=32, H=64, checked in its weights",
    lstm_step_forward, lstm_step_backward, STEP_INPUTS, wrt=WEIGHTS)
add("bug", F, "lstm_step_forget_gate_weights",
    "forget-gate derivative f instead of f * (1 - f), one step checked in its weights",
    lstm_step_forward, lstm_step_backward_forget_slip, STEP_INPUTS, wrt=WEIGHTS,
    expect="forget-gate columns 64:128 of dwx, dwh, db (inputs 3-5)",
    ref_backward=lstm_step_backward,
    region=lambda inputs: {0: np.ones(inputs[0].shape, dtype=bool),
                           1: np.ones(inputs[1].shape, dtype=bool),
                           **{i: gate_columns(inputs[i].shape, FORGET) for i in WEIGHTS}})
GRU_INPUTS = recurrent_inputs(3)
add("correct", F, "gru_sequence", "GRU over 10 steps, N=8, D=32, H=64", gru_forward, gru_backward,
    GRU_INPUTS)
add("bug", F, "gru_candidate_dwh_forgets_reset",
    "dwh of the candidate uses dn instead of dn * r (the reset gate multiplies h @ wh_n)",
    gru_forward, gru_backward_forgets_reset, GRU_INPUTS,
    expect="candidate columns 128:192 of dwh (input 3)", ref_backward=gru_backward,
    region=lambda inputs: {3: gate_columns(inputs[3].shape, CANDIDATE)})
add("correct", F, "sequence_loss_padding", "token-level cross-entropy that ignores label -1",
    sequence_loss_forward, sequence_loss_backward, sequence_loss_inputs)
add("bug", F, "sequence_loss_forgets_padding",
    "the backward forgets the padding mask: padding tokens get softmax - onehot(V - 1)",
    sequence_loss_forward, sequence_loss_backward_forgets_padding, sequence_loss_inputs,
    expect="the padding tokens' rows of dx (input 0): should be 0",
    ref_backward=sequence_loss_backward, region=lambda inputs: {0: padding_rows(inputs)})
CLS_INPUTS = (lambda rng: (normal(rng, 16, 32, 64), normal(rng, 64, 32, scale=0.125)))
add("correct", F, "cls_pool", "class token plus mean of the other tokens, then a dense layer",
    cls_pool_forward, cls_pool_backward, CLS_INPUTS)
add("bug", F, "cls_pool_token0_row",
    "the mean's gradient spread over all T tokens, the class token included",
    cls_pool_forward, cls_pool_backward_mean_over_all, CLS_INPUTS,
    expect="token 0's row dx[:, 0] (input 0), 1 + 1/31 too large", ref_backward=cls_pool_backward,
    region=lambda inputs: {0: mask(inputs[0].shape, (slice(None), 0))})

"""Small, self-contained layers (correct and buggy) used by the checker's tests.

They are written here, not imported from gradproof.nn, so that the checker's
tests do not depend on the library the checker proves.
"""

from __future__ import annotations

import numpy as np


def affine(x, w, b):
    return x.reshape(x.shape[0], -1) @ w + b, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    return dx, dw, dout.sum(axis=0)


def relu(x):
    return np.maximum(x, 0), x


def relu_backward(dout, x):
    return dout * (x > 0)


def sigmoid(x):
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1 + ex)
    return out, out


def sigmoid_backward(dout, out):
    return dout * out * (1 - out)


def softmax_loss(x, y):
    """Mean softmax cross-entropy; returns (loss, dx) like CS231n."""
    shifted = x - x.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_z
    n = x.shape[0]
    loss = -log_p[np.arange(n), y].mean()
    dx = np.exp(log_p)
    dx[np.arange(n), y] -= 1
    return loss, dx / n


def softmax_cross_entropy(x, y):
    """Scores x (N, C), labels y (N,) -> mean cross-entropy (a 0-d array), cache (p, y)."""
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(y)), y].mean(), (np.exp(log_p), y)


def softmax_cross_entropy_backward(dloss, cache):
    p, y = cache
    dx = p.copy()
    dx[np.arange(len(y)), y] -= 1
    return dloss * dx / len(y), None


def loss_forward(x, y):
    loss, dx = softmax_loss(x, y)
    return loss, dx


def loss_backward(dloss, dx):
    return dloss * dx, None


def batchnorm(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma * xhat + beta, (xhat, gamma, var, eps)


def batchnorm_backward(dout, cache):
    xhat, gamma, var, eps = cache
    n = dout.shape[0]
    dxhat = dout * gamma
    dx = (n * dxhat - dxhat.sum(0) - xhat * (dxhat * xhat).sum(0)) / (n * np.sqrt(var + eps))
    return dx, (dout * xhat).sum(0), dout.sum(0)


def max_pool_1d(x, size=3, stride=1):
    """1-D max pool over overlapping windows; x (N, L)."""
    starts = np.arange(0, x.shape[1] - size + 1, stride)
    idx = starts[:, None] + np.arange(size)
    windows = x[:, idx]  # (N, L', size)
    out = windows.max(axis=2)
    return out, (x.shape, idx, windows, out)


def _scatter(dout, cache, mask):
    shape, idx, _, _ = cache
    dx = np.zeros(shape)
    rows = np.arange(shape[0])[:, None, None]
    np.add.at(dx, (rows, idx[None]), mask * dout[:, :, None])
    return dx


def _first_max(cache):
    _, _, windows, _ = cache
    arg = windows.argmax(axis=2)
    return np.arange(windows.shape[2]) == arg[:, :, None]


def max_pool_1d_backward(dout, cache):
    return _scatter(dout, cache, _first_max(cache))


def max_pool_1d_backward_assign(dout, cache):
    """Bug: `=` where overlapping windows need `+=` (later windows overwrite)."""
    shape, idx, _, _ = cache
    mask = _first_max(cache)
    dx = np.zeros(shape)
    for j in range(idx.shape[0]):
        dx[:, idx[j]] = mask[:, j] * dout[:, j, None]
    return dx


def max_pool_1d_backward_all_ties(dout, cache):
    """Bug at ties: every tied maximum gets the whole gradient."""
    _, _, windows, out = cache
    return _scatter(dout, cache, windows == out[:, :, None])


def embedding(idx, w):
    return w[idx], (idx, w.shape)


def embedding_backward(dout, cache):
    idx, shape = cache
    dw = np.zeros(shape)
    np.add.at(dw, idx, dout)
    return None, dw


def embedding_backward_lossy(dout, cache):
    """Bug: fancy-index += drops repeated indices."""
    idx, shape = cache
    dw = np.zeros(shape)
    dw[idx] += dout
    return None, dw


def rnn(x, h0, wx, wh, b):
    """Vanilla RNN over T steps; x (N, T, D), h0 (N, H)."""
    n, t_len, _ = x.shape
    hs = np.zeros((n, t_len, h0.shape[1]))
    prev = h0
    for t in range(t_len):
        prev = np.tanh(x[:, t] @ wx + prev @ wh + b)
        hs[:, t] = prev
    return hs, (x, h0, wx, wh, hs)


def rnn_backward(dh, cache, forget_carry=False, bad_step=None):
    x, h0, wx, wh, hs = cache
    n, t_len, _ = x.shape
    dx = np.zeros_like(x)
    dwx, dwh = np.zeros_like(wx), np.zeros_like(wh)
    db = np.zeros(wx.shape[1])
    carry = np.zeros_like(h0)
    for t in reversed(range(t_len)):
        prev = hs[:, t - 1] if t > 0 else h0
        dcur = dh[:, t] + (0 if forget_carry else carry)
        da = dcur * (1 - hs[:, t] ** 2)
        if bad_step == t:
            da = dcur * (1 - prev**2)
        dx[:, t] = da @ wx.T
        dwx += x[:, t].T @ da
        dwh += prev.T @ da
        db += da.sum(0)
        carry = da @ wh.T
    return dx, carry, dwx, dwh, db

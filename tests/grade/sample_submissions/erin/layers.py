"""erin (written for gradproof's tests): an infinite loop, an exception on a 2x3 pooling window,
debugging prints, lists instead of tuples, a dict cache."""
import numpy as np

np.set_printoptions(precision=3)


def affine_forward(x, w, b):
    print("affine_forward: x has shape", x.shape)
    out = x.reshape(x.shape[0], -1) @ w + b
    return [out, {"x": x, "w": w}]


def affine_backward(dout, cache):
    x, w = cache["x"], cache["w"]
    return [(dout @ w.T).reshape(x.shape), x.reshape(len(x), -1).T @ dout, dout.sum(0)]


def conv_forward_naive(x, w, b, conv_param):
    s, p = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    Ho, Wo = (H + 2 * p - HH) // s + 1, (W + 2 * p - WW) // s + 1
    out = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, i * s:i * s + HH, j * s:j * s + WW]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    dx = np.zeros_like(x)
    i = 0
    while i < x.shape[2]:  # BUG: i is never incremented
        dx[:, :, i] += 0
    return dx, np.zeros_like(w), dout.sum(axis=(0, 2, 3))


def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Ho, Wo = H // s, W // s  # BUG: wrong output size unless the windows tile x
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            window = x[:, :, i * s:i * s + ph, j * s:j * s + pw]
            out[:, :, i, j] = window.reshape(N, C, ph * pw).max(axis=2)
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    N, C = x.shape[:2]
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * s:i * s + ph, j * s:j * s + pw].reshape(N, C, -1)
            k = window.argmax(axis=2)
            for n in range(N):
                for c in range(C):
                    r, q = divmod(k[n, c], pw)
                    dx[n, c, i * s + r, j * s + q] += dout[n, c, i, j]
    return dx

"""ivan (written for gradproof's tests): correct code in other years' conventions and
other styles: dropout's p as the DROP probability (2016), group norm with gamma of shape
(C,), running statistics kept with keepdims, einsum, np.where, float32-friendly code."""
import numpy as np


def affine_forward(x, w, b):
    out = np.einsum("nd,dm->nm", x.reshape(x.shape[0], np.prod(x.shape[1:])), w) + b
    return out, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    dx = np.einsum("nm,dm->nd", dout, w).reshape(x.shape)
    dw = np.einsum("nd,nm->dm", x.reshape(len(x), -1), dout)
    return dx, dw, dout.sum(axis=0)


def relu_forward(x):
    out = np.where(x > 0, x, 0.0).astype(x.dtype)
    return out, out


def relu_backward(dout, cache):
    return np.where(cache > 0, dout, 0.0).astype(dout.dtype)


def batchnorm_forward(x, gamma, beta, bn_param):
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros((1, D)))
    running_var = bn_param.get("running_var", np.zeros((1, D)))
    cache = None
    if bn_param["mode"] == "train":
        mu = x.mean(axis=0, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=0, keepdims=True)
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
        inv = 1.0 / np.sqrt(var + eps)
        xhat = (x - mu) * inv
        cache = (xhat, inv, gamma)
    else:
        xhat = (x - running_mean) / np.sqrt(running_var + eps)
    bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    return gamma * xhat + beta, cache


def batchnorm_backward_alt(dout, cache):
    xhat, inv, gamma = cache
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dx = inv * (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0))
    return dx, dgamma, dbeta


def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]  # p: probability of dropping
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    mask = None
    if mode == "train":
        mask = (np.random.rand(*x.shape) >= p) / (1 - p)
        out = x * mask
    else:
        out = x
    return out.astype(x.dtype, copy=False), (dropout_param, mask)


def dropout_backward(dout, cache):
    dropout_param, mask = cache
    return dout * mask if dropout_param["mode"] == "train" else dout


def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    out = np.empty((N, C, (H - ph) // s + 1, (W - pw) // s + 1), dtype=x.dtype)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = x[:, :, i * s:i * s + ph, j * s:j * s + pw].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    window = x[n, c, i * s:i * s + ph, j * s:j * s + pw]
                    r, q = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * s + r, j * s + q] += dout[n, c, i, j]
    return dx


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    eps = gn_param.get("eps", 1e-5)
    N, C, H, W = x.shape
    xg = x.reshape(N, G, C // G, H, W)
    mu = xg.mean(axis=(2, 3, 4), keepdims=True)
    inv = 1.0 / np.sqrt(xg.var(axis=(2, 3, 4), keepdims=True) + eps)
    xhat = ((xg - mu) * inv).reshape(x.shape)
    out = gamma.reshape(1, C, 1, 1) * xhat + beta.reshape(1, C, 1, 1)
    return out, (xhat, inv, gamma, G)


def spatial_groupnorm_backward(dout, cache):
    xhat, inv, gamma, G = cache
    N, C, H, W = dout.shape
    dgamma = (dout * xhat).sum(axis=(0, 2, 3))  # gamma is (C,): so is dgamma
    dbeta = dout.sum(axis=(0, 2, 3))
    dxhat = (dout * gamma.reshape(1, C, 1, 1)).reshape(N, G, C // G, H, W)
    xh = xhat.reshape(N, G, C // G, H, W)
    axes = (2, 3, 4)
    dx = inv * (dxhat - dxhat.mean(axis=axes, keepdims=True)
                - xh * (dxhat * xh).mean(axis=axes, keepdims=True))
    return dx.reshape(dout.shape), dgamma, dbeta


def softmax_loss(x, y):
    z = x - x.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    N = len(y)
    dx = np.exp(logp)
    dx[np.arange(N), y] -= 1
    return np.float32(-logp[np.arange(N), y].mean()), dx / N

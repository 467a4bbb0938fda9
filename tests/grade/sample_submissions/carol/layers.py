"""carol: normalisation bugs and an embedding bug (written for gradproof's tests)."""
import numpy as np


def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-5)
    D = x.shape[1]
    rm = bn_param.get("running_mean", np.zeros(D))
    rv = bn_param.get("running_var", np.zeros(D))
    if bn_param["mode"] == "train":
        mu, var = x.mean(axis=0), x.var(axis=0)
        bn_param["running_mean"] = 0.9 * rm + 0.1 * mu
        bn_param["running_var"] = 0.9 * rv + 0.1 * var
    else:
        mu, var = rm, rv
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma * xhat + beta, (xhat, gamma, var, eps)


def batchnorm_backward_alt(dout, cache):
    xhat, gamma, var, eps = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    # BUG: eps is used in the forward but not here
    dx = gamma / (N * np.sqrt(var)) * (N * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-5)
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, ddof=1, keepdims=True)  # BUG: unbiased variance
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma * xhat + beta, (xhat, gamma, var, eps)


def layernorm_backward(dout, cache):
    xhat, gamma, var, eps = cache
    D = dout.shape[1]
    dgamma = (dout * xhat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    dxhat = dout * gamma
    dx = (D * dxhat - dxhat.sum(axis=1, keepdims=True)
          - xhat * (dxhat * xhat).sum(axis=1, keepdims=True)) / (D * np.sqrt(var + eps))
    return dx, dgamma, dbeta


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    N, C, H, W = x.shape
    flat = x.transpose(0, 2, 3, 1).reshape(-1, C)
    out, cache = batchnorm_forward(flat, gamma, beta, bn_param)
    return out.reshape(N, H, W, C).transpose(0, 3, 1, 2), cache


def spatial_batchnorm_backward(dout, cache):
    xhat, gamma, var, eps = cache
    N, C, H, W = dout.shape
    M = N * H * W
    xh = xhat.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)  # BUG: (1, C, 1, 1), expected (C,)
    dgamma = (dout * xh).sum(axis=(0, 2, 3), keepdims=True)  # BUG: same
    g = gamma.reshape(1, C, 1, 1)
    std = np.sqrt(var + eps).reshape(1, C, 1, 1)
    dx = g / (M * std) * (M * dout - dbeta - xh * dgamma)
    return dx, dgamma, dbeta


def word_embedding_forward(x, W):
    return W[x], (x, W)


def word_embedding_backward(dout, cache):
    x, W = cache
    dW = np.zeros_like(W)
    dW[x] = dout  # BUG: repeated words overwrite instead of adding up
    return dW


def svm_loss(x, y):
    N = x.shape[0]
    margins = np.maximum(0, x - x[np.arange(N), y][:, None] + 1)
    margins[np.arange(N), y] = 0
    loss = margins.sum() / N
    dx = (margins > 0).astype(float)
    dx[np.arange(N), y] = -dx.sum(axis=1)
    return loss, dx / N


def relu_forward(x):
    x[x < 0] = 0  # BUG: writes into the caller's x
    out = x
    return out, x


def relu_backward(dout, cache):
    return dout * (cache > 0)

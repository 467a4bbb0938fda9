"""frank (written for gradproof's tests): a file that does not parse."""
import numpy as np


def affine_forward(x, w, b)
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(len(x), -1).T @ dout, dout.sum(0)

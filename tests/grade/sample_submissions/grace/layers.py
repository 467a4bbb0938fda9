"""grace (written for gradproof's tests): memory bombs."""
import numpy as np


def affine_forward(x, w, b):
    return x.reshape(x.shape[0], -1) @ w + b, (x, w, b)


def affine_backward(dout, cache):
    junk = []
    while True:  # BUG: keeps every intermediate result
        junk.append(np.ones(2 ** 24))
    return None


def relu_forward(x):
    table = np.ones((10 ** 6, 10 ** 6))  # BUG: 8 TB
    return np.maximum(x, 0) * table[0, 0], x


def relu_backward(dout, cache):
    return dout * (cache > 0)

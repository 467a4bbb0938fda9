"""Zoo family "activations": elementwise nonlinearities, softmax and dropout.

Every function maps x (any shape) to an output of the same shape; backward
returns dx of that shape.
"""

from __future__ import annotations

import math

import numpy as np

from .case import add, normal

_erf_float64 = np.vectorize(math.erf, otypes=[np.float64])


def _erf(x):
    """Elementwise erf in the dtype of x."""
    return _erf_float64(x).astype(x.dtype)


def _away_from_zero(rng, *shape, margin=0.05):
    """Normal values pushed at least ``margin`` away from 0 (no kink nearby)."""
    x = normal(rng, *shape)
    return np.where(x >= 0, x + margin, x - margin)


def _one_input(*shape):
    return lambda rng: (_away_from_zero(rng, *shape),)


# --- ReLU ----------------------------------------------------------------------


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, x):
    return dout * (x > 0)


def relu_backward_in_place(dout, x):
    dout[x <= 0] = 0  # zeroes the caller's dout and returns it
    return dout


# --- sigmoid and tanh ------------------------------------------------------------


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))  # stable for large |x|


def sigmoid_forward(x):
    out = sigmoid(x)
    return out, (x, out)


def sigmoid_backward(dout, cache):
    _, out = cache
    return dout * out * (1 - out)


def sigmoid_backward_uses_x(dout, cache):
    x, _ = cache
    return dout * x * (1 - x)  # should be sigmoid(x) * (1 - sigmoid(x))


def tanh_forward(x):
    out = np.tanh(x)
    return out, (x, out)


def tanh_backward(dout, cache):
    _, out = cache
    return dout * (1 - out**2)


def tanh_backward_uses_x(dout, cache):
    x, _ = cache
    return dout * (1 - x**2)  # should be 1 - tanh(x)**2


# --- GELU (exact, with erf) ------------------------------------------------------


def gelu_forward(x):
    """x * Phi(x), Phi the standard normal CDF."""
    return x * 0.5 * (1 + _erf(x / np.sqrt(2, dtype=x.dtype))), x


def gelu_backward(dout, x):
    cdf = 0.5 * (1 + _erf(x / np.sqrt(2, dtype=x.dtype)))
    pdf = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi, dtype=x.dtype)
    return dout * (cdf + x * pdf)


def gelu_backward_tanh_approx(dout, x):
    # The derivative of the tanh approximation 0.5 x (1 + tanh(k (x + 0.044715 x^3))),
    # used for the exact erf GELU: relative errors around 1e-3.
    k = math.sqrt(2 / math.pi)
    t = np.tanh(k * (x + 0.044715 * x**3))
    return dout * (0.5 * (1 + t) + 0.5 * x * (1 - t**2) * k * (1 + 3 * 0.044715 * x**2))


# --- leaky ReLU --------------------------------------------------------------------

SLOPE = 0.1


def leaky_relu_forward(x):
    return np.where(x > 0, x, SLOPE * x), x


def leaky_relu_backward(dout, x):
    return dout * np.where(x > 0, 1.0, SLOPE)


def leaky_relu_backward_relu_copy(dout, x):
    return dout * np.where(x > 0, 1.0, 0.0)  # copied from ReLU: the slope 0.1 is lost


# --- softmax along the last axis --------------------------------------------------


def softmax_forward(x):
    """x (N, C) -> softmax over C."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    return p, p


def softmax_backward(dout, p):
    return p * (dout - (dout * p).sum(axis=-1, keepdims=True))


def softmax_backward_diagonal(dout, p):
    return dout * p * (1 - p)  # only the Jacobian's diagonal, as if softmax were elementwise


# --- inverted dropout (keep probability 0.6, fixed seed) --------------------------

KEEP = 0.6


def dropout_forward(x):
    mask = np.random.default_rng(1234).random(x.shape) < KEEP
    return x * mask / KEEP, mask


def dropout_backward(dout, mask):
    return dout * mask / KEEP


def dropout_backward_no_scale(dout, mask):
    return dout * mask  # forward divided by the keep probability, backward does not


def dropout_forward_unseeded(x):
    mask = np.random.default_rng().random(x.shape) < KEEP  # a fresh mask on every call
    return x * mask / KEEP, mask


# --- registration -------------------------------------------------------------------

F = "activations"
X45 = _one_input(4, 5)
add("correct", F, "relu", "ReLU away from 0", relu_forward, relu_backward, X45)
add("bug", F, "relu_backward_in_place", "ReLU backward writes zeros into dout and returns it",
    relu_forward, relu_backward_in_place, X45, expect="in place: dout", ref_backward=relu_backward)
add("correct", F, "sigmoid", "logistic sigmoid", sigmoid_forward, sigmoid_backward, X45)
add("bug", F, "sigmoid_backward_uses_x", "sigmoid backward uses x * (1 - x) instead of s * (1 - s)",
    sigmoid_forward, sigmoid_backward_uses_x, X45, expect="wrong everywhere",
    ref_backward=sigmoid_backward)
add("correct", F, "tanh", "tanh", tanh_forward, tanh_backward, X45)
add("bug", F, "tanh_backward_uses_x", "tanh backward uses 1 - x**2 instead of 1 - tanh(x)**2",
    tanh_forward, tanh_backward_uses_x, X45, expect="wrong everywhere",
    ref_backward=tanh_backward)
add("correct", F, "gelu", "exact (erf) GELU", gelu_forward, gelu_backward, X45)
add("bug", F, "gelu_tanh_derivative", "exact erf GELU differentiated with the tanh approximation",
    gelu_forward, gelu_backward_tanh_approx, X45, expect="small relative error ~1e-3",
    ref_backward=gelu_backward)
add("bug", F, "gelu_tanh_derivative_float32",
    "float32 erf GELU differentiated with the tanh approximation (off by up to 9e-4)",
    gelu_forward, gelu_backward_tanh_approx,
    lambda rng: (_away_from_zero(rng, 8, 16).astype(np.float32),),
    expect="small: up to 9e-4 absolute, where float32 central differences resolve "
    "~1e-5 per coordinate", ref_backward=gelu_backward)
add("correct", F, "leaky_relu", "leaky ReLU with slope 0.1", leaky_relu_forward,
    leaky_relu_backward, X45)
add("bug", F, "leaky_relu_slope_lost",
    "leaky ReLU backward copied from ReLU: 0 on the negative side",
    leaky_relu_forward, leaky_relu_backward_relu_copy, X45,
    expect="negative coordinates only: analytic 0 vs numeric 0.1*dout",
    ref_backward=leaky_relu_backward)
add("correct", F, "softmax", "softmax over the last axis", softmax_forward, softmax_backward, X45)
add("bug", F, "softmax_backward_diagonal", "softmax backward keeps only the Jacobian's diagonal",
    softmax_forward, softmax_backward_diagonal, X45, expect="missing term (off-diagonal)",
    ref_backward=softmax_backward)
add("correct", F, "dropout", "inverted dropout with a fixed seed", dropout_forward,
    dropout_backward, X45)
add("bug", F, "dropout_no_scale", "inverted dropout whose backward forgets the 1/keep scaling",
    dropout_forward, dropout_backward_no_scale, X45, expect="factor 1/0.6",
    ref_backward=dropout_backward)
add("bug", F, "dropout_unseeded", "dropout draws a new mask on every forward call",
    dropout_forward_unseeded, dropout_backward, X45, expect="nondeterministic forward",
    ref_forward=dropout_forward)

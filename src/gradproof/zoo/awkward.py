"""Zoo family "awkward": correct layers at numerically hard inputs.

float32 end to end, huge and tiny values, saturation, steep functions, many
terms. A checker with fixed absolute steps or fixed tolerances raises false
alarms here; none of these cases has a bug.
"""

from __future__ import annotations

import numpy as np

from .attention import attention_backward, attention_forward, attention_inputs
from .case import add, normal
from .dense import affine_backward, affine_forward, softmax_loss_backward, softmax_loss_forward
from .norm import batchnorm_backward, batchnorm_forward, norm_inputs
from .recurrent import lstm_inputs, lstm_step_backward, lstm_step_forward

F = "awkward"


def _float32_affine(rng):
    return (normal(rng, 8, 16, dtype=np.float32), normal(rng, 16, 10, dtype=np.float32),
            normal(rng, 10, dtype=np.float32))


def _float32_scores(rng):
    return normal(rng, 16, 10, scale=2.0, dtype=np.float32), rng.integers(0, 10, size=16)


add("correct", F, "affine_float32", "affine layer in float32", affine_forward, affine_backward,
    _float32_affine)
add("correct", F, "batchnorm_float32", "batch norm in float32", batchnorm_forward,
    batchnorm_backward, norm_inputs(16, 6, dtype=np.float32))
add("correct", F, "softmax_loss_float32", "softmax loss in float32", softmax_loss_forward,
    softmax_loss_backward, _float32_scores)
add("correct", F, "lstm_step_float32", "one LSTM step in float32", lstm_step_forward,
    lstm_step_backward, lstm_inputs(dtype=np.float32))
add("correct", F, "attention_float32", "scaled dot-product attention in float32",
    attention_forward, attention_backward, attention_inputs(dtype=np.float32))


def _large_affine(rng):
    """x ~ 1e3, w ~ 1e3: outputs around 1e7."""
    return (1e3 * (1 + rng.random((4, 10))), 1e3 * normal(rng, 10, 3), 1e3 * normal(rng, 3))


add("correct", F, "affine_large_values", "affine layer with inputs ~1e3 and outputs ~1e7",
    affine_forward, affine_backward, _large_affine)


# --- elementwise functions at hard arguments -------------------------------------------


def log_forward(x):
    return np.log(x), x


def log_backward(dout, x):
    return dout / x


def exp_forward(x):
    out = np.exp(x)
    return out, out


def exp_backward(dout, out):
    return dout * out


def sqrt_forward(x):
    out = np.sqrt(x)
    return out, out


def sqrt_backward(dout, out):
    return dout * 0.5 / out


def sigmoid_forward(x):
    return 1 / (1 + np.exp(-x)), x


def sigmoid_backward_exact(dout, x):
    # exp(-|x|) / (1 + exp(-|x|))**2 keeps the tiny derivative (4e-18 at |x| = 40)
    # that s * (1 - s) would round to 0 when s == 1.0.
    e = np.exp(-np.abs(x))
    return dout * e / (1 + e) ** 2


STEEPNESS = 100.0


def steep_tanh_forward(x):
    out = np.tanh(STEEPNESS * x)
    return out, out


def steep_tanh_backward(dout, out):
    return dout * STEEPNESS * (1 - out**2)


def _log_uniform(low_exp, high_exp, shape):
    return lambda rng: (10.0 ** rng.uniform(low_exp, high_exp, shape),)


def _saturated(rng):
    signs = np.where(rng.random((4, 5)) < 0.5, -1.0, 1.0)
    return (signs * rng.uniform(38, 42, (4, 5)),)


add("correct", F, "log_near_zero", "log(x) for x from 1e-8 to 1e-3", log_forward, log_backward,
    _log_uniform(-8, -3, (4, 5)))
add("correct", F, "exp_large", "exp(x) for x from 50 to 700 (outputs up to 1e304)", exp_forward,
    exp_backward, lambda rng: (rng.uniform(50, 700, (4, 5)),))
add("correct", F, "sqrt_near_zero", "sqrt(x) for x from 1e-12 to 1e-4", sqrt_forward,
    sqrt_backward, _log_uniform(-12, -4, (4, 5)))
add("correct", F, "sigmoid_saturated", "sigmoid at x ~ +-40 (derivative ~1e-17)", sigmoid_forward,
    sigmoid_backward_exact, _saturated)
add("correct", F, "tanh_steep", "tanh(100 x) for |x| < 0.03", steep_tanh_forward,
    steep_tanh_backward, lambda rng: (rng.uniform(-0.03, 0.03, (4, 5)),))
add("correct", F, "softmax_loss_large_logits", "softmax loss with logits in the hundreds",
    softmax_loss_forward, softmax_loss_backward,
    lambda rng: (normal(rng, 6, 5, scale=300.0), rng.integers(0, 5, size=6)))


# --- products and long sums ----------------------------------------------------------------


def row_product_forward(x):
    """Product of each row of x (N, K) -> (N,); closure-style backward."""
    out = x.prod(axis=1)

    def backprop(dout):
        return (dout * out)[:, None] / x  # no zeros in x

    return out, backprop


def call_closure(dout, backprop):
    """Backward for closure-style forwards: the cache is the backprop function."""
    return backprop(dout)


def softplus_sum_forward(x):
    """sum(log(1 + exp(x))) over every element -> 0-d."""
    return np.asarray(np.logaddexp(0, x).sum()), x


def softplus_sum_backward(dout, x):
    return dout * 0.5 * (1 + np.tanh(0.5 * x))


add("correct", F, "product_many_terms", "product of 40 terms per row (closure-style backward)",
    row_product_forward, call_closure, lambda rng: (rng.uniform(0.5, 1.6, (3, 40)),))
add("correct", F, "softplus_sum_4000_terms", "a loss summing 4000 softplus terms",
    softplus_sum_forward, softplus_sum_backward, lambda rng: (normal(rng, 40, 100, scale=3.0),))

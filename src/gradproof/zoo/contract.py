"""Zoo family "contract": bugs in how a layer treats its arrays, not in its calculus.

Writing into arrays the function does not own (dout, the cache, the inputs),
returning the wrong dtype, or a backward that is not linear in dout. Several of
these return correct values on the first call, which is why a value-only check
misses them.
"""

from __future__ import annotations

import numpy as np

from .activations import softmax_backward, softmax_forward, tanh_backward, tanh_forward
from .case import add, normal


def _inputs(rng):
    return (normal(rng, 4, 5),)


# --- out = x + tanh(x): accumulating into the caller's dout -----------------------------


def skip_tanh_forward(x):
    """x + tanh(x), any shape."""
    t = np.tanh(x)
    return x + t, t


def skip_tanh_backward(dout, t):
    return dout + dout * (1 - t**2)


def skip_tanh_backward_accumulates(dout, t):
    dx = dout  # not a copy:
    dx += dout * (1 - t**2)  # the caller's dout now holds dx
    return dx


# --- sigmoid whose backward overwrites its cache ---------------------------------------


def sigmoid_forward(x):
    s = 1 / (1 + np.exp(-x))
    return s, s


def sigmoid_backward(dout, s):
    return dout * s * (1 - s)


def sigmoid_backward_mutates_cache(dout, s):
    s *= 1 - s  # the cached sigmoid becomes its derivative: a second backward is wrong
    return dout * s


def sigmoid_backward_float32(dout, s):
    dx = np.empty(s.shape, dtype=np.float32)  # preallocated in the wrong dtype
    dx[...] = dout * s * (1 - s)
    return dx


# --- backward that is not linear in dout ------------------------------------------------


def tanh_backward_abs_dout(dout, cache):
    _, out = cache
    return np.abs(dout) * (1 - out**2)  # the sign of the upstream gradient is lost


def tanh_backward_clips_dout(dout, cache):
    _, out = cache
    return np.clip(dout, -1, 1) * (1 - out**2)  # gradient clipping in the wrong place


# --- forward that writes into its input ---------------------------------------------------


def softmax_forward_shifts_input(x):
    x -= x.max(axis=-1, keepdims=True)  # the stability shift, done on the caller's array
    e = np.exp(x)
    p = e / e.sum(axis=-1, keepdims=True)
    return p, p


# --- registration -----------------------------------------------------------------------

F = "contract"
add("correct", F, "skip_tanh", "x + tanh(x)", skip_tanh_forward, skip_tanh_backward, _inputs)
add("bug", F, "skip_tanh_accumulates_into_dout",
    "dx = dout; dx += ...: the backward accumulates into the caller's dout", skip_tanh_forward,
    skip_tanh_backward_accumulates, _inputs, expect="in place: dout",
    ref_backward=skip_tanh_backward)
add("correct", F, "sigmoid_plain", "logistic sigmoid 1 / (1 + exp(-x))", sigmoid_forward,
    sigmoid_backward, _inputs)
add("bug", F, "sigmoid_mutates_cache", "s *= 1 - s in backward overwrites the cached sigmoid",
    sigmoid_forward, sigmoid_backward_mutates_cache, _inputs, expect="in place: cache",
    ref_backward=sigmoid_backward)
add("bug", F, "sigmoid_grad_float32", "dx preallocated as float32 for a float64 input",
    sigmoid_forward, sigmoid_backward_float32, _inputs, expect="dtype: float32 for float64",
    ref_backward=sigmoid_backward)
add("bug", F, "tanh_abs_dout", "backward multiplies by |dout|", tanh_forward,
    tanh_backward_abs_dout, _inputs, expect="not linear in dout", ref_backward=tanh_backward)
add("bug", F, "tanh_clips_dout", "backward clips dout to [-1, 1] (clipping in the wrong place)",
    tanh_forward, tanh_backward_clips_dout, _inputs, expect="not linear in dout",
    ref_backward=tanh_backward)
add("bug", F, "softmax_shifts_input_in_place",
    "softmax forward subtracts the row max from x in place", softmax_forward_shifts_input,
    softmax_backward, _inputs, expect="in place: input 0 (forward)",
    ref_forward=softmax_forward)

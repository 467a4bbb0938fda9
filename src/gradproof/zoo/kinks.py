"""Zoo family "kinks": correct layers evaluated exactly at non-differentiable points.

Each backward returns a valid subgradient there (a one-sided derivative, or a
choice among tied maxima that sends each window's dout to exactly one element),
so a good checker must recognise the kink instead of reporting a mismatch.
"""

from __future__ import annotations

import numpy as np

from .activations import leaky_relu_backward, leaky_relu_forward, relu_backward, relu_forward
from .case import add, normal
from .conv import maxpool_backward, maxpool_forward, tied_windows
from .dense import svm_loss_backward, svm_loss_forward

F = "kinks"


def _with_exact_zeros(rng):
    x = normal(rng, 4, 5)
    x[0, 1] = x[2, 3] = x[3, 0] = x[1, 4] = 0.0
    return (x,)


def relu_backward_ge(dout, x):
    return dout * (x >= 0)  # slope 1 at 0: also a valid subgradient


# --- |x| near and at 0 --------------------------------------------------------------


def abs_forward(x):
    return np.abs(x), x


def abs_backward(dout, x):
    return dout * np.sign(x)  # 0 at x == 0


def _near_zero(rng):
    x = normal(rng, 4, 5)
    x[0, :4] = [0.0, 3e-8, -5e-8, 1e-7]
    x[2, 2] = -2e-9
    return (x,)


# --- hinge loss at margin exactly 0 ----------------------------------------------------


def _zero_margins(rng):
    """Scores on a grid of 0.5 with labels chosen so that several margins are exactly 0."""
    x = rng.integers(-4, 5, size=(6, 4)) / 2.0
    y = rng.integers(0, 4, size=6)
    for i in range(6):
        j = (y[i] + 1) % 4
        x[i, j] = x[i, y[i]] - 1.0  # margin x_j - x_y + 1 == 0
    return x, y


# --- elementwise max with ties, clip at its bounds, L1 at zero residual ---------------


def maximum_forward(x, y):
    return np.maximum(x, y), (x, y)


def maximum_backward(dout, cache):
    x, y = cache
    to_x = x >= y  # a tie goes to x only
    return dout * to_x, dout * ~to_x


def _tied_pairs(rng):
    x, y = normal(rng, 4, 5), normal(rng, 4, 5)
    y[:, 1] = x[:, 1]
    y[3, 3] = x[3, 3]
    return x, y


LOW, HIGH = -1.0, 1.0


def clip_forward(x):
    return np.clip(x, LOW, HIGH), x


def clip_backward(dout, x):
    return dout * ((x > LOW) & (x < HIGH))  # 0 at the bounds: the one-sided derivative outside


def _at_bounds(rng):
    x = normal(rng, 4, 5, scale=1.5)
    x[0, 0] = x[2, 1] = HIGH
    x[1, 3] = x[3, 2] = LOW
    return (x,)


def l1_forward(x, t):
    """sum |x - t| -> 0-d."""
    return np.asarray(np.abs(x - t).sum()), (x, t)


def l1_backward(dout, cache):
    x, t = cache
    dx = dout * np.sign(x - t)
    return dx, -dx


def _zero_residuals(rng):
    x, t = normal(rng, 4, 5), normal(rng, 4, 5)
    t[1] = x[1]
    t[3, 2] = x[3, 2]
    return x, t


# --- max over an axis with ties ----------------------------------------------------------


def max_rows_forward(x):
    """Max of each row of x (N, K) -> (N,)."""
    return x.max(axis=1), x


def max_rows_backward(dout, x):
    dx = np.zeros_like(x)
    dx[np.arange(x.shape[0]), x.argmax(axis=1)] = dout  # the first maximum only
    return dx


def _tied_rows(rng):
    x = normal(rng, 4, 6)
    x[0, [1, 4]] = 3.0
    x[2, :] = -0.5
    return (x,)


# --- registration -----------------------------------------------------------------------

add("kink", F, "relu_exact_zeros", "ReLU at inputs exactly 0 (slope 0 there)", relu_forward,
    relu_backward, _with_exact_zeros)
add("kink", F, "relu_ge_exact_zeros", "ReLU backward with x >= 0 at inputs exactly 0 (slope 1)",
    relu_forward, relu_backward_ge, _with_exact_zeros)
add("kink", F, "leaky_relu_exact_zeros", "leaky ReLU at inputs exactly 0", leaky_relu_forward,
    leaky_relu_backward, _with_exact_zeros)
add("kink", F, "maxpool_ties", "2x2 max pooling with constant windows (first maximum wins)",
    maxpool_forward, maxpool_backward, tied_windows)
add("kink", F, "abs_near_zero", "|x| with elements 0 and within 1e-7 of 0", abs_forward,
    abs_backward, _near_zero)
add("kink", F, "svm_margin_zero", "SVM hinge loss with margins exactly 0", svm_loss_forward,
    svm_loss_backward, _zero_margins)
add("kink", F, "maximum_ties", "elementwise max(x, y) with x == y in places", maximum_forward,
    maximum_backward, _tied_pairs)
add("kink", F, "clip_at_bounds", "clip(x, -1, 1) with elements exactly at -1 and 1", clip_forward,
    clip_backward, _at_bounds)
add("kink", F, "l1_zero_residual", "sum |x - t| with x == t in places", l1_forward, l1_backward,
    _zero_residuals)
add("kink", F, "max_rows_ties", "max over each row with tied maxima", max_rows_forward,
    max_rows_backward, _tied_rows)

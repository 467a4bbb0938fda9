"""Zoo family "domain": functions of ReLU outputs whose domain ends at 0.

Every input is ``relu(z)`` for z (64, 128) standard normal: about half of it is
exactly 0, where the function is defined and differentiable (the derivative of
x**1.5 at 0 is 0) but a two-sided difference is not: below 0 the forward
returns NaN (``x ** 1.5``, ``sqrt``, ``log``) or raises (a forward that
validates its input). A good checker measures one-sided there; a checker that
reads the NaNs as "out of domain" and stops passes the bugs below. Every case
names its input in ``nonnegative``.
"""

from __future__ import annotations

import numpy as np

from .case import add, normal

POWER = 2.5  # the exponent of the power computed through log


def relu_features(rng):
    return (np.maximum(normal(rng, 64, 128), 0.0),)


# --- x ** 1.5 ------------------------------------------------------------------------------


def pow15_forward(x):
    """x (N, D) >= 0 -> x ** 1.5 (NaN below 0)."""
    return x**1.5, x


def pow15_backward(dout, x):
    return dout * 1.5 * np.sqrt(x)


def pow15_backward_doubled(dout, x):
    return dout * 3 * np.sqrt(x)  # d/dx x**1.5 written as 3 sqrt(x)


# --- x * sqrt(x) ---------------------------------------------------------------------------


def x_sqrt_x_forward(x):
    """x (N, D) >= 0 -> x * sqrt(x) (NaN below 0)."""
    root = np.sqrt(x)
    return x * root, root


def x_sqrt_x_backward(dout, root):
    return dout * 1.5 * root  # root + x / (2 root)


def x_sqrt_x_backward_one_term(dout, root):
    return dout * root  # product rule: the x * d(sqrt x) term is missing


# --- x ** 2.5 through exp(p log x) -----------------------------------------------------------


def power_via_log_forward(x):
    """x (N, D) >= 0 -> exp(2.5 log x) = x ** 2.5 (log 0 = -inf gives exactly 0; NaN below 0)."""
    with np.errstate(divide="ignore"):
        return np.exp(POWER * np.log(x)), x


def power_via_log_backward(dout, x):
    return dout * POWER * x * np.sqrt(x)  # p x**(p - 1), finite at 0


def power_via_log_backward_no_inner(dout, x):
    with np.errstate(divide="ignore"):
        return dout * POWER * np.exp(POWER * np.log(x))  # d exp(u) = exp(u) du, du = p / x lost


# --- a forward that raises below 0 -------------------------------------------------------------


def pow15_forward_validated(x):
    """x ** 1.5 of a ReLU output; raises ValueError if any x < 0."""
    if np.any(x < 0):
        raise ValueError(f"x must be >= 0 (a ReLU output), got a minimum of {x.min()}")
    return x**1.5, x


def pow15_backward_no_sqrt(dout, x):
    return dout * 1.5 * x  # x ** 0.5 typed as x


# --- registration ------------------------------------------------------------------------------

F = "domain"
ZERO_EDGE = {"nonnegative": (0,)}
add("correct", F, "pow15_relu", "x ** 1.5 of a ReLU output (half exact zeros)", pow15_forward,
    pow15_backward, relu_features, **ZERO_EDGE)
add("bug", F, "pow15_relu_doubled", "d/dx x**1.5 written as 3 sqrt(x): factor 2", pow15_forward,
    pow15_backward_doubled, relu_features, expect="factor 2 in dx; NaN below 0 (domain edge)",
    ref_backward=pow15_backward, **ZERO_EDGE)
add("correct", F, "x_sqrt_x_relu", "x * sqrt(x) of a ReLU output", x_sqrt_x_forward,
    x_sqrt_x_backward, relu_features, **ZERO_EDGE)
add("bug", F, "x_sqrt_x_product_rule",
    "d(x sqrt x) written as sqrt(x): the product rule's second term is missing",
    x_sqrt_x_forward, x_sqrt_x_backward_one_term, relu_features,
    expect="factor 2/3 in dx; NaN below 0 (domain edge)", ref_backward=x_sqrt_x_backward,
    **ZERO_EDGE)
add("correct", F, "power_via_log_relu", "exp(2.5 log x) of a ReLU output", power_via_log_forward,
    power_via_log_backward, relu_features, **ZERO_EDGE)
add("bug", F, "power_via_log_no_inner",
    "exp(p log x) differentiated as p exp(p log x): the 1/x of log is lost",
    power_via_log_forward, power_via_log_backward_no_inner, relu_features,
    expect="dx (input 0) off by a factor x; NaN below 0 (domain edge)",
    ref_backward=power_via_log_backward, **ZERO_EDGE)
add("correct", F, "pow15_validated", "x ** 1.5 of a ReLU output, raising below 0",
    pow15_forward_validated, pow15_backward, relu_features, **ZERO_EDGE)
add("bug", F, "pow15_validated_no_sqrt",
    "x ** 1.5 whose derivative is typed 1.5 x; the forward raises below 0",
    pow15_forward_validated, pow15_backward_no_sqrt, relu_features,
    expect="dx (input 0) wrong; the forward raises below 0 (domain edge)",
    ref_backward=pow15_backward, **ZERO_EDGE)

"""Elementwise activations, defined by one table of rules.

Every activation is ``out = f(x)`` applied elementwise, so its backward is
``dx = dout * f'(x)``. Each entry of :data:`RULES` gives, side by side, the
forward value ``f`` and the local slope ``f'`` (micrograd style); two generic
functions do the rest, so no activation has its own backward code::

    out, cache = gelu(x, approximate="tanh")   # any shape; out has x's shape and dtype
    dx = gelu_backward(dout, cache)            # dout, dx: x's shape; dx has x's dtype

Subgradients at kinks (the points where f is not differentiable), chosen
like torch:

* ``relu``: slope 0 at x == 0.
* ``leaky_relu``: slope ``negative_slope`` at x == 0.
* ``elu``: slope ``alpha`` at x == 0 (the left derivative; continuous when alpha == 1).
* ``softplus``: linear (slope exactly 1) where ``beta * x > threshold``; below it
  the exact softplus. The switch leaves a jump of at most ``log1p(exp(-threshold)) / beta``
  (2e-9 at the default threshold 20), as in torch.

Numerics: sigmoid, silu, softplus and the tanh-approximated GELU are computed
from ``exp(-|x|)`` so they are finite and exact for |x| in the thousands; the
slopes ``s (1 - s)`` and ``1 - tanh(x)**2`` are computed without cancellation,
so saturated gradients (1e-300) keep full relative precision. The erf GELU
needs the normal CDF; NumPy has no ``erf``, so :func:`normal_cdf` computes it
(series below |z| = 1.5, continued fraction above), to 1e-13 relative.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..._validate import cache_of, float_array, positive, real, upstream
from ...errors import InputError

__all__ = [
    "relu",
    "relu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "elu",
    "elu_backward",
    "gelu",
    "gelu_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "softplus",
    "softplus_backward",
    "silu",
    "silu_backward",
    # CS231n names
    "relu_forward",
]

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715  # the constant of the tanh approximation (Hendrycks & Gimpel)


# --- numerically careful building blocks --------------------------------------
def logistic(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` from ``e = exp(-|x|)``: never overflows, exact in both tails."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def logistic_slope(x: np.ndarray) -> np.ndarray:
    """``s (1 - s)`` for ``s = logistic(x)``, as ``e / (1 + e)**2``: exact at large |x|."""
    e = np.exp(-np.abs(x))
    return e / (1 + e) ** 2


def _gauss(x: np.ndarray) -> np.ndarray:
    """``exp(-x**2 / 2)`` with ``x**2`` split exactly (Cody's trick).

    ``x = r + d`` with r a multiple of 1/16, so ``r*r`` is exact and
    ``x**2 = r*r + d*(x + r)`` loses nothing: the relative error stays near eps
    even where x**2/2 is in the hundreds (a plain ``exp(-x*x/2)`` is off by
    ``x**2 * eps``, 1e-13 at x = 37).
    """
    r = np.round(x * 16.0) / 16.0
    return np.exp(-0.5 * r * r) * np.exp(-0.5 * (x - r) * (x + r))


def _erf_series_sum(z: np.ndarray) -> np.ndarray:
    """``S(z) = sum 2^n z^(2n+1) / (2n+1)!!``, so that ``erf(z) = 2/sqrt(pi) exp(-z^2) S(z)``.

    All terms are positive, so there is no cancellation; about 25 terms at z = 1.5.
    """
    term = z.copy()
    total = z.copy()
    two_z2 = 2.0 * z * z
    for n in range(1, 120):
        term *= two_z2 / (2 * n + 1)
        total += term
        if np.all(term <= 1e-17 * total):
            break
    return total


def _erfc_fraction(z: np.ndarray, depth: int = 100) -> np.ndarray:
    """``t(z)`` with ``erfc(z) = exp(-z^2) / (sqrt(pi) t)``, by the continued fraction
    ``t = z + (1/2)/(z + 1/(z + (3/2)/(z + ...)))``, evaluated from the tail.

    100 levels converge to rounding for z >= 1.5.
    """
    t = z.copy()
    for k in range(depth, 0, -1):
        t = z + (0.5 * k) / t
    return t


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF ``Phi(x) = erfc(-x / sqrt(2)) / 2`` in float64, exact in both tails.

    With ``z = |x| / sqrt(2)``: the upper tail ``P(Z > |x|) = erfc(z) / 2`` comes
    from the series of erf below z = 1.5 and from the continued fraction of
    erfc above, where ``1 - erf`` would cancel. Relative error below 1e-13
    (the worst, 3e-14, just below the switch).
    """
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x) * _SQRT_HALF
    gauss = _gauss(x)  # exp(-z**2)
    upper_tail = np.empty_like(z)
    near = z < 1.5
    upper_tail[near] = 0.5 - gauss[near] * _erf_series_sum(z[near]) / math.sqrt(math.pi)
    upper_tail[~near] = 0.5 * gauss[~near] / (math.sqrt(math.pi) * _erfc_fraction(z[~near]))
    return np.where(x >= 0, 1.0 - upper_tail, upper_tail)


def _sech2(x: np.ndarray) -> np.ndarray:
    """``1 - tanh(x)**2`` as ``4 s (1 - s)`` of 2x: no cancellation where tanh saturates."""
    return 4 * logistic_slope(2 * x)


def _gelu_tanh_inner(x: np.ndarray) -> np.ndarray:
    return _SQRT_2_OVER_PI * (x + _GELU_CUBIC * x**3)


def _gelu_value(x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        # 0.5 (1 + tanh(u)) == logistic(2u): exact in the negative tail.
        return x * logistic(2 * _gelu_tanh_inner(x))
    return (x * normal_cdf(x)).astype(x.dtype, copy=False)


def _gelu_slope(x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        u2 = 2 * _gelu_tanh_inner(x)
        du2 = 2 * _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x)
        return logistic(u2) + x * logistic_slope(u2) * du2
    x64 = x.astype(np.float64, copy=False)
    pdf = _INV_SQRT_2PI * _gauss(x64)
    return (normal_cdf(x64) + x64 * pdf).astype(x.dtype, copy=False)


def _softplus_value(x: np.ndarray, beta: float, threshold: float) -> np.ndarray:
    bx = beta * x
    smooth = (np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))) / beta
    return np.where(bx > threshold, x, smooth)


def _one(x: np.ndarray) -> np.floating:
    return x.dtype.type(1)


# --- the table ----------------------------------------------------------------
@dataclass(frozen=True)
class ElementwiseRule:
    """One activation: its value ``f(x, **params)`` and its slope ``f'(x, **params)``."""

    value: Callable[..., np.ndarray]
    slope: Callable[..., np.ndarray]
    formula: str  # the slope, for the backward's docstring


RULES: dict[str, ElementwiseRule] = {
    "relu": ElementwiseRule(
        lambda x: np.maximum(x, 0),
        lambda x: x > 0,  # a mask: dout * mask is dout's dtype, with no float copy of it
        "1 if x > 0 else 0 (0 at x == 0)",
    ),
    "leaky_relu": ElementwiseRule(
        lambda x, negative_slope: np.where(x > 0, x, x * negative_slope),
        lambda x, negative_slope: np.where(x > 0, _one(x), x.dtype.type(negative_slope)),
        "1 if x > 0 else negative_slope",
    ),
    "elu": ElementwiseRule(
        lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
        lambda x, alpha: np.where(x > 0, _one(x), alpha * np.exp(np.minimum(x, 0))),
        "1 if x > 0 else alpha * exp(x)",
    ),
    "gelu": ElementwiseRule(
        _gelu_value,
        _gelu_slope,
        "Phi(x) + x phi(x) (erf), or the derivative of the tanh form",
    ),
    "sigmoid": ElementwiseRule(logistic, logistic_slope, "sigmoid(x) (1 - sigmoid(x))"),
    "tanh": ElementwiseRule(np.tanh, _sech2, "1 - tanh(x)**2"),
    "softplus": ElementwiseRule(
        _softplus_value,
        lambda x, beta, threshold: np.where(beta * x > threshold, _one(x), logistic(beta * x)),
        "sigmoid(beta x), or 1 where beta x > threshold",
    ),
    "silu": ElementwiseRule(
        lambda x: x * logistic(x),
        lambda x: logistic(x) + x * logistic_slope(x),
        "s + x s (1 - s) with s = sigmoid(x)",
    ),
}


@dataclass
class ElementwiseCache:
    """What an activation's backward needs: the rule's name, the input and the options."""

    activation: str
    x: np.ndarray
    params: dict = field(default_factory=dict)


def _forward(activation: str, x: object, **params) -> tuple[np.ndarray, ElementwiseCache]:
    x = float_array("x", x)
    # np.asarray: NumPy's ufuncs turn a 0-d input into a scalar; the output stays an array
    out = np.asarray(RULES[activation].value(x, **params), dtype=x.dtype)
    return out, ElementwiseCache(activation, x, params)


def _make_backward(activation: str) -> Callable[[np.ndarray, ElementwiseCache], np.ndarray]:
    """The backward of one activation: ``dx = dout * slope``, with checks naming it."""
    rule = RULES[activation]

    def backward(dout: np.ndarray, cache: ElementwiseCache) -> np.ndarray:
        cache = cache_of(cache, ElementwiseCache, f"{activation}_backward", activation)
        if cache.activation != activation:
            raise InputError(
                f"cache comes from {cache.activation}(), not {activation}(); "
                f"use {cache.activation}_backward()"
            )
        dout = upstream(dout, cache.x.shape, cache.x.dtype, activation)
        slope = rule.slope(cache.x, **cache.params)
        return np.asarray(np.multiply(dout, slope), dtype=cache.x.dtype)

    backward.__name__ = backward.__qualname__ = f"{activation}_backward"
    backward.__doc__ = (
        f"Backward of :func:`{activation}`: ``dx = dout * f'(x)``, f'(x) = {rule.formula}.\n\n"
        "dout has x's shape; dx has x's shape and dtype."
    )
    return backward


# --- the activations ----------------------------------------------------------
def relu(x: np.ndarray) -> tuple[np.ndarray, ElementwiseCache]:
    """ReLU ``max(x, 0)``. x: any shape, float; out: x's shape and dtype. Slope 0 at x == 0."""
    return _forward("relu", x)


def leaky_relu(x: np.ndarray, negative_slope: float = 0.01) -> tuple[np.ndarray, ElementwiseCache]:
    """Leaky ReLU ``x if x > 0 else negative_slope * x`` (torch's default slope 0.01).

    x: any shape; out: x's shape and dtype. Slope ``negative_slope`` at x == 0.
    """
    return _forward("leaky_relu", x, negative_slope=real("negative_slope", negative_slope))


def elu(x: np.ndarray, alpha: float = 1.0) -> tuple[np.ndarray, ElementwiseCache]:
    """ELU ``x if x > 0 else alpha * (exp(x) - 1)``. x: any shape; out: x's shape and dtype."""
    return _forward("elu", x, alpha=real("alpha", alpha))


def gelu(x: np.ndarray, approximate: str = "none") -> tuple[np.ndarray, ElementwiseCache]:
    """GELU ``x * Phi(x)`` like ``torch.nn.functional.gelu``.

    ``approximate="none"`` uses the exact normal CDF (erf); ``"tanh"`` uses
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``. x: any shape; out:
    x's shape and dtype (the erf form is computed in float64, then cast).
    """
    if approximate not in ("none", "tanh"):
        raise InputError(f"approximate must be 'none' (erf) or 'tanh', got {approximate!r}")
    return _forward("gelu", x, approximate=approximate)


def sigmoid(x: np.ndarray) -> tuple[np.ndarray, ElementwiseCache]:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, finite and exact for |x| in the thousands."""
    return _forward("sigmoid", x)


def tanh(x: np.ndarray) -> tuple[np.ndarray, ElementwiseCache]:
    """Hyperbolic tangent. x: any shape; out: x's shape and dtype."""
    return _forward("tanh", x)


def softplus(
    x: np.ndarray, beta: float = 1.0, threshold: float = 20.0
) -> tuple[np.ndarray, ElementwiseCache]:
    """Softplus ``log(1 + exp(beta x)) / beta``, linear where ``beta x > threshold`` (as torch).

    Computed as ``(max(bx, 0) + log1p(exp(-|bx|))) / beta``: no overflow for
    any threshold. beta must be positive. out: x's shape and dtype.
    """
    beta = positive("beta", beta)
    threshold = real("threshold", threshold)
    return _forward("softplus", x, beta=beta, threshold=threshold)


def silu(x: np.ndarray) -> tuple[np.ndarray, ElementwiseCache]:
    """SiLU (swish) ``x * sigmoid(x)``. x: any shape; out: x's shape and dtype."""
    return _forward("silu", x)


relu_backward = _make_backward("relu")
leaky_relu_backward = _make_backward("leaky_relu")
elu_backward = _make_backward("elu")
gelu_backward = _make_backward("gelu")
sigmoid_backward = _make_backward("sigmoid")
tanh_backward = _make_backward("tanh")
softplus_backward = _make_backward("softplus")
silu_backward = _make_backward("silu")

# CS231n names.
relu_forward = relu

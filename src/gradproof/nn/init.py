"""Weight initialisation: He (Kaiming), Xavier (Glorot), a fixed scale, zeros.

Every initialiser takes the array's ``shape``, an ``rng`` (a
``numpy.random.Generator`` or an int seed) and a ``dtype`` (float32 or float64)
and returns a new array; the same seed gives the same array in both dtypes up
to rounding (values are drawn in float64, then cast).

Fans follow gradproof's weight layouts: a dense weight ``w`` has shape
``(in_features, out_features)`` (CS231n's ``(D, M)``, the transpose of
PyTorch's), so ``fan_in = shape[0]`` and ``fan_out = shape[1]``; a convolution
weight ``(F, C, HH, WW)`` has ``fan_in = C*HH*WW`` and ``fan_out = F*HH*WW``.

==================  ===========================================  ====================
name                distribution                                 for
==================  ===========================================  ====================
``he_normal``       N(0, std²), ``std = sqrt(2 / fan_in)``       ReLU-like networks
``he_uniform``      U(-a, a), ``a = sqrt(6 / fan_in)``           ReLU-like networks
``xavier_normal``   N(0, std²), ``std = sqrt(2/(fan_in+fan_out))``  tanh, sigmoid
``xavier_uniform``  U(-a, a), ``a = sqrt(6/(fan_in+fan_out))``   tanh, sigmoid
a float ``s``       N(0, s²)                                     CS231n's weight_scale
``zeros``           0                                            biases
==================  ===========================================  ====================

``"he"`` and ``"kaiming"`` mean ``he_normal``; ``"xavier"`` and ``"glorot"`` mean
``xavier_normal``. :func:`initializer` turns any of these specs into a function.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..errors import InputError, InputTypeError, describe
from .dtypes import as_generator, resolve_dtype

__all__ = [
    "fans",
    "he_normal",
    "he_uniform",
    "xavier_normal",
    "xavier_uniform",
    "normal",
    "zeros",
    "initializer",
    "INITIALIZERS",
]

Shape = tuple[int, ...]
Initializer = Callable[..., np.ndarray]


def fans(shape: Shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape`` (see the module docstring)."""
    shape = _check_shape(shape)
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _check_shape(shape) -> Shape:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError as exc:
        raise InputTypeError(f"shape must be a tuple of ints, got {describe(shape)}") from exc
    if not shape or any(s <= 0 for s in shape):
        raise InputError(f"shape must be a non-empty tuple of positive ints, got {shape}")
    return shape


def _normal(shape, std: float, rng, dtype) -> np.ndarray:
    dtype = resolve_dtype(dtype)
    gen = as_generator(rng)
    return (gen.standard_normal(_check_shape(shape)) * std).astype(dtype, copy=False)


def _uniform(shape, bound: float, rng, dtype) -> np.ndarray:
    dtype = resolve_dtype(dtype)
    gen = as_generator(rng)
    return gen.uniform(-bound, bound, size=_check_shape(shape)).astype(dtype, copy=False)


def he_normal(shape: Shape, rng=None, dtype=np.float64) -> np.ndarray:
    """He (Kaiming) normal: N(0, 2/fan_in). Keeps activations' variance through ReLUs."""
    fan_in, _ = fans(shape)
    return _normal(shape, math.sqrt(2.0 / fan_in), rng, dtype)


def he_uniform(shape: Shape, rng=None, dtype=np.float64) -> np.ndarray:
    """He (Kaiming) uniform: U(-sqrt(6/fan_in), sqrt(6/fan_in)), variance 2/fan_in."""
    fan_in, _ = fans(shape)
    return _uniform(shape, math.sqrt(6.0 / fan_in), rng, dtype)


def xavier_normal(shape: Shape, rng=None, dtype=np.float64) -> np.ndarray:
    """Xavier (Glorot) normal: N(0, 2/(fan_in+fan_out))."""
    fan_in, fan_out = fans(shape)
    return _normal(shape, math.sqrt(2.0 / (fan_in + fan_out)), rng, dtype)


def xavier_uniform(shape: Shape, rng=None, dtype=np.float64) -> np.ndarray:
    """Xavier (Glorot) uniform: U(-a, a) with a = sqrt(6/(fan_in+fan_out))."""
    fan_in, fan_out = fans(shape)
    return _uniform(shape, math.sqrt(6.0 / (fan_in + fan_out)), rng, dtype)


def normal(shape: Shape, std: float, rng=None, dtype=np.float64) -> np.ndarray:
    """N(0, std²): a fixed scale, CS231n's ``weight_scale``."""
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not std >= 0:
        raise InputError(f"std must be a non-negative float, got {std!r}")
    return _normal(shape, float(std), rng, dtype)


def zeros(shape: Shape, rng=None, dtype=np.float64) -> np.ndarray:
    """All zeros (``rng`` is accepted and ignored so every initialiser has one signature)."""
    return np.zeros(_check_shape(shape), dtype=resolve_dtype(dtype))


INITIALIZERS: dict[str, Initializer] = {
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "xavier_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "zeros": zeros,
}
_ALIASES = {
    "he": "he_normal",
    "kaiming": "he_normal",
    "kaiming_normal": "he_normal",
    "kaiming_uniform": "he_uniform",
    "xavier": "xavier_normal",
    "glorot": "xavier_normal",
    "glorot_normal": "xavier_normal",
    "glorot_uniform": "xavier_uniform",
}


def initializer(spec: str | float, name: str = "init") -> Initializer:
    """The function ``f(shape, rng, dtype) -> array`` for a name or a float std.

    ``name`` is the argument named in the error message for an unknown spec.
    """
    if isinstance(spec, str):
        key = _ALIASES.get(spec.lower(), spec.lower())
        if key not in INITIALIZERS:
            known = sorted(set(INITIALIZERS) | set(_ALIASES))
            raise InputError(f"{name} must be one of {known} or a float std, got {spec!r}")
        return INITIALIZERS[key]
    if isinstance(spec, (int, float, np.floating)) and not isinstance(spec, bool):
        std = float(spec)
        if not std >= 0:
            raise InputError(f"{name} as a float is a std and must be >= 0, got {spec!r}")
        return lambda shape, rng=None, dtype=np.float64: normal(shape, std, rng, dtype)
    raise InputTypeError(
        f"{name} must be an initialiser name (e.g. 'he', 'xavier') or a float std, "
        f"got {describe(spec)}"
    )

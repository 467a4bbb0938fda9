"""Activation modules, generated from one table over the functional activations.

Each module wraps a pair ``out, cache = f(x, **options)`` /
``dx = f_backward(dout, cache)`` of :mod:`gradproof.nn.functional.activations`
and keeps the cache between forward and backward. The table gives each
module's class name, its functional pair and its options with torch's
defaults; :func:`activation` builds one by name (``"relu"``, ``"gelu"``, ...).

Shapes: ``x`` any shape; ``out`` and ``dx`` have ``x``'s shape and dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import InputError, InputTypeError, describe
from . import functional as F
from .dtypes import check_float_input
from .module import Module

__all__ = [
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "GELU",
    "Sigmoid",
    "Tanh",
    "Softplus",
    "SiLU",
    "ACTIVATIONS",
    "activation",
]


class Activation(Module):
    """Base of the activation modules: an elementwise functional pair, no parameters.

    Subclasses set ``name`` (the table key), ``_forward``/``_backward`` (the
    functional pair) and ``defaults`` (option names and default values).
    """

    name: str = ""
    _forward: Callable[..., tuple[np.ndarray, Any]]
    _backward: Callable[[np.ndarray, Any], np.ndarray]
    defaults: dict[str, Any] = {}

    def __init__(self, **options: Any) -> None:
        super().__init__()
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise InputError(
                f"{type(self).__name__} has no option {unknown[0]!r}; its options are "
                f"{self.defaults or 'none'}"
            )
        self.options = {**self.defaults, **options}
        # validate the options now (the functional checks them) rather than at the first batch
        type(self)._forward(np.zeros(1), **self.options)
        self._cache: Any = None

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.options.items() if v != self.defaults[k]}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(x, self)
        out, self._cache = type(self)._forward(x, **self.options)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise InputError(f"{self!r}: backward called before forward")
        return type(self)._backward(dout, self._cache)


def _make(class_name: str, key: str, **defaults: Any) -> type[Activation]:
    forward = getattr(F, key)
    backward = getattr(F, f"{key}_backward")
    doc = (forward.__doc__ or "").strip().splitlines()[0]
    options = f" Options (torch's defaults): {defaults}." if defaults else ""
    return type(
        class_name,
        (Activation,),
        {
            "__doc__": f"Module of :func:`gradproof.nn.functional.{key}`: {doc}{options}",
            "__module__": __name__,
            "name": key,
            "_forward": staticmethod(forward),
            "_backward": staticmethod(backward),
            "defaults": defaults,
        },
    )


# class name, functional name, options with torch's defaults
ReLU = _make("ReLU", "relu")
LeakyReLU = _make("LeakyReLU", "leaky_relu", negative_slope=0.01)
ELU = _make("ELU", "elu", alpha=1.0)
GELU = _make("GELU", "gelu", approximate="none")
Sigmoid = _make("Sigmoid", "sigmoid")
Tanh = _make("Tanh", "tanh")
Softplus = _make("Softplus", "softplus", beta=1.0, threshold=20.0)
SiLU = _make("SiLU", "silu")

ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (ReLU, LeakyReLU, ELU, GELU, Sigmoid, Tanh, Softplus, SiLU)
}


def activation(spec: str | type[Module], name: str = "activation", **options: Any) -> Module:
    """A new activation module from a name (``"relu"``, ``"leaky_relu"``, ...) or a Module class.

    ``options`` go to the module's constructor; ``name`` is the argument named
    in error messages. A class (not an instance) is taken so that every layer
    of a model gets its own module and its own cache.
    """
    if isinstance(spec, type) and issubclass(spec, Module):
        return spec(**options)
    if not isinstance(spec, str):
        raise InputTypeError(
            f"{name} must be an activation name {sorted(ACTIVATIONS)} or a Module class, "
            f"got {describe(spec)}"
        )
    key = spec.lower()
    if key not in ACTIVATIONS:
        raise InputError(f"{name} must be one of {sorted(ACTIVATIONS)}, got {spec!r}")
    return ACTIVATIONS[key](**options)

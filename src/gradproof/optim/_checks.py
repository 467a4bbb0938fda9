"""Argument checks shared by optimizers, schedulers and clipping.

Each check takes the value, the argument's name and the owner (``"Adam"``,
``"StepLR"``) and returns the value normalised to a plain Python type (float,
bool, int, tuple of floats), so that hyper-parameters are JSON-serialisable and
never upcast float32 arrays (NumPy treats Python scalars as "weak"). Errors name
the owner, the argument, what was expected and what was got.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..errors import InputError, InputTypeError, describe
from ..nn.module import Module, Parameter

__all__ = [
    "Check",
    "real",
    "nonnegative",
    "unit_interval",
    "flag",
    "betas",
    "positive_int",
    "reject_unknown",
    "as_parameter_list",
]

Check = Callable[[Any, str, str], Any]


def real(value: Any, name: str, owner: str) -> float:
    """``value`` as a finite Python float (bools are refused: ``lr=True`` is a typo)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputTypeError(f"{owner}: {name} must be a real number, got {describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"{owner}: {name} must be finite, got {value}")
    return value


def nonnegative(value: Any, name: str, owner: str) -> float:
    """A finite float ``>= 0`` (learning rates, eps, weight decay, momentum)."""
    value = real(value, name, owner)
    if value < 0:
        raise InputError(f"{owner}: {name} must be >= 0, got {value}")
    return value


def unit_interval(value: Any, name: str, owner: str) -> float:
    """A float in [0, 1] (RMSProp's alpha, SGD's dampening)."""
    value = real(value, name, owner)
    if not 0.0 <= value <= 1.0:
        raise InputError(f"{owner}: {name} must be in [0, 1], got {value}")
    return value


def flag(value: Any, name: str, owner: str) -> bool:
    """A bool (``np.bool_`` accepted); ``0``/``1`` or strings are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputTypeError(f"{owner}: {name} must be True or False, got {describe(value)}")
    return bool(value)


def betas(value: Any, name: str, owner: str) -> tuple[float, float]:
    """Two floats, each in [0, 1): Adam's moment decay rates."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InputTypeError(
            f"{owner}: {name} must be a pair (beta1, beta2), got {describe(value)}"
        )
    pair = tuple(value)
    if len(pair) != 2:
        raise InputError(f"{owner}: {name} must be a pair (beta1, beta2), got {len(pair)} values")
    result = []
    for i, beta in enumerate(pair):
        beta = real(beta, f"{name}[{i}]", owner)
        if not 0.0 <= beta < 1.0:
            raise InputError(f"{owner}: {name}[{i}] must be in [0, 1), got {beta}")
        result.append(beta)
    return (result[0], result[1])


def positive_int(value: Any, name: str, owner: str) -> int:
    """An integer ``>= 1`` (step counts, periods)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{owner}: {name} must be an integer, got {describe(value)}")
    if value < 1:
        raise InputError(f"{owner}: {name} must be >= 1, got {value}")
    return int(value)


def reject_unknown(unknown: Iterable[str], known: Iterable[str], owner: str) -> None:
    """Raise :class:`InputTypeError` naming the first unknown option and the close matches."""
    unknown = list(unknown)
    if not unknown:
        return
    known = list(known)
    name = unknown[0]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InputTypeError(
        f"{owner}: unknown option {name!r}{hint} (the options are {', '.join(known)})"
    )


def as_parameter_list(params: Any, name: str, owner: str) -> list[Parameter]:
    """``params`` (a Parameter or an iterable of them) as a non-empty list of Parameters."""
    if isinstance(params, Parameter):
        return [params]
    if isinstance(params, Module):
        raise InputTypeError(
            f"{owner}: {name} must be an iterable of Parameter, got the module "
            f"{type(params).__name__}; pass model.parameters()"
        )
    if isinstance(params, (np.ndarray, str, bytes, dict)) or not isinstance(params, Iterable):
        hint = ""
        if isinstance(params, dict):
            hint = "; put a param group in a list: [{'params': ...}]"
        raise InputTypeError(
            f"{owner}: {name} must be an iterable of gradproof.nn.Parameter, "
            f"got {describe(params)}{hint}"
        )
    result = list(params)
    if not result:
        raise InputError(
            f"{owner}: {name} is empty; give at least one Parameter "
            "(a generator that was already consumed is empty too)"
        )
    for i, p in enumerate(result):
        if not isinstance(p, Parameter):
            hint = "; wrap arrays as gradproof.nn.Parameter(x)" if isinstance(p, np.ndarray) else ""
            raise InputTypeError(
                f"{owner}: {name}[{i}] must be a gradproof.nn.Parameter, got {describe(p)}{hint}"
            )
        if not (isinstance(p.data, np.ndarray) and np.issubdtype(p.data.dtype, np.floating)):
            raise InputTypeError(
                f"{owner}: {name}[{i}].data must be a float array, got {describe(p.data)}"
            )
    return result

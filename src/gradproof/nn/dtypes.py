"""The dtype policy of ``gradproof.nn``: what a module computes in, and the checks that hold it.

Policy: a module's dtype is the dtype of its parameters, float32 or float64,
chosen when it is built (``dtype=``) and changed only by :func:`to_dtype`, which
returns a converted copy. Inputs are never cast silently: a parameterised module
given ``x`` of another dtype raises :class:`~gradproof.errors.InputTypeError`
naming both dtypes and the fix (``x.astype(...)`` or ``to_dtype(model, ...)``),
as PyTorch does. A silent cast would copy every batch and hide float64 upcasts
that halve the training speed. Modules without parameters (activations,
dropout, flatten) keep the dtype of their input.
"""

from __future__ import annotations

import copy
import math
import os

import numpy as np

from .._validate import FLOAT_DTYPES
from ..errors import InputError, InputTypeError, describe
from .module import Module, Parameter
from .tree import named_modules

__all__ = [
    "FLOAT_DTYPES",
    "resolve_dtype",
    "as_generator",
    "check_memory",
    "check_float_input",
    "to_dtype",
]

def resolve_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``np.dtype(dtype)`` if it is float32 or float64, else an error naming ``name``."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise InputError(f"{name} must be np.float32 or np.float64, got {dtype!r}") from exc
    if resolved not in FLOAT_DTYPES:
        raise InputError(f"{name} must be np.float32 or np.float64, got {resolved}")
    return resolved


def check_memory(owner: str, shapes, dtype) -> None:
    """Raise :class:`InputError` naming ``owner`` (``"Linear(1000000, 1000000)"``) when
    parameters of these ``shapes`` and ``dtype``, with their gradients, would not fit in
    this machine's memory; NumPy would say "Unable to allocate 7.28 TiB" without naming
    the layer, or the process would be killed while the weights are drawn."""
    shapes = [tuple(s) for s in shapes]
    nbytes = 2 * sum(math.prod(s) for s in shapes) * np.dtype(dtype).itemsize  # data, grad
    memory = _physical_memory()
    if memory is not None and nbytes > memory:
        sizes = ", ".join(str(s) for s in shapes)
        raise InputError(
            f"{owner}: its parameters ({sizes}, {np.dtype(dtype)}) and their gradients need "
            f"{_human_bytes(nbytes)}, more than this machine's memory ({_human_bytes(memory)})")


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"  # pragma: no cover


def as_generator(rng, name: str = "rng") -> np.random.Generator:
    """A NumPy Generator from ``rng``: a Generator (used as is), an int seed, or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise InputTypeError(
        f"{name} must be a numpy.random.Generator, an int seed or None, got {describe(rng)}"
    )


def check_float_input(x, owner: object, dtype: np.dtype | None = None) -> None:
    """Raise unless ``x`` is a float ndarray (of ``dtype`` when given).

    ``owner`` (the module, or a string) names the module in the message, e.g.
    ``Linear(784, 256, dtype=float32)``; it is formatted only on error, so the
    check costs next to nothing on the hot path.
    """
    if not isinstance(x, np.ndarray):
        raise InputTypeError(
            f"{owner}: x must be a numpy array of float32 or float64, got {describe(x)}"
        )
    if x.dtype not in FLOAT_DTYPES:
        raise InputTypeError(f"{owner}: x must be float32 or float64, got {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise InputTypeError(
            f"{owner}: x must have the module's dtype {dtype}, got {x.dtype}; "
            f"cast the input with x.astype(np.{dtype}) or the model with "
            f"gradproof.nn.to_dtype(model, np.{x.dtype})"
        )


def to_dtype(module: Module, dtype) -> Module:
    """A deep copy of ``module`` whose parameters, gradients and float buffers have ``dtype``.

    The original is left untouched; the copy's gradients are zero. Used by
    :func:`gradproof.check_model` to check a float32 model in float64.
    """
    dtype = resolve_dtype(dtype)
    clone = copy.deepcopy(module)
    for _, mod in named_modules(clone):
        for value in vars(mod).values():
            if isinstance(value, Parameter):
                value.data = value.data.astype(dtype)
                value.grad = np.zeros_like(value.data)
        for name in getattr(mod, "_buffers", []):
            buf = getattr(mod, name)
            if isinstance(buf, np.ndarray) and buf.dtype in FLOAT_DTYPES:
                setattr(mod, name, buf.astype(dtype))
    return clone

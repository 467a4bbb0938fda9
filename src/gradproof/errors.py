"""Exceptions raised by gradproof.

Every error message names the argument, what was expected and what was got.
"""

from __future__ import annotations

__all__ = [
    "GradproofError",
    "InputError",
    "InputTypeError",
    "GradientError",
    "InconclusiveError",
    "CostWarning",
    "describe",
]


class GradproofError(Exception):
    """Base class of gradproof's own exceptions."""


class InputError(GradproofError, ValueError):
    """A value, shape or option given to gradproof is not valid."""


class InputTypeError(GradproofError, TypeError):
    """An argument has the wrong type."""


class GradientError(GradproofError, AssertionError):
    """A gradient check found evidence of a bug; the message is the report's table."""

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class InconclusiveError(GradientError):
    """A gradient check could not prove the gradient right (nor wrong).

    Raised by ``raise_if_failed`` when some input's derivative could not be
    measured well enough: every perturbed evaluation left the function's
    domain, the forward is too imprecise for the tolerance to mean anything,
    or a failing projection could not be confirmed. A subclass of
    :class:`GradientError`, so ``except GradientError`` catches both.
    """


class CostWarning(UserWarning):
    """A requested computation is expensive (e.g. ``mode="full"`` on a large input);
    the message says how expensive and what is cheaper."""


def describe(value) -> str:
    """A short description of ``value`` for error messages: shape and dtype for arrays."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"array of shape {tuple(shape)} and dtype {dtype}"
    return f"{type(value).__name__} {value!r}"[:120]

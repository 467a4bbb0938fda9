"""The argument checks every part of gradproof uses: one vocabulary, one wording.

Functional layers, modules, optimizers, the trainer and the checker validate
what they are given with these few functions. Each takes the argument's name
first and the value second, returns the value (normalised to a plain type where
that helps: ``int``, ``float``, ``bool``) and otherwise raises
:class:`~gradproof.errors.InputTypeError` (wrong type) or
:class:`~gradproof.errors.InputError` (wrong value) with a message that names
the argument, says what was expected and what came. ``owner`` (a class name
such as ``"Adam"``, a module, anything printable), when given, starts the
message: ``Adam: lr must be >= 0, got -1.0``; it is formatted only on error.

=============================  ==================================================
check                          accepts
=============================  ==================================================
:func:`float_array`            a float32/float64 ndarray, of a given rank
:func:`upstream`               an upstream gradient with the output's shape, dtype
:func:`positive_int`           an int >= 1 (:func:`int_at_least`: >= any bound)
:func:`real`                   a finite real number (bools refused)
:func:`non_negative`           a finite number >= 0 (:func:`positive`: > 0)
:func:`fraction`               a number in [0, 1] (or [0, 1))
:func:`optional_positive`      None or a number > 0
:func:`boolean`                True or False (NumPy's too)
:func:`choice`                 one of a few values
:func:`check_options`          a dict whose keys are all known ("did you mean")
=============================  ==================================================

and the array checks the layers share: :func:`check_shape`, :func:`check_finite`,
:func:`same_dtype`, :func:`expect_dim`, :func:`nonempty_time`,
:func:`index_array`, :func:`bool_mask`, :func:`cache_of`, :func:`affine_cache`.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable

import numpy as np

from .errors import InputError, InputTypeError, describe

__all__ = [
    "FLOAT_DTYPES",
    "float_array",
    "check_shape",
    "check_finite",
    "same_dtype",
    "expect_dim",
    "nonempty_time",
    "index_array",
    "bool_mask",
    "upstream",
    "cache_of",
    "affine_cache",
    "positive_int",
    "int_at_least",
    "real",
    "non_negative",
    "positive",
    "fraction",
    "optional_positive",
    "boolean",
    "choice",
    "check_options",
    "cast_like",
]

#: the dtypes gradproof computes in; float16 and longdouble are refused, not cast
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _who(name: str, owner: object) -> str:
    return f"{owner}: {name}" if owner is not None else name


# --- arrays ---------------------------------------------------------------------------
def float_array(name: str, value: object, layout: str | None = None) -> np.ndarray:
    """Return ``value`` if it is a float32 or float64 NumPy array, else raise.

    Raises :class:`InputTypeError` naming ``name``: the layers compute in
    float32 or float64 only. float16 (too coarse for a finite-difference
    check, and NumPy computes it in float32 anyway) and longdouble (no BLAS)
    are refused rather than cast: the message says ``.astype(np.float32)``.
    With ``layout`` (``"N C H W"`` or ``"(N, C, H, W)"``) the number of axes is
    checked too.
    """
    axes = None
    if layout is not None:
        axes = [a.strip() for a in layout.strip("()").replace(",", " ").split() if a.strip()]
        layout = "(" + ", ".join(axes) + ("," if len(axes) == 1 else "") + ")"
    expected = f"a float32 or float64 NumPy array{f' with shape {layout}' if layout else ''}"
    if isinstance(value, np.generic):  # e.g. b[0]: "array of shape ()" would confuse
        raise InputTypeError(
            f"{name} must be {expected}, got the NumPy scalar {value!r} (an element, not an "
            f"array: was {name} indexed by mistake?)"
        )
    if not (isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)):
        raise InputTypeError(
            f"{name} must be {expected}, got {describe(value)}; convert it with "
            f"np.asarray({name}, dtype=np.float64)"
        )
    if value.dtype not in FLOAT_DTYPES:
        raise InputTypeError(
            f"{name} must be {expected}, got dtype {value.dtype}: gradproof.nn computes in "
            f"float32 or float64 only; convert it with {name}.astype(np.float32) (or np.float64)"
        )
    if axes is not None and value.ndim != len(axes):
        raise InputError(
            f"{name} must have {len(axes)} dimensions {layout}, got shape {value.shape}"
        )
    return value


def check_shape(name: str, value: np.ndarray, expected: tuple[int, ...], meaning: str) -> None:
    """Raise :class:`InputError` unless ``value.shape == expected``.

    ``meaning`` spells the expected shape symbolically, e.g. ``"(M,)"``.
    """
    if value.shape != tuple(expected):
        raise InputError(f"{name} must have shape {meaning} = {tuple(expected)}, got {value.shape}")


def check_finite(name: str, value: np.ndarray, hint: str = "") -> None:
    """Raise :class:`InputError` if ``value`` holds a NaN or an infinity (says where)."""
    if np.isfinite(value).all():
        return
    bad = ~np.isfinite(value)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(value[index]) else "an infinity"
        raise InputError(
            f"{name} contains {kind} at index {index} ({int(bad.sum())} non-finite "
            f"value(s) in all){'; ' + hint if hint else ''}"
        )


def same_dtype(reference: np.ndarray, **others: np.ndarray) -> None:
    """Raise unless every array in ``others`` has ``reference``'s (x's) dtype; names the culprit."""
    for name, value in others.items():
        if value.dtype != reference.dtype:
            raise InputTypeError(
                f"{name} must have the dtype of x ({reference.dtype}), got {value.dtype}; "
                f"cast it with {name}.astype(np.{reference.dtype})"
            )


def expect_dim(name: str, value: np.ndarray, axis: int, expected: int, why: str) -> None:
    """Raise unless ``value.shape[axis] == expected``; ``why`` says where ``expected`` comes from.

    Example message: ``Wh must have shape[0] == H == h0.shape[1] == 4, got shape (5, 16)``.
    """
    if value.shape[axis] != expected:
        raise InputError(
            f"{name} must have shape[{axis}] == {why} == {expected}, got shape {value.shape}"
        )


def nonempty_time(name: str, value: np.ndarray, axis: int = 1) -> None:
    """Raise for an empty time axis (T == 0) or an empty batch (N == 0)."""
    if value.shape[axis] == 0:
        raise InputError(
            f"{name} must have at least one time step (T >= 1 on axis {axis}), "
            f"got shape {value.shape}"
        )
    if value.shape[0] == 0:
        raise InputError(
            f"{name} must have at least one sequence (N >= 1), got shape {value.shape}"
        )


def index_array(name: str, value, upper: int, upper_name: str) -> np.ndarray:
    """``value`` as an integer array with every entry in ``[0, upper)``.

    Floats and booleans are refused even when they hold whole numbers: an index
    that arrives as a float usually means labels and data were swapped.
    """
    arr = np.asarray(value) if isinstance(value, (list, tuple)) else value
    if (
        not isinstance(arr, np.ndarray)
        or not np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == np.bool_
    ):
        raise InputTypeError(
            f"{name} must be an integer numpy array of indices, got {describe(value)}; "
            f"convert with {name}.astype(np.int64) if the values are whole numbers"
        )
    if arr.size:
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high >= upper:
            bad = low if low < 0 else high
            raise InputError(
                f"{name} must hold indices in [0, {upper_name}) = [0, {upper}), "
                f"got {bad} at position {tuple(int(i) for i in np.argwhere(arr == bad)[0])}"
            )
    return arr


def bool_mask(name: str, value, shape: tuple[int, ...], axes: str) -> np.ndarray:
    """``value`` as a boolean array of ``shape`` (0/1 integers are accepted as booleans)."""
    arr = np.asarray(value) if isinstance(value, (list, tuple)) else value
    if not isinstance(arr, np.ndarray) or not (
        arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer)
    ):
        raise InputTypeError(
            f"{name} must be a boolean numpy array of shape ({axes}) = {shape}, "
            f"got {describe(value)}"
        )
    if arr.shape != shape:
        raise InputError(f"{name} must have shape ({axes}) = {shape}, got {arr.shape}")
    if arr.dtype != np.bool_:
        if np.any((arr != 0) & (arr != 1)):
            raise InputError(f"{name} must hold booleans or 0/1, got values {np.unique(arr)}")
        arr = arr.astype(bool)
    return arr


# --- what a backward is given -----------------------------------------------------------
def upstream(
    dout: object, shape: tuple[int, ...], dtype: np.dtype, layer: object, name: str = "dout"
) -> np.ndarray:
    """Check an upstream gradient against the forward's output: its ``shape`` and ``dtype``.

    Every backward (functional and module) calls this first. A ``dout`` that
    merely broadcasts to the output ((M,) or (1, M) for (N, M)), one with fewer
    time steps, or a transposed one of the same size would otherwise give
    plausible, wrong gradients. The dtype must match too: gradients are never
    cast silently (see :mod:`gradproof.nn.dtypes`). ``layer`` names the forward
    (a string, or a module, formatted only on error); ``name`` is the argument
    (``dnext_c`` for an LSTM step's second output). Shape and dtype comparisons
    only: no copy, O(1).

    Raises :class:`InputTypeError` for a non-float array or a different float
    dtype, :class:`InputError` for a different shape.
    """
    if not (isinstance(dout, np.ndarray) and dout.dtype.kind == "f"):
        raise InputTypeError(
            f"{name} must be a float NumPy array with the shape {tuple(shape)} and dtype "
            f"{np.dtype(dtype)} of {layer}'s output, got {describe(dout)}"
        )
    if dout.shape != tuple(shape):
        raise InputError(
            f"{name} must have the shape of {layer}'s output {tuple(shape)}, got {dout.shape}"
            f"{_shape_hint(dout.shape, tuple(shape), name)}"
        )
    if dout.dtype != dtype:
        raise InputTypeError(
            f"{name} must have the dtype of {layer}'s output {np.dtype(dtype)}, got "
            f"{dout.dtype}; cast it with {name}.astype(np.{np.dtype(dtype)})"
        )
    return dout


def _shape_hint(got: tuple[int, ...], expected: tuple[int, ...], name: str) -> str:
    """Why a wrong upstream shape matters, for the cases that would silently compute."""
    if math.prod(got) == math.prod(expected):
        return "; it has as many elements as the output: is it transposed or reshaped?"
    try:
        broadcasts = np.broadcast_shapes(got, expected) == expected
    except ValueError:
        broadcasts = False
    if broadcasts:
        return (
            "; it only broadcasts to the output: pass one value per output element "
            f"(np.broadcast_to({name}, {expected}) if a constant gradient is meant)"
        )
    return "; pass the gradient of the loss with respect to this output"


def cache_of(cache: object, kind: type, backward: str | None, forward: str):
    """Return ``cache`` if it is a ``kind``, else explain which forward makes it."""
    if not isinstance(cache, kind):
        hint = f"; pass {backward}() the second value {forward}() returned" if backward else ""
        raise InputTypeError(
            f"cache must be the cache returned by {forward}() (a {kind.__name__}), "
            f"got {describe(cache)}{hint}"
        )
    return cache


def affine_cache(cache: object, forward: str, x_ndim: int | None = None) -> tuple:
    """``cache`` if it is the ``(x, w, b)`` tuple of an affine map ``x @ w + b`` whose
    ``x`` has ``x_ndim`` axes (any >= 2 when None) and is flattened onto ``w``'s rows;
    else an error naming ``forward``. Such tuples look alike (affine, temporal affine,
    an embedding's cache), so their contents are checked, not just their length."""
    ok = (isinstance(cache, tuple) and len(cache) == 3
          and all(isinstance(a, np.ndarray) for a in cache))
    if ok:
        x, w, b = cache
        rows = x.shape[-1] if x_ndim is not None else math.prod(x.shape[1:])
        ok = (w.ndim == 2 and b.shape == (w.shape[1],) and x.ndim >= 2 and rows == w.shape[0]
              and (x_ndim is None or x.ndim == x_ndim))
    if not ok:
        got = (f"a tuple of {len(cache)}: {'; '.join(describe(a) for a in cache)}"
               if isinstance(cache, tuple) else describe(cache))
        raise InputTypeError(
            f"cache must be the (x, w, b) tuple returned by {forward}(), got {got[:300]}")
    return cache


# --- numbers and options -----------------------------------------------------------------
def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def int_at_least(name: str, value: object, minimum: int, *, owner: object = None) -> int:
    """``int(value)`` if it is an int ``>= minimum`` (bools and floats refused)."""
    if not _is_int(value):
        raise InputTypeError(
            f"{_who(name, owner)} must be an int >= {minimum}, got {describe(value)}")
    if value < minimum:
        raise InputError(f"{_who(name, owner)} must be an int >= {minimum}, got {value}")
    return int(value)


def positive_int(name: str, value: object, *, owner: object = None) -> int:
    """``int(value)`` if it is an int >= 1 (sizes, counts, step numbers)."""
    if not _is_int(value):
        raise InputTypeError(f"{_who(name, owner)} must be a positive int, got {describe(value)}")
    if value < 1:
        raise InputError(f"{_who(name, owner)} must be a positive int, got {value!r}")
    return int(value)


def real(name: str, value: object, *, owner: object = None) -> float:
    """``value`` as a finite Python float (bools are refused: ``lr=True`` is a typo).

    A Python float never upcasts a float32 array (NumPy treats it as "weak")
    and is JSON-serialisable, so hyper-parameters are stored this way.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputTypeError(f"{_who(name, owner)} must be a real number, got {describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"{_who(name, owner)} must be finite, got {value}")
    return value


def non_negative(name: str, value: object, *, owner: object = None) -> float:
    """A finite float ``>= 0`` (learning rates, eps, weight decay, momentum)."""
    value = real(name, value, owner=owner)
    if value < 0:
        raise InputError(f"{_who(name, owner)} must be >= 0, got {value}")
    return value


def positive(name: str, value: object, *, owner: object = None) -> float:
    """A finite float ``> 0`` (a scale, a learning rate that must move)."""
    value = real(name, value, owner=owner)
    if not value > 0:
        raise InputError(f"{_who(name, owner)} must be a positive number, got {value}")
    return value


def fraction(name: str, value: object, *, below_one: bool = False, owner: object = None) -> float:
    """A float in [0, 1] (a momentum, a decay), or in [0, 1) with ``below_one`` (a
    dropout rate, Adam's betas)."""
    value = real(name, value, owner=owner)
    if not (0.0 <= value < 1.0 if below_one else 0.0 <= value <= 1.0):
        raise InputError(f"{_who(name, owner)} must be a number in [0, 1{')' if below_one else ']'}"
                         f", got {value}")
    return value


def optional_positive(name: str, value: object, kind: type = int, *, owner: object = None):
    """None, or ``kind(value)`` for a number > 0 (a whole one when ``kind`` is int)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputTypeError(
            f"{_who(name, owner)} must be None or a positive number, got {describe(value)}")
    if not value > 0 or (kind is int and int(value) != value):
        raise InputError(
            f"{_who(name, owner)} must be None or a positive {kind.__name__}, got {value!r}")
    return kind(value)


def boolean(name: str, value: object, *, owner: object = None) -> bool:
    """``value`` if it is a bool (NumPy's included); ``0``/``1`` and strings are refused:
    ``bias='no'`` is truthy and would mean the opposite of what it says."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InputTypeError(f"{_who(name, owner)} must be True or False, got {describe(value)}")


def choice(name: str, value: object, choices: Iterable, *, owner: object = None):
    """``value`` if it is one of ``choices``, else :class:`InputError` listing them."""
    choices = tuple(choices)
    if not any(type(value) is type(c) and value == c for c in choices):
        listed = (" or ".join(repr(c) for c in choices) if len(choices) <= 2
                  else "one of " + ", ".join(repr(c) for c in choices))
        raise InputError(f"{_who(name, owner)} must be {listed}, got {value!r}")
    return value


def check_options(name: str, given: Iterable, allowed: Iterable, *, kind: str = "key",
            error: type[Exception] = InputError) -> None:
    """Raise ``error`` for an entry of ``given`` (a dict's keys, keyword names) that is not
    in ``allowed``, with the closest allowed one as a "did you mean" hint: a typo such as
    ``'momuntum'`` would otherwise leave the default in force without a word. ``kind``
    says what the entries are (``"key"``, ``"option"``)."""
    allowed = list(allowed)
    unknown = [k for k in given if k not in allowed]
    if not unknown:
        return
    key = unknown[0]
    close = difflib.get_close_matches(str(key), [str(k) for k in allowed], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise error(f"{name} has an unknown {kind} {key!r}{hint} (its {kind}s are "
                f"{', '.join(repr(k) for k in allowed)})")


def cast_like(grad: np.ndarray | None, like: np.ndarray) -> np.ndarray | None:
    """``grad`` in the dtype of the input it belongs to: gradients keep their input's dtype
    (the policy this module's checks enforce on the way in, applied on the way out)."""
    if grad is None or grad.dtype == like.dtype:
        return grad
    return grad.astype(like.dtype)

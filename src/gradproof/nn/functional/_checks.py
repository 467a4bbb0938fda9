"""Input checks shared by the functional layers.

Every layer validates what it is given and raises an error that names the
argument, says what was expected and what was got (see ``docs/architecture.md``).
"""

from __future__ import annotations

import difflib
import math

import numpy as np

from ...errors import InputError, InputTypeError, describe

__all__ = ["float_array", "check_shape", "check_finite", "upstream", "cache_of", "affine_cache",
           "LAYER_DTYPES", "check_options", "check_bool"]

# the dtypes gradproof.nn computes in; float16 and longdouble are refused, not cast
LAYER_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_array(name: str, value: object, layout: str | None = None) -> np.ndarray:
    """Return ``value`` if it is a float32 or float64 NumPy array, else raise.

    Raises :class:`InputTypeError` naming ``name``: the layers compute in
    float32 or float64 only. float16 (too coarse for a finite-difference
    check, and NumPy computes it in float32 anyway) and longdouble (no BLAS)
    are refused rather than cast: the message says ``.astype(np.float32)``.
    With ``layout`` (e.g. ``"(N, C, H, W)"``), the number of axes is checked too.
    """
    shape = f" with shape {layout}" if layout else ""
    if isinstance(value, np.generic):  # e.g. b[0]: "array of shape ()" would confuse
        raise InputTypeError(
            f"{name} must be a float32 or float64 NumPy array{shape}, got the NumPy scalar "
            f"{value!r} (an element, not an array: was {name} indexed by mistake?)"
        )
    if not (isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)):
        raise InputTypeError(
            f"{name} must be a float32 or float64 NumPy array{shape}, got "
            f"{describe(value)}; convert it with np.asarray({name}, dtype=np.float64)"
        )
    if value.dtype not in LAYER_DTYPES:
        raise InputTypeError(
            f"{name} must be a float32 or float64 NumPy array{shape}, got dtype "
            f"{value.dtype}: gradproof.nn computes in float32 or float64 only; convert it "
            f"with {name}.astype(np.float32) (or np.float64)"
        )
    if layout is not None:
        ndim = len([a for a in layout.strip("()").split(",") if a.strip()])
        if value.ndim != ndim:
            raise InputError(
                f"{name} must have {ndim} dimensions {layout}, got shape {value.shape}"
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
    bad = ~np.isfinite(value)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(value[index]) else "an infinity"
        raise InputError(
            f"{name} contains {kind} at index {index} ({int(bad.sum())} non-finite "
            f"value(s) in all){'; ' + hint if hint else ''}"
        )


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


def cache_of(cache: object, kind: type, backward: str | None, forward: str):
    """Return ``cache`` if it is a ``kind``, else explain which forward makes it."""
    if not isinstance(cache, kind):
        hint = f"; pass {backward}() the second value {forward}() returned" if backward else ""
        raise InputTypeError(
            f"cache must be the cache returned by {forward}() (a {kind.__name__}), "
            f"got {describe(cache)}{hint}"
        )
    return cache


def check_options(name: str, options: dict, allowed) -> None:
    """Raise :class:`InputError` for a key of ``options`` not in ``allowed``, with the
    closest allowed key as a "did you mean" hint (a typo such as ``'momuntum'``
    would otherwise leave the default in force without a word)."""
    unknown = [k for k in options if k not in allowed]
    if not unknown:
        return
    key = unknown[0]
    close = difflib.get_close_matches(str(key), [str(k) for k in allowed], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InputError(
        f"{name} has an unknown key {key!r}{hint} (its keys are "
        f"{', '.join(repr(k) for k in sorted(allowed))})"
    )


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a bool (NumPy's included), else :class:`InputTypeError`: a
    string such as ``'no'`` is truthy and would mean the opposite of what it says."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InputTypeError(f"{name} must be True or False, got {describe(value)}")

"""Findings in words a student can act on.

A finding is a ``{"kind": str, "message": str}`` dict (JSON as it is). The
helpers here speak a shape in the case's letters ("(1, C, 1, 1)"), name a
constant factor ("N = 8 times too large"), point at the student's line of an
exception, and rewrite the checker's "input 1 (w)" as "dw".
"""

from __future__ import annotations

import linecache
import os
import re
import traceback
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["finding", "NOTE_KINDS", "spoken_shape", "name_factor", "locate", "where_text",
           "describe_exception", "speak_checker", "summarize_values"]

# kinds that never change a status (said for information)
NOTE_KINDS = frozenset({"note", "convention", "dtype", "kinks"})


def finding(kind: str, message: str) -> dict[str, str]:
    return {"kind": kind, "message": message}


# --------------------------------------------------------------------------------------
def spoken_shape(shape: Sequence[int], dims: dict[str, int]) -> str:
    """``(1, 3, 1, 1)`` as ``(1, C, 1, 1)`` when each size names exactly one dimension."""
    shape = tuple(int(s) for s in shape)
    by_size: dict[int, list[str]] = {}
    for letter, size in dims.items():
        by_size.setdefault(int(size), []).append(letter)
    words = []
    lettered = False
    for s in shape:
        names = by_size.get(s, [])
        if s > 1 and len(names) == 1:
            words.append(names[0])
            lettered = True
        else:
            words.append(str(s))
    plain = str(shape)
    if not lettered:
        return plain
    spoken = "(" + ", ".join(words) + ("," if len(words) == 1 else "") + ")"
    return f"{spoken} = {plain}"


def name_factor(ratio: float, dims: dict[str, int]) -> str:
    """A constant ratio yours / expected in words: "N = 8 times too large (1/N missing?)"."""
    if abs(ratio + 1) <= 1e-3:
        return "the sign is flipped (yours = -1 x expected)"
    sizes = [(f"{k} = {v}", float(v)) for k, v in dims.items() if v > 2]
    sizes.append(("2", 2.0))
    for label, v in sizes:
        if abs(ratio - v) <= 1e-3 * v:
            return f"{label} times too large (a missing 1/{label.split(' ')[0]}?)"
        if abs(ratio - 1 / v) <= 1e-3 / v:
            return f"{label} times too small (a factor {label.split(' ')[0]} too many?)"
        if abs(ratio + v) <= 1e-3 * v or abs(ratio + 1 / v) <= 1e-3 / v:
            return f"-{ratio:.4g} x expected: the sign is flipped and off by {label}"
    return f"{ratio:.6g} x expected at every value (a constant factor)"


# --------------------------------------------------------------------------------------
def locate(exc: BaseException, files: Iterable[str]) -> tuple[str, int, str, str] | None:
    """The last frame of ``exc``'s traceback in one of ``files``: (file, line, function, code).

    An exception raised in the student's process (:mod:`.remote`) carries the place
    found there as ``_gradproof_where``.
    """
    remote = getattr(exc, "_gradproof_where", None)
    if remote is not None:
        return remote
    wanted = {os.path.realpath(f) for f in files}
    last = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        fname = frame.f_code.co_filename
        if os.path.realpath(fname) in wanted:
            last = (fname, lineno, frame.f_code.co_name)
    if isinstance(exc, SyntaxError) and exc.filename and \
            os.path.realpath(exc.filename) in wanted:
        return (exc.filename, exc.lineno or 0, "<module>", (exc.text or "").strip())
    if last is None:
        return None
    code = linecache.getline(last[0], last[1]).strip()
    if "  #" in code:  # the student's comment is not part of the line's meaning
        code = code.split("  #")[0].rstrip()
    return (*last, code)


def where_text(place: tuple[str, int, str, str] | None) -> str:
    """``layers.py line 12, in relu_backward: `dx[x <= 0] = 0```."""
    if place is None:
        return ""
    fname, line, func, code = place
    where = f"{os.path.basename(fname)} line {line}"
    if func and func != "<module>":
        where += f", in {func}"
    return f"{where}: `{code}`" if code else where


def describe_exception(exc: BaseException, files: Iterable[str]) -> str:
    """``raised IndexError: ... (layers.py line 40, in conv_forward_naive: `...`)``."""
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    name = getattr(exc, "_gradproof_type", None) or type(exc).__name__
    head = f"raised {name}: {text}" if text else f"raised {name}"
    place = where_text(locate(exc, files))
    head = f"{head} ({place})" if place else head
    for clue, advice in _NUMPY_CHANGES:
        if clue in str(exc):
            return f"{head}; {advice}"
    return head


# messages of code that ran under an older NumPy: what changed
_NUMPY_CHANGES = (
    ("only 0-dimensional arrays can be converted", "NumPy 2 no longer turns a one-element "
     "array into a number: use a.item() or a[0]"),
    ("only length-1 arrays can be converted", "use a.item() or a[0] to get the number"),
    ("cannot be interpreted as an integer", "in Python 3 / between integers gives a float: "
     "use // for sizes and indices"),
)


# --------------------------------------------------------------------------------------
_INPUT = re.compile(r"\b(?:gradient for )?input (\d+)(?: \((\w+)\))?")


def speak_checker(message: str, grad_names: Sequence[str], arg_names: Sequence[str]) -> str:
    """Rewrite the checker's "input 1 (w)" as the student's "dw" (and "input 0" as "x")."""

    def repl(m: re.Match) -> str:
        i = int(m.group(1))
        whole = m.group(0)
        if whole.startswith("gradient for") or m.end() < len(message) and \
                message[m.end():m.end() + 1] == ":":
            return grad_names[i] if i < len(grad_names) else whole
        return arg_names[i] if i < len(arg_names) else whole

    return _INPUT.sub(repl, message)


def summarize_values(yours: np.ndarray, expected: np.ndarray, label: str,
                     dims: dict[str, int]) -> tuple[str, float]:
    """How ``yours`` differs from ``expected`` (same shape): a sentence and the error.

    The error is ``max |yours - expected| / max |expected|`` (relative to the
    array's scale, so that values near zero do not dominate).
    """
    a = np.asarray(yours, dtype=np.float64)
    r = np.asarray(expected, dtype=np.float64)
    scale = float(np.max(np.abs(r))) if r.size else 0.0
    diff = np.abs(a - r)
    err = float(np.max(diff)) / scale if scale > 0 else float(np.max(diff, initial=0.0))
    if r.ndim == 0:
        return (f"{label} is {float(a):.6g}, expected {float(r):.6g} "
                f"({_ratio_words(float(a), float(r), dims)})"), err
    k = np.unravel_index(int(np.argmax(diff)), r.shape)
    coord = tuple(int(c) for c in k)
    bad = int(np.count_nonzero(diff > 1e-6 * max(scale, 1e-300)))
    text = (f"{label} differs from the expected values at {bad} of {r.size} entries; "
            f"largest at {coord}: yours {a[k]:.6g} vs expected {r[k]:.6g}")
    pattern = _pattern(a, r, dims)
    return (f"{text}; {pattern}" if pattern else text), err


def _ratio_words(a: float, r: float, dims: dict[str, int]) -> str:
    if r == 0:
        return "difference " + f"{a - r:.3g}"
    return name_factor(a / r, dims) if abs(a / r - 1) > 1e-3 else \
        f"relative difference {abs(a - r) / abs(r):.2g}"


def _pattern(a: np.ndarray, r: np.ndarray, dims: dict[str, int]) -> str:
    """A constant factor, zeros, or a transposed matrix: what the difference looks like."""
    if not np.any(a) and np.any(r):
        return "yours is all zeros"
    nz = np.abs(r) > 1e-8 * np.max(np.abs(r))
    if nz.sum() >= 2:
        ratios = a[nz] / r[nz]
        med = float(np.median(ratios))
        if np.all(np.abs(ratios - med) <= 1e-4 * abs(med) + 1e-12) and abs(med - 1) > 1e-3 \
                and np.allclose(a[~nz], 0, atol=1e-8 * np.max(np.abs(r))):
            return name_factor(med, dims)
    if a.ndim == 2 and a.shape[0] == a.shape[1] and np.allclose(a, r.T, rtol=1e-6, atol=0):
        return "yours is the transpose of the expected matrix"
    zero_rows = [i for i in range(r.shape[0]) if not np.any(a[i]) and np.any(r[i])] \
        if r.ndim >= 2 else []
    if zero_rows and len(zero_rows) < r.shape[0]:
        return f"entries along axis 0 at {zero_rows[:5]} are all zero"
    return ""


def as_text(value: Any) -> str:
    """A short description of a returned value (for "returned ..." messages)."""
    if type(value).__name__ == "Opaque" and hasattr(value, "text"):  # in the student's process
        return value.text
    shape = getattr(value, "shape", None)
    if shape is not None and getattr(value, "dtype", None) is not None:
        return f"an array of shape {tuple(shape)}"
    if value is None:
        return "None"
    if isinstance(value, (tuple, list)):
        if all(v is None for v in value):
            return "(" + ", ".join("None" for _ in value) + ")"
        return f"a {type(value).__name__} of {len(value)} values"
    return f"{type(value).__name__} {value!r}"[:80]

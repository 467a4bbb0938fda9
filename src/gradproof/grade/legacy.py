"""Submissions written for older Pythons and NumPys, run as they were meant to.

* ``past.builtins`` (the ``future`` package; the 2017-2019 templates import
  ``xrange`` from it): a stand-in when it is not installed.
* NumPy's aliases ``np.float``, ``np.int``, ``np.bool``... (removed in 1.24).
* Python 2 ``print`` statements (the 2016 templates have one in
  ``temporal_softmax_loss``): rewritten as calls when a file does not parse
  otherwise, and said. Nothing else of Python 2 is translated: ``/`` between
  integers is a float in Python 3, and the error message says so.
"""

from __future__ import annotations

import io
import sys
import tokenize
import types

import numpy as np

__all__ = ["install_shims", "python2_prints"]


def install_shims() -> None:
    """``past.builtins`` and NumPy's removed aliases, where missing."""
    try:
        import past.builtins  # noqa: F401
    except ImportError:
        past = types.ModuleType("past")
        builtins = types.ModuleType("past.builtins")
        builtins.xrange = range
        builtins.basestring = str
        builtins.unicode = str
        builtins.long = int
        past.builtins = builtins
        sys.modules.setdefault("past", past)
        sys.modules.setdefault("past.builtins", builtins)
    for name, value in (("float", float), ("int", int), ("bool", bool), ("object", object),
                        ("complex", complex), ("str", str)):
        if name not in vars(np):
            setattr(np, name, value)


_STATEMENT_START = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
                    tokenize.ENCODING}


def python2_prints(source: str) -> str | None:
    """``source`` with Python 2 ``print x, y`` statements written ``print(x, y)``, or None
    when there is none (or the text cannot be tokenized)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, int, int]] = []  # (row, col of print's end, end row, end col)
    previous = None
    for k, tok in enumerate(tokens):
        starts = previous is None or previous.type in _STATEMENT_START or (
            previous.type == tokenize.OP and previous.string in (":", ";"))
        if tok.type == tokenize.NAME and tok.string == "print" and starts:
            nxt = tokens[k + 1] if k + 1 < len(tokens) else None
            if nxt is not None and not (nxt.type == tokenize.OP and nxt.string in "(=.[") \
                    and nxt.type not in (tokenize.NEWLINE, tokenize.NL):
                end = k + 1
                while end < len(tokens) and not (
                        tokens[end].type in (tokenize.NEWLINE, tokenize.COMMENT)
                        or tokens[end].type == tokenize.OP and tokens[end].string == ";"):
                    end += 1
                last = tokens[end - 1]
                edits.append((tok.end[0], tok.end[1], last.end[0], last.end[1]))
        if tok.type not in (tokenize.COMMENT, tokenize.NL):
            previous = tok
    if not edits:
        return None
    for row, col, end_row, end_col in reversed(edits):
        line = lines[end_row - 1]
        lines[end_row - 1] = line[:end_col] + ")" + line[end_col:]
        line = lines[row - 1]
        lines[row - 1] = line[:col] + "(" + line[col:].lstrip(" ")
    return "".join(lines)

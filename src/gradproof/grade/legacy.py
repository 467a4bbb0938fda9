"""Submissions written for older Pythons and NumPys, run as they were meant to.

* ``past.builtins`` (the ``future`` package; the 2017-2019 templates import
  ``xrange`` from it): a stand-in when it is not installed.
* NumPy's aliases ``np.float``, ``np.int``, ``np.bool``... (removed in 1.24).
* Python 2 code (the 2016 assignments): ``print`` statements (the templates
  have one in ``temporal_softmax_loss``) are run as calls, ``/`` between
  integers floors as it did (``1 + (H - HH) / stride`` is a size), ``xrange``
  is ``range``. A file is taken for Python 2 when it parses only with its
  prints rewritten, or calls ``xrange`` without importing it; a note says so.
* A module the file imports that is not there (``from cs231n.im2col import *``
  in a lone ``layers.py``): an empty stand-in, so that the other functions
  can still be graded (:class:`MissingModule`; a note says so).
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
import types
from typing import Any

import numpy as np

__all__ = ["install_shims", "python2_prints", "compile_student", "MissingModule",
           "py2_divide"]


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


# --------------------------------------------------------------------------------------
def py2_divide(a: Any, b: Any) -> Any:
    """Python 2's ``a / b``: floor division between integers (and integer arrays)."""
    ints = (int, np.integer)
    a_int = isinstance(a, ints) and not isinstance(a, bool) or \
        isinstance(a, np.ndarray) and a.dtype.kind in "iu"
    b_int = isinstance(b, ints) and not isinstance(b, bool) or \
        isinstance(b, np.ndarray) and b.dtype.kind in "iu"
    return a // b if a_int and b_int else a / b


class _Python2Division(ast.NodeTransformer):
    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.Div):
            return node
        call = ast.Call(func=ast.Name("__gradproof_py2_divide__", ast.Load()),
                        args=[node.left, node.right], keywords=[])
        return ast.copy_location(call, node)


_XRANGE_CALL = re.compile(r"\bxrange\s*\(")
_XRANGE_IMPORT = re.compile(r"import[^\n]*\bxrange\b")


def compile_student(source: str, filename: str) -> tuple[Any, dict[str, Any], list[str]]:
    """``(code, globals to add, notes)`` for a student's file; SyntaxError if it does
    not parse even as Python 2."""
    python2 = False
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as exc:
        converted = python2_prints(source)
        if converted is None:
            raise
        try:
            tree = ast.parse(converted, filename)
        except SyntaxError:
            raise exc from None
        python2 = True
    if not python2 and _XRANGE_CALL.search(source) and not _XRANGE_IMPORT.search(source):
        python2 = True
    if not python2:
        return compile(tree, filename, "exec"), {}, []
    tree = ast.fix_missing_locations(_Python2Division().visit(tree))
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return (compile(tree, filename, "exec"),
            {"xrange": range, "__gradproof_py2_divide__": py2_divide},
            [f"{name} is Python 2 code: run with its print statements as calls, / between "
             "integers flooring and xrange as range"])


class MissingModule(types.ModuleType):
    """A stand-in for a module the submission imports and the grader does not have:
    any function taken from it raises ImportError when called."""

    __path__: list[str] = []

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        module = self.__name__

        def missing(*args: Any, **kwargs: Any) -> Any:
            raise ImportError(f"{module}.{attr} is not available to the grader (the module "
                              f"{module} was not found next to the submission)")

        return missing

"""Calling a student's function: conventions, copies, read-only probes, unfinished templates.

Students' functions follow CS231n's conventions loosely: tuples or lists,
``(next_h, next_c, cache)``, ``(loss, dx)``, dict caches, one gradient or a
tuple. Everything here turns what came back into ``(outs, cache)`` and a tuple
of gradients, or raises :class:`Unusable` with a status and a finding.
"""

from __future__ import annotations

import ast
import copy
import inspect
import textwrap
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .findings import as_text, describe_exception, finding, locate, where_text
from .remote import freeze_opaque
from .specs import Spec
from .wire import Opaque

__all__ = ["Unusable", "copy_args", "readonly", "call_student", "parse_forward",
           "parse_grads", "looks_unfinished", "never_computed", "is_readonly_write", "freeze"]


class Unusable(Exception):
    """The student's function cannot be graded further; ``status`` and ``found`` say why."""

    def __init__(self, status: str, found: dict[str, str]):
        super().__init__(found["message"])
        self.status = status
        self.found = found


def copy_args(args: tuple) -> tuple:
    """Deep copies: the student may write into anything (batch norm's bn_param on purpose)."""
    return tuple(copy.deepcopy(a) for a in args)


def readonly(args: tuple) -> tuple:
    """Copies whose arrays cannot be written (dicts stay writable: bn_param is updated)."""
    out = []
    for a in copy_args(args):
        if isinstance(a, np.ndarray):
            a.flags.writeable = False
        out.append(a)
    return tuple(out)


def freeze(obj: Any, depth: int = 0) -> None:
    """Make every array inside a cache (tuples, lists, dicts, objects) read-only."""
    if depth > 4:
        return
    if isinstance(obj, np.ndarray):
        obj.flags.writeable = False
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            freeze(item, depth + 1)
    elif isinstance(obj, dict):
        for item in obj.values():
            freeze(item, depth + 1)
    elif isinstance(obj, Opaque):  # an object of the student's process: frozen there
        freeze_opaque(obj)
    elif hasattr(obj, "__dict__") and not callable(obj):
        for item in vars(obj).values():
            freeze(item, depth + 1)


def is_readonly_write(exc: BaseException) -> bool:
    return isinstance(exc, ValueError) and "read-only" in str(exc)


def call_student(fn: Callable, args: tuple, files: Iterable[str], what: str) -> Any:
    """``fn(*args)``; an exception becomes :class:`Unusable` (error or not-implemented)."""
    try:
        return fn(*args)
    except MemoryError as exc:
        place = where_text(locate(exc, files))
        raise Unusable("error", finding(
            "out-of-memory", f"{what} ran out of memory (the grader's memory limit)"
            + (f" at {place}" if place else ""))) from exc
    except NotImplementedError as exc:
        raise Unusable("not-implemented", finding(
            "not-implemented", f"{what} raises NotImplementedError: not implemented yet")
        ) from exc
    except RecursionError as exc:
        raise Unusable("error", finding("raised", f"{what} {describe_exception(exc, files)}")
                       ) from exc
    except BaseException as exc:  # noqa: BLE001 - SystemExit included: the student's code
        if isinstance(exc, KeyboardInterrupt):
            raise
        if _none_trouble(exc) and looks_unfinished(fn):
            raise Unusable("not-implemented", finding(
                "not-implemented", f"{what} is the untouched template: its TODO block is "
                f"`pass` and it {describe_exception(exc, files)}")) from exc
        kind = "exit" if isinstance(exc, SystemExit) else "raised"
        raise Unusable("error", finding(kind, f"{what} {describe_exception(exc, files)}")
                       ) from exc


def _none_trouble(exc: BaseException) -> bool:
    return isinstance(exc, (AttributeError, TypeError)) and "NoneType" in str(exc)


def source_of(fn: Callable) -> str:
    """The source of a student's function (sent by the student's process, or read here).

    Raises OSError when there is none.
    """
    if hasattr(fn, "__gradproof_source__"):
        source = fn.__gradproof_source__
        if not isinstance(source, str):
            raise OSError("no source for this function")
        return source
    return inspect.getsource(fn)


def looks_unfinished(fn: Callable) -> bool:
    """Whether ``fn``'s source still has a template's TODO block: a lone ``pass``.

    Only consulted when the function failed on a ``None`` (e.g. the dropout
    template's ``out = out.astype(...)`` with ``out = None``), so a finished
    function that kept a stray ``pass`` is not affected.
    """
    try:
        tree = ast.parse(textwrap.dedent(source_of(fn)))
    except (OSError, TypeError, SyntaxError, ValueError, RecursionError):
        return False
    return any(isinstance(node, ast.Pass) for node in ast.walk(tree))


_PLACEHOLDER_CALLS = {"zeros", "zeros_like", "empty", "empty_like"}
_WRITING_CALLS = {"at", "copyto", "put", "place", "putmask", "fill"}


def _base_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _placeholder(value: ast.AST) -> bool:
    if isinstance(value, ast.Constant):
        return value.value in (None, 0, 0.0)
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name in _PLACEHOLDER_CALLS
    return False


def _only_initialised(func: ast.AST, name: str) -> bool:
    """``name`` is only ever assigned a placeholder (None, 0, np.zeros...) and never written."""
    for node in ast.walk(func):
        if isinstance(node, ast.AugAssign) and _base_name(node.target) == name:
            return False
        if isinstance(node, (ast.For, ast.comprehension, ast.With)):
            targets = [node.target] if not isinstance(node, ast.With) else \
                [i.optional_vars for i in node.items if i.optional_vars is not None]
            if any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t)):
                return False
        if isinstance(node, ast.Call):
            func_name = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            if func_name in _WRITING_CALLS and node.args and _base_name(node.args[0]) == name:
                return False
            if isinstance(node.func, ast.Attribute) and _base_name(node.func.value) == name \
                    and func_name in _WRITING_CALLS:
                return False
            if any(k.arg == "out" and _base_name(k.value) == name for k in node.keywords):
                return False
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, (ast.Subscript, ast.Attribute)) and \
                        _base_name(target) == name:
                    return False
                if isinstance(target, ast.Name) and target.id == name and \
                        not _placeholder(node.value):
                    return False
                if isinstance(target, (ast.Tuple, ast.List)):
                    for k, element in enumerate(target.elts):
                        if _base_name(element) != name:
                            continue
                        if not isinstance(element, ast.Name):
                            return False
                        value = node.value
                        if not (isinstance(value, (ast.Tuple, ast.List))
                                and len(value.elts) == len(target.elts)
                                and _placeholder(value.elts[k])):
                            return False
    return True


def never_computed(fn: Callable, positions: list[int], n_returned: int) -> bool:
    """Whether the gradients at ``positions`` of what ``fn`` returns are variables that
    are only ever given the template's placeholder (``dx = None``, ``dw = np.zeros_like(w)``,
    ``dx = 0``): a half-finished backward, not a wrong one."""
    try:
        tree = ast.parse(textwrap.dedent(source_of(fn)))
    except (OSError, TypeError, SyntaxError, ValueError, RecursionError):
        return False
    func = next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef,
                                                               ast.AsyncFunctionDef))), None)
    if func is None:
        return False
    returns = [n for n in ast.walk(func) if isinstance(n, ast.Return) and n.value is not None]
    if len(returns) != 1:
        return False
    value = returns[0].value
    elements = value.elts if isinstance(value, (ast.Tuple, ast.List)) else [value]
    if len(elements) != n_returned:
        return False
    names = [elements[i].id if isinstance(elements[i], ast.Name) else None for i in positions]
    return None not in names and all(_only_initialised(func, n) for n in names)


def _is_none(value: Any) -> bool:
    return value is None or (isinstance(value, (tuple, list)) and len(value) > 0
                             and all(v is None for v in value))


def parse_forward(spec: Spec, result: Any, what: str) -> tuple[tuple, Any]:
    """``(outs, cache)`` from what the forward (or loss) returned.

    Layers: ``(out, cache)`` (``(next_h, next_c, cache)``); losses and
    classifiers: ``(loss, dx)``, where ``dx`` plays the cache's part.
    """
    n = 1 if spec.kind != "layer" else spec.n_outputs
    names = spec.out_names + (("dx",) if spec.kind == "loss" else
                              ("dW",) if spec.kind == "classifier" else ("cache",))
    if _is_none(result):
        raise Unusable("not-implemented", finding(
            "not-implemented", f"{what} returns {as_text(result)}: not implemented yet"))
    if not isinstance(result, (tuple, list)) or len(result) != n + 1:
        raise Unusable("wrong", finding(
            "structure", f"{what} returned {as_text(result)}; expected a tuple "
            f"({', '.join(names)})"))
    outs, cache = tuple(result[:n]), result[n]
    if all(o is None for o in outs):
        raise Unusable("not-implemented", finding(
            "not-implemented", f"{what} returns None for {', '.join(names[:n])}: not "
            "implemented yet"))
    for name, o in zip(names, outs):
        if o is None:
            raise Unusable("wrong", finding("structure", f"{what} returns None for {name}"))
        try:
            value = np.asarray(o)
        except Exception:  # noqa: BLE001 - an object NumPy cannot convert
            value = None
        if value is None or value.dtype.kind not in "fiub":
            raise Unusable("wrong", finding(
                "structure", f"{what} returns {as_text(o)} for {name}; expected numbers"))
    return outs, cache


def parse_grads(spec: Spec, raw: Any, what: str) -> tuple:
    """The gradients in the spec's order (``dx, dw, db``) from what the backward returned."""
    names = spec.grad_names
    k = len(names)
    if _is_none(raw):
        raise Unusable("not-implemented", finding(
            "not-implemented", f"{what} returns {as_text(raw)}: not implemented yet"))
    if isinstance(raw, np.ndarray) or not isinstance(raw, (tuple, list)):
        grads = (raw,)
    else:
        grads = tuple(raw)
        if len(grads) > k and sum(g is not None for g in grads) == k:
            grads = tuple(g for g in grads if g is not None)  # e.g. (None, dW)
    if len(grads) != k:
        raise Unusable("wrong", finding(
            "structure", f"{what} returned {as_text(raw)}; expected "
            + (f"({', '.join(names)})" if k > 1 else f"{names[0]} (one array)")))
    missing = [n for n, g in zip(names, grads) if g is None]
    if missing and len(missing) < k:
        raise Unusable("not-implemented", finding(
            "not-implemented", f"{what} returns None for {', '.join(missing)}: not "
            "implemented yet"))
    out = []
    for name, g in zip(names, grads):
        try:
            arr = np.asarray(g)
        except Exception:  # noqa: BLE001
            arr = None
        if arr is None or arr.dtype.kind not in "fiub":
            raise Unusable("wrong", finding(
                "structure", f"{what} returns {as_text(g)} for {name}; expected an array"))
        out.append(arr if isinstance(g, np.ndarray) else arr.astype(np.float64))
    return tuple(out)

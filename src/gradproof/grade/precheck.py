"""One call of a backward on read-only ``dout`` and cache, before the numerical checks.

A write into either raises inside the student's code (the traceback gives the
line). What comes back says not-implemented (``None``s, ``NotImplementedError``,
the template's zeros or placeholders) apart from wrong (a gradient of the wrong
shape, a gradient that is all zeros where it must not be).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .findings import describe_exception, finding, locate, spoken_shape, where_text
from .harness import Harness, random_douts
from .specs import Spec
from .student import (
    Unusable,
    call_student,
    copy_args,
    freeze,
    is_readonly_write,
    never_computed,
    parse_grads,
)

__all__ = ["precheck", "check_shapes", "check_zeros"]


def precheck(h: Harness, name: str, files: list[str], rng: np.random.Generator,
              found: list[dict]) -> tuple[tuple, tuple]:
    """One call of the backward on read-only ``dout`` and cache: ``(grads, douts)``."""
    spec = h.spec
    what = spec.forward if spec.kind != "layer" else name
    outs, cache = _student_forward(h, files)
    if spec.kind != "layer":
        return parse_grads(spec, cache, what), (1.0,)
    douts = random_douts(spec, outs, rng)
    frozen = tuple(d.copy() for d in douts)
    for d in frozen:
        d.flags.writeable = False
    freeze(cache)
    try:
        raw = h.bwd(*frozen, cache)
    except BaseException as exc:  # noqa: BLE001 - the plain call below reports it
        if isinstance(exc, KeyboardInterrupt):
            raise
        if is_readonly_write(exc):
            found.append(_inplace_finding(h, name, files, douts, exc))
        _, cache = _student_forward(h, files)
        raw = call_student(h.bwd, (*[d.copy() for d in douts], cache), files, name)
    return parse_grads(spec, raw, name), douts


def _student_forward(h: Harness, files: list[str]) -> tuple[tuple, Any]:
    try:
        return h.raw_forward(copy_args(h.args))
    except Unusable:
        raise
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise Unusable("error", finding(
            "raised", f"{h.spec.forward} {describe_exception(exc, files)} (the backward "
            "needs its cache)")) from exc


def _inplace_finding(h: Harness, name: str, files: list[str], douts: tuple,
                     exc: BaseException) -> dict:
    """Which one was written, dout or the cache, with the student's line."""
    place = where_text(locate(exc, files))
    where = f" ({place})" if place else ""
    _, cache = _student_forward(h, files)
    frozen = tuple(d.copy() for d in douts)
    for d in frozen:
        d.flags.writeable = False
    try:
        h.bwd(*frozen, cache)
    except BaseException as again:  # noqa: BLE001
        if is_readonly_write(again):
            return finding("inplace-dout", (
                f"{name} writes into dout{where}: the caller's upstream gradient is changed; "
                "copy it first (dx = dout.copy()) or compute into a new array "
                "(dx = dout * (x > 0))"))
    return finding("inplace-cache", (
        f"{name} writes into its cache{where}: a second backward call with the same cache "
        "gives a different result (and the cache may hold the caller's x); compute into a "
        "new array"))


def check_shapes(spec: Spec, grads: tuple, args: tuple, dims: dict, found: list[dict]) -> None:
    for gname, g, i in zip(spec.grad_names, grads, spec.wrt):
        expected = np.shape(args[i])
        if g.shape != expected:
            why = ""
            if g.size == np.size(args[i]):
                why = ": broadcasting hides this; sum over the extra axes without keepdims"
            elif 0 in g.shape:
                why = (": an empty slice (with pad = 0, a[pad:-pad] is a[0:0]; "
                       "a[pad:pad + H] works for every pad)")
            found.append(finding("shape", (
                f"{gname} has shape {spoken_shape(g.shape, dims)}, expected "
                f"{spoken_shape(expected, dims)} ({spec.args[i]}'s shape){why}")))


def check_zeros(spec: Spec, grads: tuple, ref_grads: tuple | None, name: str,
                fn: Callable | None, found: list[dict]) -> None:
    """All-zero gradients: the template's (not-implemented) or a wrong answer ("dw is all
    zeros"). A gradient left at its placeholder (``dx = np.zeros_like(x)`` never written,
    ``dx = 0``) while others are computed is a half-finished backward: not-implemented."""
    if ref_grads is None:
        return
    zero = [g.size > 0 and not np.any(g) for g in grads]
    needed = [bool(np.any(r)) for r in ref_grads]
    missing = [k for k, (z, need) in enumerate(zip(zero, needed)) if z and need]
    if not missing:
        return
    words = ", ".join(spec.grad_names[k] for k in missing)
    if len(missing) == len(grads) and spec.kind != "layer":
        raise Unusable("not-implemented", finding("not-implemented", (
            f"{name} returns {words} all zeros (the template's initial value?): its gradient "
            "is not implemented yet")))
    if len(missing) == len(grads):
        raise Unusable("not-implemented", finding(
            "not-implemented", f"{name} returns all zeros (the template's initial value?): "
            "not implemented yet"))
    if fn is not None and never_computed(fn, missing, len(grads)):
        raise Unusable("not-implemented", finding("not-implemented", (
            f"{name} never computes {words}: still the template's initial value (the other "
            "gradients are computed): not implemented yet")))
    for k in missing:
        found.append(finding("zeros", f"{spec.grad_names[k]} is all zeros"))

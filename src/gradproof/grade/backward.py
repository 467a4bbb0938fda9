"""Grading a backward (or a loss's gradient) with two witnesses.

1. **The checker** (:func:`gradproof.check_vjp`): the student's backward
   against numerical derivatives of the student's own forward — values,
   shapes, dtypes, writes into ``dout``/cache/inputs, repeatability, linearity,
   NaN. When the forward is not right, the numerical derivatives are taken of
   the *reference* forward instead, with the student's cache: the backward is
   graded against the true function whatever the forward's state.
2. **The reference gradient**, where the student's forward matches the
   reference to rounding (so both compute the same function): the backward's
   result at the same ``dout`` must match :mod:`gradproof.nn.functional`'s.
   Exact and cheap; it catches errors too thin for random projections.

Before both, one call on read-only ``dout`` and cache arrays (:mod:`.precheck`)
finds writes into them, with the student's line, and tells not-implemented
(None, NotImplementedError, the template's zeros) apart from wrong.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import check_vjp
from .findings import (
    NOTE_KINDS,
    finding,
    locate,
    speak_checker,
    summarize_values,
    where_text,
)
from .forward import ForwardResult, case_inputs
from .harness import Harness, random_douts
from .precheck import check_shapes, check_zeros, precheck
from .specs import Ref, Spec
from .student import (
    Unusable,
    copy_args,
    looks_unfinished,
    parse_grads,
)

__all__ = ["BackwardResult", "grade_backward", "combine", "TOL_GRAD"]

# the reference-gradient witness: relative error (to the gradient's largest value) beyond
# which a backward is wrong when its forward computes the reference's function to rounding
TOL_GRAD = {np.dtype(np.float64): 1e-7, np.dtype(np.float32): 1e-3}
_RANK = {"correct": 0, "inconclusive": 1, "wrong": 2, "error": 3, "not-implemented": 4}


@dataclass
class BackwardResult:
    status: str
    findings: list[dict] = field(default_factory=list)


def _reference_grads(spec: Spec, args: tuple, options: dict, douts: tuple) -> tuple | None:
    """The reference's gradients at ``douts`` (None when it cannot say: odd douts)."""
    try:
        ref: Ref = spec.reference(copy_args(args), **options)
        return ref.vjp(douts) if ref.vjp is not None else None
    except Exception:  # noqa: BLE001 - e.g. douts of a wrong-shaped student output
        return None


def _compare_reference(spec: Spec, grads: tuple, ref_grads: tuple, dims: dict,
                       dtype: np.dtype, checker_wrong: set[str], found: list[dict]) -> None:
    """The second witness: the reference's gradient at the same dout."""
    for gname, g, r in zip(spec.grad_names, grads, ref_grads):
        r = np.asarray(r)
        if g.size != r.size:
            continue
        g = g.reshape(r.shape)
        text, err = summarize_values(g, r, gname, dims)
        if err <= TOL_GRAD[dtype] or gname in checker_wrong:
            continue
        found.append(finding("reference", (
            f"{text} (against gradproof.nn.functional's gradient at the same dout; the "
            "forward matches the reference, so the backward must too)")))


def _hints(spec: Spec, args: tuple, grads: tuple, ref_grads: tuple, options: dict,
           dims: dict) -> list[dict]:
    """What a wrong gradient's difference from the reference looks like, in words."""
    out = []
    for gname, g, r in zip(spec.grad_names, grads, ref_grads):
        r = np.asarray(r)
        if g.size == r.size:
            hint = _small_error(spec, g.reshape(r.shape), r, gname)
            if hint:
                out.append(finding("hint", hint))
    if spec.gradient_hint is not None:
        try:
            hint = spec.gradient_hint(args, grads, ref_grads, options, dims)
        except Exception:  # noqa: BLE001 - a hint that does not apply
            hint = ""
        if hint:
            out.append(finding("hint", hint))
    return out


def _small_error(spec: Spec, g: np.ndarray, r: np.ndarray, gname: str) -> str:
    """Every coordinate off by a small relative amount of one sign: eps's signature."""
    g64, r64 = g.astype(np.float64), r.astype(np.float64)
    big = np.abs(r64) > 1e-3 * np.max(np.abs(r64))
    if big.sum() < 2:
        return ""
    rel = (g64[big] - r64[big]) / r64[big]
    med = float(np.median(np.abs(rel)))
    if not 0 < med < 1e-3:
        return ""
    same_sign = np.all(rel > 0) or np.all(rel < 0)
    spread = np.abs(rel)
    if not same_sign or np.mean((spread > med / 10) & (spread < med * 10)) < 0.9:
        return ""
    text = (f"every coordinate of {gname} is off by a small relative amount (median "
            f"{med:.1g}, from {spread.min():.1g} to {spread.max():.1g})")
    return f"{text}: {spec.small_error_hint}" if spec.small_error_hint else text


# the checker's finding kinds that prove a bug, and those that say it could not decide
PROOF_KINDS = frozenset({
    "mismatch", "shape", "nan", "structure", "missing", "zeros", "factor", "sign", "slice",
    "transpose", "ties", "nonlinear", "ignores-dout", "backward-not-repeatable",
    "mutated-input", "mutated-cache", "mutated-dout"})
UNDECIDED_KINDS = frozenset({"inconclusive", "nondeterministic", "domain", "precision"})
RAISED_KINDS = frozenset({"raised", "error", "exception"})


def _from_report(report: Any, h: Harness, files: list[str], found: list[dict]) -> tuple[str, set]:
    """The checker's verdict as a status, its findings in the student's words.

    A finding of a proof kind makes the gradient wrong; an undecided one (the forward
    is not deterministic, no measurement possible...) leaves it inconclusive; a kind
    this grader does not know counts as proof only when the checker's verdict is failed.
    """
    spec = h.spec
    arg_names = [spec.args[i] for i in spec.wrt]
    have = {f["kind"] for f in found}
    shaped = {f["message"].split(" ")[0] for f in found if f["kind"] == "shape"}
    verdict = getattr(report, "verdict", None) or ("ok" if report.ok else "failed")
    proved, undecided, raised = False, False, False
    wrong_grads: set[str] = set()
    for p in report.problems:
        kind = getattr(p, "kind", "note")
        i = getattr(p, "input", None)
        message = speak_checker(str(p), spec.grad_names, arg_names)
        if kind in RAISED_KINDS:
            raised = True
            place = where_text(locate(h.last_error, files)) if h.last_error else ""
            found.append(finding("raised", message + (f" ({place})" if place else "")))
            continue
        if kind == "mutated-dout" and "inplace-dout" in have or \
                kind == "mutated-cache" and "inplace-cache" in have or \
                kind == "shape" and i is not None and spec.grad_names[i] in shaped:
            continue
        if kind == "dtype":
            message += " (noted, not counted as a bug)"
        found.append(finding(kind, message))
        if kind in NOTE_KINDS:
            continue
        if kind in UNDECIDED_KINDS:
            undecided = True
            continue
        if kind in PROOF_KINDS or verdict == "failed":
            proved = True
            if i is not None and i < len(spec.grad_names):
                wrong_grads.add(spec.grad_names[i])
    if raised:
        return "error", wrong_grads
    if proved:
        return "wrong", wrong_grads
    unsure = [r.name or str(r.index) for r in report.inputs
              if r.checked and str(r.status).startswith("inconclusive")]
    if undecided or verdict == "inconclusive" or unsure:
        if not any(f["kind"] == "inconclusive" for f in found):
            found.append(finding("inconclusive", (
                "the numerical check could not prove the gradient of "
                f"{', '.join('d' + n for n in unsure) or 'the inputs'} right or wrong "
                "(a measurement exceeded its tolerance but no coordinate could be blamed)")))
        return "inconclusive", wrong_grads
    return "correct", wrong_grads


def _case_seed(spec: Spec, seed: int, index: int) -> int:
    return (seed * 1009 + zlib.crc32(spec.forward.encode()) + index) % (2 ** 31)


def _backward_variant(spec: Spec, forward: Callable, backward: Callable | None,
                      fwd: ForwardResult, seed: int):
    """Among the conventions the forward matches, the one whose gradient shapes the
    backward returns (a groupnorm written for gamma (C,) returns dgamma (C,))."""
    if spec.kind != "layer":
        return fwd.variant
    for variant in (fwd.variant, *fwd.others):
        args = case_inputs(spec, 0, variant, seed)
        try:
            result = forward(*copy_args(args))
            outs = result[:spec.n_outputs]
            douts = random_douts(spec, outs, np.random.default_rng(seed))
            grads = parse_grads(spec, backward(*douts, result[spec.n_outputs]), "backward")
        except BaseException as exc:  # noqa: BLE001 - the grading below reports it
            if isinstance(exc, KeyboardInterrupt):
                raise
            continue
        if all(g.shape == np.shape(args[i]) for g, i in zip(grads, spec.wrt)):
            return variant
    return fwd.variant


def _cache_available(spec: Spec, forward: Callable, fwd: ForwardResult, seed: int) -> bool:
    """Whether the forward returns ``(..., cache)`` on the first case, whatever its outputs."""
    args = case_inputs(spec, 0, fwd.variant, seed)
    if spec.seeded:
        np.random.seed(0)
    try:
        result = forward(*copy_args(args))
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        return False
    n = spec.n_outputs
    return isinstance(result, (tuple, list)) and len(result) == n + 1 and result[n] is not None


def _probe_without_cache(spec: Spec, bwd: Callable, name: str, fwd: ForwardResult,
                         seed: int) -> BackwardResult:
    """The forward gives no cache: the backward is either a stub or cannot be graded."""
    args = case_inputs(spec, 0, fwd.variant, seed)
    ref = spec.reference(copy_args(args), **fwd.variant.options)
    douts = random_douts(spec, ref.outs, np.random.default_rng(seed))
    try:
        raw = bwd(*douts, None)
        parse_grads(spec, raw, name)
    except Unusable as exc:
        if exc.status == "not-implemented":
            return BackwardResult("not-implemented", [exc.found])
    except NotImplementedError:
        return BackwardResult("not-implemented", [finding(
            "not-implemented", f"{name} raises NotImplementedError: not implemented yet")])
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, (TypeError, AttributeError)) and "NoneType" in str(exc) \
                and looks_unfinished(bwd):
            return BackwardResult("not-implemented", [finding(
                "not-implemented", f"{name} is the untouched template (its TODO block is "
                "`pass`); its forward gives no cache either")])
    blocker = next((f["message"] for f in fwd.findings if f["kind"] not in NOTE_KINDS), "")
    return BackwardResult("error", [finding("not-graded", (
        f"{name} could not be graded: {spec.forward} gives no usable cache"
        + (f" ({blocker})" if blocker else "")))])


def grade_backward(spec: Spec, forward: Callable, backward: Callable | None, name: str,
                   fwd: ForwardResult, files: Iterable[str], seed: int = 0,
                   max_evals: int = 200) -> BackwardResult:
    """Grade ``backward`` (``None`` for a loss: its ``dx``) on every case with ``backward``."""
    files = list(files)
    if spec.kind == "layer" and not _cache_available(spec, forward, fwd, seed):
        return _probe_without_cache(spec, backward, name, fwd, seed)
    hybrid = fwd.status != "correct" and spec.exact_reference
    found: list[dict] = []
    variant = _backward_variant(spec, forward, backward, fwd, seed) if fwd.others \
        else fwd.variant
    if variant is not fwd.variant:
        found.append(finding("convention", variant.note))
    if hybrid:
        found.append(finding("note", (
            f"{spec.forward} is {fwd.status}, so the gradient is checked against the "
            "reference forward (gradproof.nn.functional) with your cache")))
    status = "correct"
    for index, case in enumerate(spec.cases):
        if not case.backward:
            continue
        args = case_inputs(spec, index, variant, seed)
        dtype = np.dtype(np.float32) if all(
            np.asarray(args[i]).dtype == np.float32 for i in spec.wrt) else np.dtype(np.float64)
        h = Harness(spec, forward, backward, args, variant.options, hybrid)
        case_found: list[dict] = []
        rng = np.random.default_rng(_case_seed(spec, seed, index))
        try:
            grads, douts = precheck(h, name, files, rng, case_found)
            ref_grads = _reference_grads(spec, args, variant.options, douts)
            check_zeros(spec, grads, ref_grads, name if spec.kind == "layer" else spec.forward,
                   backward if spec.kind == "layer" else None, case_found)
            check_shapes(spec, grads, args, case.dims, case_found)
        except Unusable as exc:
            exc.found["message"] += f" [case: {case.label}]"
            found.append(exc.found)
            return BackwardResult(exc.status if exc.status != "wrong" else "wrong", found)
        report = check_vjp(h.forward, h.backward, *[args[i] for i in spec.wrt],
                           names=[spec.args[i] for i in spec.wrt],
                           seed=_case_seed(spec, seed, index), max_evals=max_evals)
        case_status, checker_wrong = _from_report(report, h, files, case_found)
        if spec.exact_reference and fwd.exact.get(index) and not hybrid and ref_grads:
            before = len(case_found)
            _compare_reference(spec, grads, ref_grads, case.dims, dtype, checker_wrong,
                               case_found)
            if any(f["kind"] == "reference" for f in case_found[before:]) and \
                    case_status in ("correct", "inconclusive"):
                case_status = "wrong"
        if any(f["kind"] in ("inplace-dout", "inplace-cache", "shape", "zeros")
               for f in case_found) and case_status in ("correct", "inconclusive"):
            case_status = "wrong"
        if case_status == "wrong" and ref_grads and spec.exact_reference:
            case_found += _hints(spec, args, grads, ref_grads, variant.options, case.dims)
        for f in case_found:
            if f["kind"] not in ("note", "dtype"):
                f["message"] += f" [case: {case.label}]"
            if not any(g["message"] == f["message"] for g in found):
                found.append(f)
        if _RANK[case_status] > _RANK[status]:
            status = case_status
        if status in ("wrong", "error"):
            break  # enough evidence; the other cases would cost time
    if status == "inconclusive":
        status = "error"
    if status == "wrong" and hybrid and _consistent_with_own_forward(
            spec, forward, backward, variant, seed, max_evals):
        found.append(finding("hint", (
            f"this backward does match the derivative of your own {spec.forward}: fixing "
            "the forward (see its findings) may be all that is needed")))
    return BackwardResult(status, found)


def _consistent_with_own_forward(spec: Spec, forward: Callable, backward: Callable | None,
                                 variant, seed: int, max_evals: int) -> bool:
    """Whether the backward is the derivative of the student's own (wrong) forward, on the
    first case: then the forward is what to fix."""
    args = case_inputs(spec, 0, variant, seed)
    h = Harness(spec, forward, backward, args, variant.options, hybrid=False)
    try:
        report = check_vjp(h.forward, h.backward, *[args[i] for i in spec.wrt],
                           names=[spec.args[i] for i in spec.wrt],
                           seed=_case_seed(spec, seed, 0), max_evals=max_evals)
    except Exception:  # noqa: BLE001 - the forward or backward does not even run: no
        return False
    verdict = getattr(report, "verdict", None) or ("ok" if report.ok else "failed")
    return verdict == "ok" and not any(
        getattr(p, "kind", "") not in NOTE_KINDS for p in report.problems)


def combine(*statuses: str) -> str:
    """One status from a loss's parts (value, gradient): the worst."""
    order = ("error", "timeout", "wrong", "not-implemented", "correct")
    return min(statuses, key=order.index)

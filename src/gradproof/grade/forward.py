"""Grading a forward (or a loss's value): the student's outputs against the reference.

Every case of the spec is run on read-only copies of the inputs (a write into
an input raises, and the traceback names the student's line), then compared
with :mod:`gradproof.nn.functional` within a tolerance from the dtype. Where
the assignment changed its convention over the years (a spec's variants), the
first convention that matches on the first case is used and said.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from .findings import finding, locate, spoken_shape, summarize_values, where_text
from .specs import Case, Ref, Spec, Variant
from .student import (
    Unusable,
    call_student,
    copy_args,
    is_readonly_write,
    parse_forward,
    readonly,
)

__all__ = ["ForwardResult", "grade_forward", "case_inputs", "TOL_WRONG", "TOL_EXACT"]

# relative error (to the output's largest value) beyond which a forward is wrong, and below
# which it computes the reference's formula (so that its gradients must match the reference's)
TOL_WRONG = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 1e-3}
TOL_EXACT = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


@dataclass
class ForwardResult:
    status: str
    findings: list[dict] = field(default_factory=list)
    variant: Variant = field(default_factory=Variant)
    others: list[Variant] = field(default_factory=list)  # conventions it also matches
    exact: dict[int, bool] = field(default_factory=dict)  # case index -> matches the reference


def case_inputs(spec: Spec, index: int, variant: Variant, seed: int) -> tuple:
    """The arguments of case ``index`` in ``variant``'s convention (seeded per spec and case)."""
    case = spec.cases[index]
    rng = np.random.default_rng([seed, zlib.crc32(spec.forward.encode()), index])
    args = case.build(rng, case.dims)
    return variant.adapt(args) if variant.adapt is not None else args


def _dtype(args: tuple) -> np.dtype:
    floats = [a.dtype for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    return np.dtype(np.float32) if floats and all(d == np.float32 for d in floats) \
        else np.dtype(np.float64)


def call_forward(spec: Spec, fn: Callable, args: tuple, files: Iterable[str], what: str,
                 found: list[dict]) -> tuple[tuple, object, tuple]:
    """Run the forward on read-only copies; a write into an input is a finding.

    Returns ``(outs, cache, args_after)``: ``args_after`` are the (copied)
    arguments after the call (bn_param with its running statistics).
    """
    if spec.seeded:
        np.random.seed(0)
    frozen = readonly(args)
    try:
        result = fn(*frozen)
    except BaseException as exc:  # noqa: BLE001 - the plain call below reports it
        if isinstance(exc, KeyboardInterrupt):
            raise
        if is_readonly_write(exc) and not any(f["kind"] == "inplace-input" for f in found):
            place = where_text(locate(exc, files))
            found.append(finding("inplace-input", (
                f"{what} writes into its input {_written_input(spec, fn, args)}"
                + (f" ({place})" if place else "")
                + ": the caller's array is changed; compute into a new array "
                  "(e.g. out = np.maximum(x, 0), not x[x < 0] = 0)")))
        return call_forward_plain(spec, fn, args, files, what)
    used = frozen
    outs, cache = parse_forward(spec, result, what)
    return outs, cache, used


def call_forward_plain(spec: Spec, fn: Callable, args: tuple, files: Iterable[str],
                       what: str) -> tuple[tuple, object, tuple]:
    if spec.seeded:
        np.random.seed(0)
    used = copy_args(args)
    result = call_student(fn, used, files, what)
    outs, cache = parse_forward(spec, result, what)
    return outs, cache, used


def _written_input(spec: Spec, fn: Callable, args: tuple) -> str:
    """Which array argument the forward writes into (one read-only at a time)."""
    arrays = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]
    for i in arrays:
        trial = copy_args(args)
        trial[i].flags.writeable = False
        try:
            if spec.seeded:
                np.random.seed(0)
            fn(*trial)
        except ValueError as exc:
            if is_readonly_write(exc):
                return spec.args[i]
        except BaseException:  # noqa: BLE001 - reported by the plain call
            return "(an input)"
    return "(an input)"


def compare(spec: Spec, case: Case, outs: tuple, ref: Ref, dtype: np.dtype
            ) -> tuple[list[dict], float]:
    """Findings where ``outs`` differ from the reference's, and the largest relative error."""
    found: list[dict] = []
    worst = 0.0
    for name, out, expected in zip(spec.out_names, outs, ref.outs):
        a = np.asarray(out)
        r = np.asarray(expected)
        if a.shape != r.shape and not (r.ndim == 0 and a.size == 1):
            found.append(finding("shape", f"{name} has shape "
                                          f"{spoken_shape(a.shape, case.dims)}, expected "
                                          f"{spoken_shape(r.shape, case.dims)}"))
            worst = np.inf
            continue
        a = a.reshape(r.shape)
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            found.append(finding("nan", f"{name} contains NaN or Inf "
                                        f"({int(np.count_nonzero(~np.isfinite(a)))} values)"))
            worst = np.inf
            continue
        text, err = summarize_values(a, r, name, case.dims)
        worst = max(worst, err)
        if err > TOL_WRONG[dtype]:
            found.append(finding("mismatch", text))
        elif a.dtype.kind == "f" and r.dtype.kind == "f" and a.dtype != r.dtype and r.ndim:
            found.append(finding("dtype", f"{name} is {a.dtype} for {r.dtype} inputs (not "
                                          "counted as a bug)"))
    return found, worst


def _all_zero(outs: tuple, ref: Ref) -> bool:
    return all(not np.any(np.asarray(o)) for o in outs) and \
        any(np.any(np.asarray(r)) for r in ref.outs)


def _pick_variant(spec: Spec, fn: Callable, files, seed: int) -> tuple[Variant, list[Variant]]:
    """The first convention whose reference the student's output matches on the first case,
    and the other conventions it matches too (gamma (C,) and (1, C, 1, 1) broadcast alike
    in a forward that reshapes gamma; the backward's shapes tell them apart)."""
    if len(spec.variants) == 1:
        return spec.variants[0], []
    ran, matched = [], []
    for variant in spec.variants:
        args = case_inputs(spec, 0, variant, seed)
        try:
            outs, _, _ = call_forward_plain(spec, fn, args, files, spec.forward)
        except Unusable:
            continue
        ref = spec.reference(copy_args(args), **variant.options)
        found, _ = compare(spec, spec.cases[0], outs, ref, _dtype(args))
        ran.append(variant)
        if not found:
            matched.append(variant)
    if matched:
        return matched[0], matched[1:]
    return (ran[0] if ran else spec.variants[0]), []


def grade_forward(spec: Spec, fn: Callable, files: Iterable[str], seed: int = 0
                  ) -> ForwardResult:
    """Run every case; compare; return the status, findings, convention and exact matches."""
    files = list(files)
    what = spec.forward
    variant, others = _pick_variant(spec, fn, files, seed)
    result = ForwardResult("correct", variant=variant, others=others)
    found = result.findings
    if variant.note:
        found.append(finding("convention", variant.note))
    notes: set[str] = set()
    failed_cases: list[str] = []
    for index, case in enumerate(spec.cases):
        args = case_inputs(spec, index, variant, seed)
        dtype = _dtype(args)
        try:
            outs, _, after = call_forward(spec, fn, args, files, what, found)
        except Unusable as exc:
            result.status = exc.status
            exc.found["message"] += f" [case: {case.label}]"
            found.append(exc.found)
            return result
        ref = spec.reference(copy_args(args), **variant.options)
        if spec.forward_check is not None:
            problems, note = spec.forward_check(args, outs)
            diffs = [finding(k, m) for k, m in problems]
            if note and note not in notes:
                notes.add(note)
                found.append(finding("convention", note))
            err = 0.0 if not diffs else np.inf
        else:
            if index == 0 and _all_zero(outs, ref):
                result.status = "not-implemented"
                found.append(finding("not-implemented", (
                    f"{what} returns {'a loss of 0' if spec.kind != 'layer' else 'all zeros'}"
                    " (the template's initial value?): not implemented yet")))
                return result
            diffs, err = compare(spec, case, outs, ref, dtype)
            diffs += _hints(spec, args, outs, diffs)
        if spec.state_check is not None:
            diffs += [finding(k, m) for k, m in spec.state_check(after, ref)]
        result.exact[index] = err <= TOL_EXACT[dtype] and not diffs
        wrong = [d for d in diffs if d["kind"] not in ("dtype",)]
        if wrong and failed_cases:  # the first failing case is told in full
            failed_cases.append(case.label)
            continue
        if wrong:
            failed_cases.append(case.label)
        for d in diffs:
            if d["kind"] not in ("dtype",):
                d["message"] += f" [case: {case.label}]"
            if not any(f["message"] == d["message"] for f in found):
                found.append(d)
    if len(failed_cases) > 1:
        found.append(finding("mismatch", f"also wrong on: {', '.join(failed_cases[1:])}"))
    if any(f["kind"] not in ("convention", "dtype", "note") for f in found):
        result.status = "wrong"
    return result


def _hints(spec: Spec, args: tuple, outs: tuple, diffs: list[dict]) -> list[dict]:
    """A classic bug that explains the difference exactly (the unbiased variance...)."""
    if not diffs or any(d["kind"] == "shape" for d in diffs):
        return []
    for message, alt in spec.forward_hints:
        try:
            expected = alt(copy_args(args))
        except Exception:  # noqa: BLE001 - a hint that does not apply
            continue
        if all(np.shape(o) == np.shape(e) and np.allclose(
                np.asarray(o, np.float64), np.asarray(e, np.float64), rtol=1e-5, atol=1e-8)
               for o, e in zip(outs, expected)):
            return [finding("hint", message)]
    return []


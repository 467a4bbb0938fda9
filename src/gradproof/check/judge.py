"""How a verdict is reached: measurements in, one frozen result per input out.

Every input ends in one of three verdicts, and the rules are these, in order:

1. **failed** — evidence of a bug:
   * a contract finding for this input (shape, dtype, NaN, not an array) or a
     call that raised;
   * single coordinates whose analytic and numerical derivatives disagree
     beyond tolerance (found by :mod:`.localize`; their pattern is named);
   * moving all kinked coordinates together (ties) disagrees, every tie having been
     found, in float64 or confirmed by the float64 re-check;
   * a projection that failed, failed again on a fresh draw (new direction, new
     upstream gradient), even when no coordinate could be isolated;
   * the float64 re-check of float32/float16 code found wrong values larger
     than the low precision could resolve.
2. **inconclusive** — nothing proven either way:
   * no finite measurement (every perturbed evaluation NaN or raised);
   * a failing projection not confirmed on a fresh draw, nor located;
   * the tolerance is wider than the resolution we promise
     (``RESOLUTION_CAP`` relative: a check that cannot see a 1 % error proves
     nothing) and no float64 re-check settled it — unless the gradient is
     mathematically zero: the backward returns rounding noise, the numerical
     derivative is zero to within a tolerance tiny next to the function's own
     scale, and the function does not move beyond rounding across a step as large
     as the input's scale (a bias before a normalisation). A gradient that is
     merely far below the output's rounding (a saturated sigmoid's 1e-17, a
     function with a large constant offset) is not proven;
   * kinked blocks or unmeasurable coordinates left unresolved; an analytic value
     outside the one-sided derivatives at a kink (valid where overlapping max-pool
     windows meet at a tie, wrong for a badly split tie: moving all kinks together
     proves only their sum); a ties line that disagrees where not every tie was
     found, or in a low precision with no float64 re-check to confirm it;
   * float16 inputs whose code cannot be re-checked in float64.
3. **ok** — every measurement agreed within a tolerance below the cap (kinks,
   where isolated, are valid subgradients and reported).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .localize import Localization
from .numeric import DirectionResult
from .patterns import describe_mismatch, describe_region, describe_samples, shared_index
from .report import Finding, InputResult, Kink, format_pair

__all__ = ["Evidence", "Judgement", "judge_values", "judge_witness", "judge_low_precision_ties",
           "RESOLUTION_CAP",
           "worst_verdict"]

UNCONFIRMED = "a projection exceeded its tolerance"
RESOLUTION_CAP = 1e-2  # an ok needs a relative tolerance at most this
SAFETY_ZERO = 8.0  # an analytic projection within this many times its own rounding is zero
VALUE_KINDS = {"mismatch", "factor", "sign", "zeros", "slice", "transpose", "ties", "pattern",
               "unlocated"}


@dataclass
class Evidence:
    """Everything measured about one input's values (no conclusion yet)."""

    index: int
    top: list[DirectionResult] = field(default_factory=list)  # the random projections
    loc: Localization | None = None
    confirm: list[DirectionResult] = field(default_factory=list)  # fresh draws
    ties: DirectionResult | None = None  # all kinked coordinates moved together
    n_ties: int = 0
    full: list[DirectionResult] | None = None  # mode="full": every coordinate
    outside: list[tuple[int, int, DirectionResult]] = field(default_factory=list)
    precision_note: str = ""
    eps_eff: float = 0.0
    perturbed_errors: list[str] = field(default_factory=list)
    skip_reason: str = ""  # values not measured at all (float16), and why
    # (how far phi moved across a large step, what rounding alone can move it): measured
    # where the analytic gradient looks zero, see engine._still
    still: tuple[float, float] | None = None


@dataclass
class Judgement:
    """A verdict with what it found: the frozen result and the report's additions."""

    result: InputResult
    problems: list[Finding] = field(default_factory=list)
    kinks: list[Kink] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def worst_verdict(verdicts: Sequence[str]) -> str:
    if "failed" in verdicts:
        return "failed"
    if "inconclusive" in verdicts:
        return "inconclusive"
    return "ok"


# ----------------------------------------------------------------------
def _coord(shape, k: int) -> tuple[int, ...]:
    return tuple(int(c) for c in np.unravel_index(int(k), shape))


def _samples(shape, scale, items) -> list[tuple[tuple[int, ...], float, float]]:
    return [(_coord(shape, k), r.analytic / scale[k], r.numeric / scale[k]) for k, r in items]


def _kinks(i, shape, scale, items) -> list[Kink]:
    out = []
    for k, r in items:
        s = scale[k]
        lo, hi = sorted((r.left / s, r.right / s))
        out.append(Kink(i, _coord(shape, k), lo, hi, r.analytic / s, r.ok))
    return out


def _ratio(r: DirectionResult) -> float:
    return r.rel_error / max(r.rel_tol, 1e-300)


def _tol_reason(r: DirectionResult) -> str:
    d = r._denom()
    side = " (one-sided: a domain edge)" if r.one_sided else ""
    return (f"step {r.step:.2g}{side}: truncation {r.truncation / d:.1e} (measured) + "
            f"rounding {r.rounding / d:.1e} (forward) + {r.analytic_rounding / d:.1e}"
            " (backward), with safety factors")


def _summary(rs: Sequence[DirectionResult]) -> tuple[float, float, str]:
    """(max rel error, its tolerance, why) of the worst finite smooth measurement."""
    smooth = [r for r in rs if r.finite and not r.kink]
    if not smooth:
        return 0.0, 0.0, ""
    worst = max(smooth, key=_ratio)
    return worst.rel_error, worst.rel_tol, _tol_reason(worst)


# ----------------------------------------------------------------------
def judge_values(base: InputResult, ev: Evidence, x: np.ndarray, scale: np.ndarray,
                 cands, others: Sequence) -> Judgement:
    """The verdict on input ``base.index``'s gradient values from its evidence.

    ``base`` carries name, shape, dtype and the analytic gradient; ``others``
    are all the inputs (integer ones name label-entry patterns).
    """
    i, shape, label = base.index, x.shape, base.label
    j = Judgement(base)
    analytic = base.analytic
    g64 = analytic.astype(np.float64) if analytic is not None else np.zeros(shape)
    if ev.precision_note:
        j.notes.append(ev.precision_note)
    if ev.skip_reason:
        return _inconclusive(j, ev.skip_reason)
    measured = ev.full if ev.full is not None else ev.top
    rel, tol, why = _summary(measured + ev.confirm)
    j.result = replace(base, max_rel_error=rel, tol=tol, tol_reason=why,
                       n_directions=len(measured) + len(ev.confirm)
                       + (len(ev.loc.bad) + len(ev.loc.good) if ev.loc else 0))
    if ev.full is not None:
        items = list(enumerate(ev.full))
        j.result = replace(j.result, numeric=np.array(
            [r.numeric / scale[k] for k, r in items]).reshape(shape))
        kinked = [(k, r) for k, r in items if r.finite and r.kink]
        bad = [(k, r) for k, r in items if r.finite and not r.ok and not r.kink]
        unmeasurable = [k for k, r in items if not r.finite]
        where = f"of {x.size} coordinates"
        widespread = False
    else:
        loc = ev.loc or Localization()
        kinked, bad, unmeasurable = loc.kinks, loc.bad, loc.unmeasurable
        widespread = loc.widespread or loc.exhausted
        where = "sampled coordinate(s)" if widespread else "coordinate(s)"
    j.kinks.extend(_kinks(i, shape, scale, kinked))

    # ---- failed: the ties line, wrong coordinates, a confirmed projection ----------
    ties_bad = ev.ties is not None and ev.ties.finite and not ev.ties.ok and not ev.ties.kink
    # The ties line proves a bug only when it holds every tie: a tied partner left out
    # (a kinked block the budget did not split) makes that line kinked after all.
    ties_complete = ev.loc is None or not (ev.loc.exhausted or ev.loc.unresolved_kinks)
    if ties_bad and ties_complete:
        r = ev.ties
        a, n = format_pair(r.analytic, r.numeric)
        j.problems.append(Finding(
            f"input {label}: at its {ev.n_ties} non-differentiable points (ties), moving "
            f"them together is smooth, yet the analytic derivative along that direction is "
            f"{a} and the numeric one {n}: the gradient at a tie must be "
            "shared out (e.g. sent to one of the tied maxima), not copied to each",
            "ties", i))
        j.result = replace(j.result, verdict="failed", status="FAIL",
                           max_rel_error=max(rel, r.rel_error), tol=max(tol, r.rel_tol))
    if bad:
        _failed_at(j, bad, g64, scale, shape, cands, where, ev, others, widespread)
        return j
    if j.result.verdict == "failed":
        return j
    if ties_bad:
        a, n = format_pair(ev.ties.analytic, ev.ties.numeric)
        return _inconclusive(
            j, f"moving its {ev.n_ties} kinked coordinates together disagreed with the "
               f"analytic derivative ({a} vs {n}), but "
               f"{ev.loc.unresolved_kinks if ev.loc else 0} blocks with non-differentiable "
               "points were not split to single coordinates within max_evals: a tied "
               "partner missing from that line makes it kinked, so this proves nothing")

    # ---- nothing isolated: confirmed, unconfirmed, unmeasurable -------------------
    top_bad = [r for r in measured if r.finite and not r.ok and not r.kink]
    confirm_bad = [r for r in ev.confirm if r.finite and not r.ok and not r.kink]
    if top_bad and confirm_bad:
        first, again = max(top_bad, key=_ratio), max(confirm_bad, key=_ratio)
        calls = ev.loc.n_evals if ev.loc else 0
        why = (f"analytic = {ev.loc.uniform_factor:.6g} x numeric along every projection: a "
               "uniform error smaller than what one coordinate resolves in this precision "
               "(a slightly wrong formula or constant everywhere)"
               if ev.loc is not None and ev.loc.uniform_factor is not None else
               f"the localisation budget (max_evals) ran out after {calls} forward calls: "
               "raise it, or check mode='full' on a smaller input"
               if ev.loc is not None and ev.loc.exhausted else
               f"no block of coordinates failed on its own ({calls} forward calls): the "
               "error is spread thinly, each coordinate's share below what one block's "
               "measurement resolves; mode='full' on a smaller input shows every coordinate")
        j.problems.append(Finding(
            f"input {label}: wrong somewhere (projection error {first.rel_error:.2g} vs "
            f"tolerance {first.rel_tol:.2g}, confirmed on a second draw with a new direction "
            f"and upstream gradient: {again.rel_error:.2g} vs {again.rel_tol:.2g}); the wrong "
            f"coordinates could not be isolated: {why}", "unlocated", i))
        j.result = replace(j.result, verdict="failed", status="FAIL",
                           max_rel_error=max(first.rel_error, again.rel_error),
                           tol=first.rel_tol)
        return j
    if not any(r.finite for r in measured):
        reason = "no finite measurement: every perturbed evaluation of the forward "
        reason += ("raised (" + "; ".join(ev.perturbed_errors[:2]) + ")"
                   if ev.perturbed_errors else "was NaN or Inf")
        reason += ", even one-sided and with smaller steps: its derivative could not be measured"
        return _inconclusive(j, reason)
    if unmeasurable:
        coords = ", ".join(str(_coord(shape, k)) for k in unmeasurable[:3])
        return _inconclusive(j, f"the derivative at {len(unmeasurable)} coordinate(s) "
                                f"({coords}) could not be measured: every step there left "
                                "the function's domain")
    if top_bad and not (kinked and not widespread):
        first = max(top_bad, key=_ratio)
        return _inconclusive(
            j, f"{UNCONFIRMED} ({first.rel_error:.2g} vs "
               f"{first.rel_tol:.2g}) but neither a fresh draw nor any block of coordinates "
               "did: not proven right, not proven wrong")
    outside = [k for k in j.kinks if not k.consistent]
    if outside:
        # Where several kinks meet (overlapping max-pool windows with tied values) a valid
        # subgradient can leave one coordinate's one-sided slopes, so this is not failed;
        # but a wrong split of a tie (1.5 and -0.5 for 0.5 and 0.5) does too, and moving
        # all kinks together proves only their sum: not proven either way.
        shown = "; ".join(k.describe() for k in outside[:2])
        ties_agree = ev.ties is not None and ev.ties.finite and ev.ties.ok and not ev.ties.kink
        return _inconclusive(
            j, f"at {len(outside)} kink(s) the analytic value lies outside the one-sided "
               f"derivatives ({shown}): not a valid subgradient of a single kink; where "
               "several kinks meet (overlapping max-pool windows) it can be, so not failed"
               + ("; moving all kinks together agrees, which proves their sum, not each "
                  "share" if ties_agree else ""))
    if ev.loc is not None and ev.loc.exhausted:
        return _inconclusive(
            j, f"{ev.loc.unresolved_kinks} blocks with non-differentiable points could not be "
               "split to single coordinates within max_evals; no mismatch was found elsewhere")
    smooth = [r for r in measured + ev.confirm if r.finite and not r.kink]
    # Zero to within a tolerance tiny next to the function's scale is not yet zero (a
    # true gradient of 1e-10 of that scale looks the same): the function must also not
    # move, beyond rounding, across a step as large as each coordinate's scale.
    zero = (bool(smooth) and all(_is_zero(r, ev.eps_eff or float(np.finfo(x.dtype).eps))
                                 for r in smooth)
            and ev.still is not None and ev.still[0] <= ev.still[1])
    if tol > RESOLUTION_CAP and not zero:
        worst = max(smooth, key=lambda r: r.rel_tol) if smooth else None
        size = (f" (|<g, u>| = {abs(worst.analytic):.2g} against a resolution of "
                f"{worst.tol:.2g})" if worst is not None else "")
        return _inconclusive(
            j, f"the tolerance ({tol:.2g} relative) is wider than {RESOLUTION_CAP:g}: the "
               f"forward's rounding swamps this gradient{size}, so finite differences cannot "
               "prove it (a gradient far below the output's scale, a saturated unit, or low "
               "precision; method='complex' has no rounding to fight where the forward "
               "accepts complex inputs)")
    status = "ok (kinks)" if kinked else "ok"
    j.result = replace(j.result, verdict="ok", status=status)
    if tol > RESOLUTION_CAP:
        j.notes.append(
            f"input {label}: its gradient is zero up to the backward's own rounding, and the "
            "numerical derivative is zero to within the forward's: proven zero (a parameter "
            "whose effect a normalisation removes, say)")
    return j


def _is_zero(r: DirectionResult, eps: float) -> bool:
    """A mathematically zero gradient: the analytic projection is at the level of the
    backward's own rounding, the numeric one within the tolerance of 0, and that
    tolerance tiny next to the function's own scale (``sqrt(eps)`` of it)."""
    return (abs(r.analytic) <= SAFETY_ZERO * r.analytic_rounding
            and abs(r.numeric) <= r.tol
            and r.natural_tol <= float(np.sqrt(eps)))


def _inconclusive(j: Judgement, reason: str) -> Judgement:
    j.result = replace(j.result, verdict="inconclusive", status="inconclusive", reason=reason)
    return j


def _failed_at(j: Judgement, bad, g64, scale, shape, cands, where, ev: Evidence, others,
               widespread: bool) -> None:
    """Failed at single coordinates ``bad``: the mismatch and its pattern."""
    i, label = j.result.index, j.result.label
    bad = sorted(bad, key=lambda kr: -kr[1].rel_error)
    seen: set[int] = set()  # a coordinate met twice (sampled, then on a descent) counts once
    bad = [kr for kr in bad if not (kr[0] in seen or seen.add(kr[0]))]
    samples = _samples(shape, scale, bad)
    rel = max(r.rel_error for _, r in bad)
    res = j.result
    if rel > res.max_rel_error:
        res = replace(res, max_rel_error=rel, tol=max(r.rel_tol for _, r in bad))
    shown = ", ".join(str(c) for c, _, _ in samples[:3])
    more = f" (and {len(samples) - 3} more)" if len(samples) > 3 else ""
    a, n = format_pair(samples[0][1], samples[0][2])
    found = [Finding(
        f"input {label}: gradient values are wrong at {len(samples)} {where} "
        f"{shown}{more}; e.g. analytic {a} vs numeric {n}", "mismatch", i)]
    found += describe_mismatch(label, samples, g64, cands, i,
                               rel_tol=max(r.rel_tol for _, r in bad))
    loc = ev.loc
    region = describe_region(label, shape, loc.axis_sets) if (
        loc is not None and loc.region_confirmed) else ""
    if region:
        found.append(Finding(
            f"input {label}: the errors are confined to {region} ({loc.region_size} of "
            f"{int(np.prod(shape))} coordinates); everything outside it was measured right",
            "slice", i))
    else:
        found += describe_samples(label, shape, [c for c, _, _ in samples], [], others, i)
        if ev.full is not None or not widespread:
            for axis, index in shared_index([c for c, _, _ in samples], shape):
                sl = [":"] * len(shape)
                sl[axis] = str(index)
                found.append(Finding(
                    f"input {label}: the errors are confined to index {index} along axis "
                    f"{axis} ({label.split()[-1].strip('()')}[{', '.join(sl)}])", "slice", i))
                break
    j.problems.extend(found)
    j.result = replace(res, verdict="failed", status="FAIL", worst=tuple(samples[:5]),
                       diagnosis=tuple(str(f) for f in found[1:]))


# ----------------------------------------------------------------------
def judge_low_precision_ties(j: Judgement, low: str,
                             why: str = "no float64 re-check could run") -> Judgement:
    """A low-precision input failed on its ties line alone, with no float64 re-check to
    confirm it (``why``): inconclusive. That precision cannot tell nearly cancelling kinks
    (a tied partner the line left out) from a smooth line, so the disagreement proves
    nothing by itself."""
    res = j.result
    if not (res.verdict == "failed" and j.problems
            and all(p.kind == "ties" for p in j.problems)):
        return j
    first = j.problems[0]
    j.problems = []
    return _inconclusive(
        j, f"moving its kinked coordinates together disagreed with the analytic derivative "
           f"in {low}, which cannot tell nearly cancelling kinks from a smooth line, and "
           f"{why} ({first.split(': ', 1)[-1][:200]})")


def judge_witness(j: Judgement, witness: InputResult, witness_problems: Sequence[Finding],
                  floor: float, n_evals: int, low: str) -> Judgement:
    """Combine a low-precision input's verdict with its float64 re-check.

    The re-check runs the same code on float64 copies: wrong values larger than
    ``floor`` (what the low precision could resolve) fail; a float64 ok settles
    an inconclusive low-precision check (and undoes a low-precision "ties"
    verdict: that precision cannot tell nearly cancelling kinks from a smooth
    line); other low-precision failures stand (the low-precision path may have
    bugs of its own).
    """
    res, label = j.result, j.result.label
    ties_only = res.verdict == "failed" and all(p.kind == "ties" for p in j.problems)
    unlocated = res.verdict == "failed" and all(p.kind == "unlocated" for p in j.problems)
    if res.verdict == "failed" and not (ties_only or unlocated):
        return j
    if unlocated:
        if witness.verdict == "failed" and witness.worst:
            j.problems = list(j.problems) + [p for p in witness_problems
                                             if p.input == res.index and p.kind in VALUE_KINDS]
            j.result = replace(res, worst=witness.worst,
                               diagnosis=res.diagnosis + witness.diagnosis)
            j.notes.append(f"input {label}: located by the float64 re-check (the same code "
                           "on upcast inputs)")
        elif witness.verdict == "ok":
            # Two projections disagreed in the low precision, no coordinate did, and
            # the same code is proven right in float64: a kink inside the low
            # precision's larger step (two nearly tied maxima) can do this, and so
            # can a bug of the low-precision path alone. Neither is proven.
            first = next(p for p in j.problems if p.kind == "unlocated")
            j.problems = [p for p in j.problems if p.kind != "unlocated"]
            j.result = replace(res, verdict="inconclusive", status="inconclusive", reason=(
                f"in {low} two projections disagreed but no coordinate did, and the same "
                "code on float64 copies is proven right: a kink within the larger "
                f"{low} step (nearly tied maxima) or a {low}-only effect; not proven either "
                f"way ({first.split(': ', 1)[-1][:160]})"))
        return j
    if witness.verdict == "failed" and witness.max_rel_error > floor:
        problems = [p for p in j.problems if p.kind != "ties"]
        problems.append(Finding(
            f"input {label}: {low} rounding hides it, but the same code run in float64 "
            f"(inputs upcast) has wrong gradient values, relative error "
            f"{witness.max_rel_error:.2g} (float64 tolerance {witness.tol:.2g}; {low} would "
            f"need {floor:.1g})", "mismatch", res.index))
        problems.extend(p for p in witness_problems if p.input == res.index
                        and p.kind in VALUE_KINDS)
        j.problems = problems
        j.result = replace(res, verdict="failed", status="FAIL", worst=witness.worst,
                           max_rel_error=witness.max_rel_error, tol=witness.tol,
                           tol_reason=f"float64 re-check: {witness.tol_reason}",
                           diagnosis=res.diagnosis + witness.diagnosis, reason="")
        j.notes = [n for n in j.notes if "inconclusive" not in n]
        return j
    if witness.verdict == "failed":
        j.notes.append(
            f"input {label}: in float64 the gradient differs from the numerical one by "
            f"{witness.max_rel_error:.2g} relative, within {low}'s own rounding "
            f"({floor:.1g}): not counted")
        if res.verdict != "ok":  # a float64 failure proves nothing the low precision could not
            return j
    elif witness.verdict != "ok":
        if ties_only:
            return judge_low_precision_ties(
                j, low, f"the float64 re-check was inconclusive ({witness.reason})")
        j.notes.append(f"input {label}: the float64 re-check was inconclusive "
                       f"({witness.reason}); the {low} verdict stands")
        return j
    if res.reason.startswith(UNCONFIRMED):
        # the low precision saw a failure it could not confirm: the float64 run proves
        # the formula, not that the low-precision path is right too
        j.notes.append(f"input {label}: the float64 re-check agrees, but the {low} "
                       "failure it could not confirm stays unexplained")
        return j
    if ties_only:
        j.problems = [p for p in j.problems if p.kind != "ties"]
        j.notes.append(
            f"input {label}: moving its kinked coordinates together looked smooth in {low} "
            "and disagreed with the analytic derivative; in float64 (the same code on upcast "
            "inputs) that line has a kink, so the gradient there is a valid subgradient")
    if res.verdict != "ok":
        j.notes = [n for n in j.notes if not n.startswith(f"input {label}: inconclusive")]
        j.notes.append(f"input {label}: proven by the float64 re-check ({low} alone could "
                       f"not: {res.reason or 'its ties line disagreed'})")
    j.result = replace(res, verdict="ok", status=witness.status if witness.status.startswith(
        "ok") else "ok", reason="")
    return j

"""Verdicts per input: summarising measurements, localising, recording kinks and failures.

``summarise`` keeps the worst of an input's projections; ``conclude`` turns a
localisation (:mod:`.localize`) into a verdict, kinks and findings;
``check_full`` does the same from a measurement of every coordinate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .localize import single_coordinates
from .numeric import Direction, DirectionResult
from .patterns import describe_mismatch, shared_index
from .report import Finding, InputResult, Kink, Report

__all__ = ["summarise", "conclude", "check_full"]


def summarise(res: InputResult, rs: Sequence[DirectionResult]) -> None:
    res.n_directions += len(rs)
    smooth = [r for r in rs if r.finite and not r.kink]
    if smooth:
        worst = max(smooth, key=lambda r: r.rel_error / max(r.rel_tol, 1e-300))
        if worst.rel_error / max(worst.rel_tol, 1e-300) >= res.max_rel_error / max(res.tol, 1e-300):
            res.max_rel_error = worst.rel_error
            res.tol = worst.rel_tol
            d = worst._denom()
            res.tol_reason = (
                f"step {worst.step:.2g}: truncation {worst.truncation / d:.1e} (measured) + "
                f"rounding {worst.rounding / d:.1e} (forward) + {worst.analytic_rounding / d:.1e}"
                " (backward), with safety factors"
            )
    if not any(r.finite for r in rs):
        res.diagnosis.append("no finite measurement: every step left the function's domain")


def _coord(shape, k: int) -> tuple[int, ...]:
    return tuple(int(c) for c in np.unravel_index(int(k), shape))


def _per_coordinate(shape, scale: np.ndarray, items) -> list[tuple[tuple[int, ...], float, float]]:
    out = []
    for k, r in items:
        s = scale[k]
        out.append((_coord(shape, k), r.analytic / s, r.numeric / s))
    return out


def _record_kinks(report: Report, i: int, shape, scale, items) -> None:
    for k, r in items:
        s = scale[k]
        lo, hi = sorted((r.left / s, r.right / s))
        report.kinks.append(Kink(i, _coord(shape, k), lo, hi, r.analytic / s, r.ok))


def _check_ties(measurer, i, shape, scale, kink_flat, res: InputResult, report: Report) -> None:
    """Move every kinked coordinate together: along that direction a function whose
    kinks are ties (max, min, max-pool) is smooth, and every valid subgradient
    gives the same derivative there, so a mismatch is a real bug (e.g. the
    gradient copied to every tied maximum instead of shared out)."""
    if len(kink_flat) < 2:
        return
    u = np.zeros(scale.size)
    u[kink_flat] = scale[kink_flat]
    (r,) = measurer.measure([Direction(i, u.reshape(shape), "all kinks together")])
    if r.kink or r.ok or not r.finite:
        return
    res.before_ties = (res.max_rel_error, res.tol)
    res.ok = False
    res.status = "FAIL"
    res.max_rel_error = max(res.max_rel_error, r.rel_error)
    res.tol = max(res.tol, r.rel_tol)
    report.problems.append(Finding(
        f"input {res.label}: at its {len(kink_flat)} non-differentiable points (ties), moving "
        f"them together is smooth, yet the analytic derivative along that direction is "
        f"{r.analytic:.6g} and the numeric one {r.numeric:.6g}: the gradient at a tie must be "
        "shared out (e.g. sent to one of the tied maxima), not copied to each",
        "ties", i,
    ))


def conclude(measurer, i, x, scale, loc, top, res: InputResult, report: Report, cands, rng):
    shape = x.shape
    _record_kinks(report, i, shape, scale, loc.kinks)
    _check_ties(measurer, i, shape, scale, np.array([k for k, _ in loc.kinks], dtype=int),
                res, report)
    bad = sorted(loc.bad, key=lambda kr: -kr[1].rel_error)
    if not bad:
        if loc.exhausted:
            res.status = "inconclusive"
            report.notes.append(
                f"input {res.label}: {loc.unresolved_kinks} blocks with non-differentiable "
                "points could not be split to single coordinates within max_evals; no "
                "mismatch was found elsewhere"
            )
        elif any(not r.ok for r in top if not r.kink) and not loc.kinks:
            # a projection failed but no block did: too close to call
            res.status = "inconclusive"
            report.notes.append(
                f"input {res.label}: one projection exceeded its tolerance but no block of "
                "coordinates did on its own; treated as noise"
            )
        if loc.kinks and res.ok:
            res.status = "ok (kinks)"
        return
    where = "sampled coordinate(s)" if loc.widespread or loc.exhausted else "coordinate(s)"
    samples = _record_failure(res, report, i, shape, scale, bad, cands, where)
    # errors confined to a slice?
    coords = [c for c, _, _ in samples]
    for axis, index in shared_index(coords, shape):
        if loc.widespread or loc.exhausted:
            # verify: the rest of the input, outside the slice, must be right
            mask = np.ones(shape, dtype=bool)
            sl = [slice(None)] * len(shape)
            sl[axis] = index
            mask[tuple(sl)] = False
            u = np.where(mask.ravel(), rng.standard_normal(scale.size) * scale, 0.0)
            (r,) = measurer.measure([Direction(i, u.reshape(shape), f"outside axis {axis}")])
            if not r.ok:
                continue
        f = Finding(
            f"input {res.label}: the errors are confined to index {index} along axis {axis} "
            f"(a slice of shape {tuple(s for a, s in enumerate(shape) if a != axis)}); "
            "everything outside it is right",
            "slice", i,
        )
        report.problems.append(f)
        res.diagnosis.append(f)
        break


def _record_failure(res: InputResult, report: Report, i: int, shape, scale, bad, cands,
                    where: str) -> list[tuple[tuple[int, ...], float, float]]:
    """Mark input ``i`` failed from its wrong coordinates ``bad`` (worst first), add the
    mismatch finding and the pattern's; return the per-coordinate samples."""
    res.ok = False
    res.status = "FAIL"
    samples = _per_coordinate(shape, scale, bad)
    res.worst = samples[:5]
    rel = max(r.rel_error for _, r in bad)
    if rel > res.max_rel_error:
        res.max_rel_error = rel
        res.tol = max(r.rel_tol for _, r in bad)
    shown = ", ".join(str(c) for c, _, _ in samples[:3])
    more = f" (and {len(samples) - 3} more)" if len(samples) > 3 else ""
    report.problems.append(Finding(
        f"input {res.label}: gradient values are wrong at {len(samples)} {where} "
        f"{shown}{more}; e.g. analytic {samples[0][1]:.6g} vs numeric {samples[0][2]:.6g}",
        "mismatch", i,
    ))
    g = res.analytic.astype(np.float64) if res.analytic is not None else np.zeros(shape)
    found = describe_mismatch(res.label, samples, g, cands, i,
                              rel_tol=max(r.rel_tol for _, r in bad))
    report.problems.extend(found)
    res.diagnosis.extend(found)
    return samples


def check_full(measurer, i, x, scale, res: InputResult, report: Report, cands) -> None:
    shape = x.shape
    flat = np.arange(x.size)
    rs = single_coordinates(measurer, i, shape, scale, flat)
    numeric = np.array([r.numeric / scale[k] for k, r in zip(flat, rs)]).reshape(shape)
    res.numeric = numeric
    res.n_directions = len(rs)
    items = list(zip(flat, rs))
    kinked = [(k, r) for k, r in items if r.kink]
    _record_kinks(report, i, shape, scale, kinked)
    _check_ties(measurer, i, shape, scale, np.array([k for k, _ in kinked], dtype=int),
                res, report)
    bad = sorted([(k, r) for k, r in items if not r.ok and not r.kink],
                 key=lambda kr: -kr[1].rel_error)
    smooth = [r for r in rs if r.finite and not r.kink]
    if smooth:
        worst = max(smooth, key=lambda r: r.rel_error / max(r.rel_tol, 1e-300))
        res.max_rel_error, res.tol = worst.rel_error, worst.rel_tol
    if not bad:
        if kinked and res.ok:
            res.status = "ok (kinks)"
        return
    samples = _record_failure(res, report, i, shape, scale, bad, cands,
                              f"of {x.size} coordinates")
    for axis, index in shared_index([c for c, _, _ in samples], shape):
        f = Finding(
            f"input {res.label}: the errors are confined to index {index} along axis {axis}",
            "slice", i,
        )
        report.problems.append(f)
        res.diagnosis.append(f)
        break

"""Localising a mismatch found by a random projection.

A projection ``<g, u>`` that disagrees with the numerical slope says *that*
an input's gradient is wrong, not *where*. Bisection finds where: the input's
coordinates (in flat order) are split in halves, each half is measured along
its own random direction, and only failing halves are split again, so a bug
confined to ``k`` coordinates of ``n`` costs about ``2 k log2(n)``
measurements. Kinks are isolated the same way: along a direction through
several non-differentiable coordinates the analytic value may fall outside the
one-sided slopes even for valid subgradients, so such blocks are split until
each kink is alone. A coordinate at a kink is reported, never failed: where
several kinked terms meet (overlapping max-pool windows) a valid subgradient
need not lie between the one-sided derivatives of one coordinate.

When nearly all of 16 or more blocks of a level fail the error is widespread (a factor, a sign,
a wrong formula); bisecting further would cost as much as a full Jacobian, so
the search stops and measures a sample of single coordinates instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .numeric import Direction, DirectionResult, Measurer

__all__ = ["Localization", "localize", "single_coordinates", "kink_suspects_last",
           "random_weights"]

CHUNK_BYTES = 32 * 2**20  # perturbed copies of the input made at once by single_coordinates
# (their deltas take as much again)


@dataclass
class Localization:
    """Where an input's gradient is wrong."""

    bad: list[tuple[int, DirectionResult]] = field(default_factory=list)  # (flat index, result)
    good: list[tuple[int, DirectionResult]] = field(default_factory=list)
    kinks: list[tuple[int, DirectionResult]] = field(default_factory=list)
    widespread: bool = False
    exhausted: bool = False  # budget ran out before every failing block was resolved
    unresolved_kinks: int = 0  # kinked blocks not split to single coordinates
    failing_blocks: list[tuple[int, int]] = field(default_factory=list)
    n_evals: int = 0


def random_weights(rng: np.random.Generator, n: int) -> np.ndarray:
    """Weights of a random direction: a random sign times a magnitude uniform in
    [0.5, 1.5]. Never tiny (a Gaussian weight near 0 can hide the one wrong
    coordinate of a block), never all equal (equal moves keep tied maxima
    tied, so a tie would not show as a kink)."""
    return rng.choice((-1.0, 1.0), size=n) * rng.uniform(0.5, 1.5, size=n)


def single_coordinates(
    measurer: Measurer, i: int, shape, scale: np.ndarray, flat: np.ndarray
) -> list[DirectionResult]:
    """Measure the derivative along each listed coordinate alone (``u = scale_k e_k``).

    The coordinates are measured in chunks whose perturbed copies of the input
    take about ``CHUNK_BYTES``: memory stays O(input size) however many are listed.
    """
    shape = tuple(shape)
    directions = [Direction(i, None, f"coordinate {k}", np.array([k]), scale[[k]], shape)
                  for k in flat]
    chunk = max(16, CHUNK_BYTES // (4 * 8 * max(scale.size, 1)))
    results: list[DirectionResult] = []
    for start in range(0, len(directions), chunk):
        results.extend(measurer.measure(directions[start:start + chunk]))
    return results


def kink_suspects_last(x: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """An order of ``x``'s flat coordinates with the likely kinks last, and the groups.

    Kinks sit at special values: exact zeros (ReLU, abs, a ReLU's output fed to
    another ReLU or a max-pool), and values that occur more than once (ties of
    a max, clipping bounds). Values drawn from a continuous distribution are
    neither, so the other coordinates are smooth almost surely. Returns
    ``(order, bounds)``: group ``j`` is ``order[bounds[j]:bounds[j + 1]]``.
    """
    flat = np.asarray(x).reshape(-1)
    n = flat.size
    if n < 2 or not np.issubdtype(flat.dtype, np.floating):
        return np.arange(n), [0, n]
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    suspect = (flat == 0) | (counts[inverse.reshape(-1)] > 1)
    n_suspect = int(np.count_nonzero(suspect))
    if n_suspect in (0, n):
        return np.arange(n), [0, n]
    order = np.concatenate([np.flatnonzero(~suspect), np.flatnonzero(suspect)])
    return order, [0, n - n_suspect, n]


def localize(
    measurer: Measurer,
    i: int,
    shape: tuple[int, ...],
    scale: np.ndarray,
    rng: np.random.Generator,
    budget: int,
    n_samples: int = 12,
    groups: tuple[np.ndarray, list[int]] | None = None,
) -> Localization:
    """Bisect input ``i``'s coordinates to the ones whose gradient is wrong.

    ``scale`` (flat, float64) is each coordinate's perturbation scale;
    ``budget`` caps the forward calls spent here. ``groups`` (from
    :func:`kink_suspects_last`) bisects each group on its own, in turn: a bug
    among smooth coordinates is found before an input dense with kinks (half
    of a ReLU's output is exactly 0) can use up the budget on them.
    """
    loc = Localization()
    start = measurer.n_evals
    n = scale.size
    order, bounds = groups if groups is not None else (np.arange(n), [0, n])

    def block(lo: int, hi: int) -> Direction:
        coords = order[lo:hi]
        values = random_weights(rng, hi - lo) * scale[coords]
        return Direction(i, None, f"block {lo}:{hi}", coords, values, tuple(shape))

    for g_lo, g_hi in zip(bounds[:-1], bounds[1:]):
        failing_blocks = _bisect(measurer, order, block, (g_lo, g_hi), loc, start, budget,
                                 i, shape, scale)
        if loc.widespread or (loc.exhausted and not loc.bad):
            # sample single coordinates inside the failing blocks
            pool = np.concatenate([order[lo:hi] for lo, hi in failing_blocks])
            take = min(n_samples, pool.size)
            room = max((budget - (measurer.n_evals - start)) // 4, 0)
            take = min(take, max(room, 4))
            picks = np.sort(rng.choice(pool, size=take, replace=False))
            for k, r in zip(picks, single_coordinates(measurer, i, shape, scale, picks)):
                _file(loc, int(k), r)
        loc.failing_blocks.extend(failing_blocks)
        if loc.exhausted or loc.widespread:
            break
    if loc.exhausted:
        loc.unresolved_kinks = len(loc.failing_blocks)
    loc.n_evals = measurer.n_evals - start
    return loc


def _file(loc: Localization, k: int, r: DirectionResult) -> None:
    if r.kink:
        loc.kinks.append((k, r))
    elif r.ok:
        loc.good.append((k, r))
    else:
        loc.bad.append((k, r))


def _bisect(measurer, order, block, root, loc: Localization, start: int, budget: int,
            i: int, shape, scale) -> list[tuple[int, int]]:
    """Breadth-first bisection of the positions ``root`` of ``order``; returns the
    blocks left failing when the budget ran out or the error proved widespread."""
    level = root_level = [root]
    retried = False
    while level:
        if measurer.n_evals - start + 4 * len(level) > budget:
            loc.exhausted = True
            return level
        singles = [(lo, hi) for lo, hi in level if hi - lo == 1]
        blocks = [(lo, hi) for lo, hi in level if hi - lo > 1]
        results = measurer.measure([block(lo, hi) for lo, hi in blocks]) if blocks else []
        flat = np.array([order[lo] for lo, _ in singles], dtype=int)
        n_bad = len(loc.bad) + len(loc.kinks)
        for k, r in zip(flat, single_coordinates(measurer, i, shape, scale, flat)):
            _file(loc, int(k), r)
        failing = [(b, r) for b, r in zip(blocks, results) if not r.ok or r.kink]
        if (not failing and blocks and level is not root_level and not retried
                and len(loc.bad) + len(loc.kinks) == n_bad):
            # The parents failed but none of their halves did: errors in two
            # coordinates can cancel along one draw of signs. Draw again, once.
            retried = True
            results = measurer.measure([block(lo, hi) for lo, hi in blocks])
            failing = [(b, r) for b, r in zip(blocks, results) if not r.ok or r.kink]
        smooth_failing = [b for b, r in failing if not r.kink]
        # Widespread: (nearly) every block of a fine enough level fails. A sparse
        # bug spread over the input (one wrong pixel per channel) fails every
        # block of the first levels too, so the level must have many blocks.
        if len(smooth_failing) >= 16 and len(smooth_failing) >= 0.9 * max(len(blocks), 1):
            loc.widespread = True
            return smooth_failing
        nxt = []
        for (lo, hi), _ in failing:
            mid = (lo + hi) // 2
            nxt.extend([(lo, mid), (mid, hi)])
        level = nxt
    return []

"""Localising a mismatch found by a random projection: group tests along structures.

A projection ``<g, u>`` that disagrees with the numerical slope says *that*
an input's gradient is wrong, not *where*. Real bugs live on structures of the
input — a column of a weight matrix, one input channel of every filter, one
kernel tap, every k-th feature (a gate, a head), one entry per row (a loss's
label entries) — so the search is a group test in three stages:

1. **Along each axis.** For every axis of the input, the index ranges of that
   axis are bisected: the slab ``x[..., lo:hi, ...]`` is measured along its own
   random direction and only failing slabs are split, so each axis ends with
   the set of its indices whose slices hold wrong coordinates (or "all of
   them": when nearly every one of 8 or more slabs of a level fails, and so do
   nearly all of 8 single indices drawn at random — unlike a sparse periodic
   set, every 16th feature, which fails every slab too — the axis is dense and
   splitting it further would not narrow anything). Bugs confined to
   ``k`` of ``n`` indices cost about ``2 k log2(n)`` measurements per axis.
2. **Intersect.** The candidate region is the product of the per-axis sets
   (``w[:, 40]``, ``v[:, :, 5::16]``). When it is smaller than the input, the
   complement is measured once: if it passes, the errors are proven confined
   to the region; if not, the region is the whole input.
3. **Inside the region.** Its coordinates (in flat order) are bisected as
   before, each half along its own random direction. When nearly all of 16 or
   more blocks of a level fail the error is widespread there; a sample of
   single coordinates is measured, and when the sample holds few wrong ones
   (one entry per row: 1 % of the coordinates) greedy descents follow failing
   halves down to single wrong coordinates, ``2 log2(n)`` measurements each.

Errors nearly everywhere (the common case: a wrong formula, a missing 1/N, a
sign) need none of this: 8 single coordinates drawn at random are measured
first (stage 0), and when all of them are wrong the search stops there; the
samples name the factor or sign when there is one. In a small input (64
coordinates or fewer) where half of them are wrong, every coordinate is
measured once instead (cheaper than bisecting, and complete: the region the
wrong ones span is named).

Likely kinks — exact zeros and repeated values — are left out of the axis
stage and bisected last, so that an input dense with kinks (half of a ReLU's
output is 0) cannot use up the budget before a bug among the smooth
coordinates is found. Along a direction through several kinks the analytic
value may fall outside the one-sided slopes even for valid subgradients, so
kinked blocks are split until each kink is alone; a coordinate at a kink is
reported, never failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .numeric import Direction, DirectionResult, Measurer

__all__ = ["Localization", "localize", "single_coordinates", "kink_suspects_last",
           "random_weights", "failing"]

CHUNK_BYTES = 32 * 2**20  # perturbed copies of the input made at once by single_coordinates
# (their deltas take as much again)
DENSE_LEVEL = 8  # an axis level of at least this many slabs, nearly all failing, and
DENSE_PROBES = 8  # nearly all of this many random single indices failing: dense
WIDESPREAD_LEVEL = 16  # same for the flat bisection inside the region
N_DESCENTS = 4
KINK_BUDGET_FACTOR = 40  # kinked coordinates may cost up to this many times the budget


@dataclass
class Localization:
    """Where an input's gradient is wrong (measurements only; the judge concludes)."""

    bad: list[tuple[int, DirectionResult]] = field(default_factory=list)  # (flat index, result)
    good: list[tuple[int, DirectionResult]] = field(default_factory=list)
    kinks: list[tuple[int, DirectionResult]] = field(default_factory=list)
    unmeasurable: list[int] = field(default_factory=list)  # single coordinates, no finite slope
    widespread: bool = False
    exhausted: bool = False  # budget ran out before every failing block was resolved
    unresolved_kinks: int = 0  # kinked blocks not split to single coordinates
    failing_blocks: list[tuple[int, int]] = field(default_factory=list)
    # per axis: the indices whose slices hold wrong coordinates (None: all of them)
    axis_sets: list[np.ndarray | None] | None = None
    region_confirmed: bool = False  # the complement of the region was measured right
    uniform_factor: float | None = None  # one factor everywhere, below a single's resolution
    region_size: int = 0
    n_evals: int = 0


def failing(r: DirectionResult) -> bool:
    """A measurement that needs a closer look: a mismatch, a kink, or no finite slope."""
    return (not r.finite) or (not r.ok) or r.kink


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


class _Search:
    """The state shared by the stages: measurer, input, budget, findings."""

    def __init__(self, measurer: Measurer, i: int, shape, scale, rng, budget: int):
        self.measurer, self.i, self.shape, self.scale, self.rng = measurer, i, tuple(shape), \
            scale, rng
        self.start, self.budget = measurer.n_evals, budget
        self.loc = Localization()

    def room(self, n_directions: int) -> bool:
        """Whether ``n_directions`` more measurements (4 calls each) fit the budget."""
        return self.measurer.n_evals - self.start + 4 * n_directions <= self.budget

    def direction(self, coords: np.ndarray, label: str) -> Direction:
        values = random_weights(self.rng, coords.size) * self.scale[coords]
        return Direction(self.i, None, label, coords, values, self.shape)

    def measure(self, blocks: list[np.ndarray], label: str) -> list[DirectionResult]:
        return self.measurer.measure([self.direction(c, label) for c in blocks])

    def singles(self, flat: np.ndarray) -> None:
        for k, r in zip(flat, single_coordinates(self.measurer, self.i, self.shape, self.scale,
                                                 flat)):
            k = int(k)
            if not r.finite:
                self.loc.unmeasurable.append(k)
            elif r.kink:
                self.loc.kinks.append((k, r))
            elif r.ok:
                self.loc.good.append((k, r))
            else:
                self.loc.bad.append((k, r))


def localize(
    measurer: Measurer,
    i: int,
    shape: tuple[int, ...],
    scale: np.ndarray,
    rng: np.random.Generator,
    budget: int,
    n_samples: int = 8,
    groups: tuple[np.ndarray, list[int]] | None = None,
    top: list[DirectionResult] | None = None,
) -> Localization:
    """Find input ``i``'s wrong coordinates: axis group tests, then bisection inside.

    ``scale`` (flat, float64) is each coordinate's perturbation scale;
    ``budget`` caps the forward calls spent here. ``groups`` (from
    :func:`kink_suspects_last`) puts likely kinks last. ``top``: the input's
    random projections; when one of them failed, a few single coordinates are
    measured first, and the search stops if all of them are wrong.
    """
    s = _Search(measurer, i, shape, scale, rng, budget)
    n = scale.size
    order, bounds = groups if groups is not None else (np.arange(n), [0, n])
    smooth, suspects = order[:bounds[1]], order[bounds[1]:]
    if top and _wrong_everywhere(s, top, smooth):
        s.loc.n_evals = measurer.n_evals - s.start
        return s.loc
    region = smooth
    if len(shape) >= 2 and smooth.size >= 16:
        region = _axis_region(s, smooth)
    s.loc.region_size = int(region.size)
    for coords in (region, suspects):
        if coords.size == 0:
            continue
        if coords is region and s.loc.axis_sets is not None \
                and all(a is None for a in s.loc.axis_sets):
            # Dense along every axis: the errors are everywhere (a wrong formula), or
            # thinly spread (a diagonal, one entry per row). Flat blocks would all fail
            # too; sample single coordinates (and descend) right away.
            s.loc.widespread = True
            blocks = [coords]
        elif coords is region and s.loc.region_confirmed and coords.size > 32:
            # The region is named and everything outside it proven right (a column,
            # every 16th feature): a few coordinates inside it show the values; a
            # sweep of the region would add nothing to the diagnosis.
            s.loc.widespread = True
            blocks = [coords]
        else:
            blocks = _bisect(s, coords)
        if coords is suspects and s.loc.exhausted and not s.loc.bad and blocks:
            # Kinks only: every kinked coordinate must be seen alone (a valid
            # subgradient is a per-coordinate property), so the rest are measured
            # one by one, within KINK_BUDGET_FACTOR times the budget.
            rest = np.concatenate(blocks)
            if s.measurer.n_evals - s.start + 4 * rest.size <= KINK_BUDGET_FACTOR * budget:
                s.loc.exhausted = False
                s.singles(rest)
                blocks = []
        if s.loc.widespread or (s.loc.exhausted and not s.loc.bad):
            _sample(s, blocks, n_samples)
        s.loc.failing_blocks.extend((int(b[0]), int(b.size)) for b in blocks)
        if s.loc.exhausted or s.loc.widespread:
            break
    if s.loc.exhausted:
        s.loc.unresolved_kinks = len(s.loc.failing_blocks)
    s.loc.n_evals = measurer.n_evals - s.start
    return s.loc


# ---- stage 0: wrong (nearly) everywhere? -------------------------------------------------
N_FIRST_SAMPLES = 8
SMALL_INPUT = 64  # coordinates: measured one by one when half of the first samples are wrong


def _wrong_everywhere(s: _Search, top: list[DirectionResult], smooth: np.ndarray) -> bool:
    """Whether nearly every coordinate is wrong (a wrong formula, factor or sign — the
    common case): a few single coordinates drawn at random are measured first, and
    when (nearly) all of them are wrong the structured search would only confirm it.
    Otherwise they stay as evidence and the search goes on."""
    if not any(r.finite and not r.ok and not r.kink for r in top):
        return False
    if smooth.size < 2 * N_FIRST_SAMPLES or not s.room(N_FIRST_SAMPLES):
        return False
    picks = np.sort(s.rng.choice(smooth, size=N_FIRST_SAMPLES, replace=False))
    found = len(s.loc.bad)
    s.singles(picks)
    if len(s.loc.bad) - found == N_FIRST_SAMPLES:
        s.loc.widespread = True
        return True
    rest = np.setdiff1d(smooth, picks)
    if (len(s.loc.bad) - found >= N_FIRST_SAMPLES // 2 and smooth.size <= SMALL_INPUT
            and s.room(rest.size)):
        # Half or more wrong in a small input: bisecting it would measure about
        # every coordinate twice over; measuring each once is cheaper and complete.
        s.singles(rest)
        bad = np.array([k for k, _ in s.loc.bad], dtype=int)
        if bad.size and smooth.size == int(np.prod(s.shape)) and len(s.shape) >= 2:
            # every coordinate measured: the region the wrong ones span, per axis
            index = np.unravel_index(bad, s.shape)
            sets = [None if np.unique(ix).size == size else np.unique(ix)
                    for ix, size in zip(index, s.shape)]
            if any(a is not None for a in sets):
                s.loc.axis_sets, s.loc.region_confirmed = sets, True
                s.loc.region_size = int(np.prod([size if a is None else a.size
                                                 for a, size in zip(sets, s.shape)]))
        return True
    if len(s.loc.bad) == found:
        # None of them wrong. When every projection disagrees by one common factor c
        # and c - 1 is below what one coordinate resolves (float32: ~1e-3), the error
        # is uniform and too small for any block to show more than the projections
        # did: localising would only spend the budget. The fresh draw decides.
        rs = [r for r in top if r.finite and not r.kink and not r.ok and r.numeric != 0]
        singles = [r for _, r in s.loc.good[-N_FIRST_SAMPLES:]]
        if len(rs) >= 2 and len(rs) == len(top) and singles:
            ratios = np.array([r.analytic / r.numeric for r in rs])
            c = float(np.median(ratios))
            # the same factor along every projection: its spread far below c - 1
            if (np.all(np.abs(ratios - c) <= 0.1 * abs(c - 1))
                    and min(r.rel_tol for r in singles) > abs(c - 1)):
                s.loc.uniform_factor = c
                return True
    return False


# ---- stage 1 + 2: along each axis, then the intersection ------------------------------
def _axis_region(s: _Search, smooth: np.ndarray) -> np.ndarray:
    """The smooth coordinates inside the product of each axis's failing index sets."""
    index = np.unravel_index(smooth, s.shape)  # per axis, each smooth coordinate's index
    sets: list[np.ndarray | None] = []
    for axis, size in enumerate(s.shape):
        sets.append(_axis_set(s, smooth, index[axis], size, axis) if size > 1 else None)
    s.loc.axis_sets = sets
    if any(chosen is not None and chosen.size == 0 for chosen in sets):
        s.loc.axis_sets = None  # no slab failed along some axis: nothing wrong here
        return smooth[:0]
    inside = np.ones(smooth.size, dtype=bool)
    for axis, chosen in enumerate(sets):
        if chosen is not None:
            inside &= np.isin(index[axis], chosen)
    if inside.all():
        return smooth
    outside = smooth[~inside]
    if not s.room(2):
        return smooth
    results = s.measure([outside, outside], "outside the region")
    if any(failing(r) for r in results):
        s.loc.axis_sets = None  # errors outside too: the region is not a product
        return smooth
    s.loc.region_confirmed = True
    return smooth[inside]


def _axis_set(s: _Search, smooth: np.ndarray, idx: np.ndarray, size: int,
              axis: int) -> np.ndarray | None:
    """Bisect the index ranges of one axis; the indices whose slabs fail, or None (dense)."""
    level = _halves(0, size)
    found: list[int] = []
    probed = False
    while level:
        blocks = [smooth[(idx >= lo) & (idx < hi)] for lo, hi in level]
        keep = [(b, blk) for b, blk in zip(level, blocks) if blk.size]
        if not keep or not s.room(len(keep)):
            return None  # no budget to narrow this axis: keep it whole
        results = s.measure([blk for _, blk in keep], f"axis {axis} slab")
        bad = [b for (b, _), r in zip(keep, results) if failing(r)]
        # dense: nearly every slab of a fine enough level fails, and the failing slabs
        # cover nearly the whole axis (not a narrow run of wrong indices, all of
        # whose slabs fail: 16 wrong columns of 128 bisected down to single columns)
        covered = sum(hi - lo for lo, hi in bad)
        if len(level) >= DENSE_LEVEL and len(bad) >= 0.9 * len(level) \
                and covered >= 0.9 * size:
            if probed:
                return None
            # Every slab fails: the errors are in (nearly) every index, or in a
            # sparse periodic set (every 16th feature fails every slab of 16).
            # Single indices drawn at random tell the two apart.
            probed = True
            picks = s.rng.choice(size, size=min(DENSE_PROBES, size), replace=False)
            blocks = [smooth[idx == p] for p in picks]
            blocks = [b for b in blocks if b.size]
            if blocks and s.room(len(blocks)):
                hits = sum(failing(r) for r in s.measure(blocks, f"axis {axis} index"))
                if hits >= 0.85 * len(blocks):
                    return None
        if len(level) >= DENSE_LEVEL and len(bad) == len(level) and _contiguous(bad) \
                and covered < 0.9 * size:
            # a run: every slab of a fine level fails and together they make one
            # interval (a gate's or a head's columns): it is the set, no need to
            # split it down to single indices (the complement is verified later)
            found.extend(range(bad[0][0], bad[-1][1]))
            break
        nxt = []
        for lo, hi in bad:
            if hi - lo == 1:
                found.append(lo)
            else:
                nxt.extend(_halves(lo, hi))
        level = nxt
    return np.array(sorted(found), dtype=int)


def _contiguous(blocks: list[tuple[int, int]]) -> bool:
    """Whether the (sorted) index ranges join into one interval."""
    return all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))


def _halves(lo: int, hi: int) -> list[tuple[int, int]]:
    mid = (lo + hi) // 2
    return [(lo, mid), (mid, hi)] if hi - lo > 1 else [(lo, hi)]


# ---- stage 3: flat bisection inside the region ------------------------------------------
def _bisect(s: _Search, coords: np.ndarray) -> list[np.ndarray]:
    """Breadth-first bisection of ``coords``; returns the blocks left failing when the
    budget ran out or the error proved widespread."""
    level = [coords]
    root = True
    retried = False
    while level:
        if not s.room(len(level)):
            s.loc.exhausted = True
            return level
        singles = np.array([b[0] for b in level if b.size == 1], dtype=int)
        blocks = [b for b in level if b.size > 1]
        results = s.measure(blocks, "block") if blocks else []
        n_found = len(s.loc.bad) + len(s.loc.kinks) + len(s.loc.unmeasurable)
        if singles.size:
            s.singles(singles)
        bad = [(b, r) for b, r in zip(blocks, results) if failing(r)]
        if (not bad and blocks and not root and not retried
                and len(s.loc.bad) + len(s.loc.kinks) + len(s.loc.unmeasurable) == n_found):
            # The parents failed but none of their halves did: errors in two
            # coordinates can cancel along one draw of signs. Draw again, once.
            retried = True
            results = s.measure(blocks, "block")
            bad = [(b, r) for b, r in zip(blocks, results) if failing(r)]
        smooth_bad = [b for b, r in bad if not r.kink]
        if len(smooth_bad) >= WIDESPREAD_LEVEL and len(smooth_bad) >= 0.9 * max(len(blocks), 1):
            s.loc.widespread = True
            return smooth_bad
        level = []
        for b, _ in bad:
            mid = b.size // 2
            level.extend([b[:mid], b[mid:]])
        root = False
    return []


def _sample(s: _Search, blocks: list[np.ndarray], n_samples: int) -> None:
    """Single coordinates from the failing blocks, then descents if they hold few bad ones."""
    if not blocks:
        return
    pool = np.concatenate(blocks)
    room = max((s.budget - (s.measurer.n_evals - s.start)) // 4, 0)
    take = min(n_samples, pool.size, max(room, 4))
    picks = np.sort(s.rng.choice(pool, size=take, replace=False))
    s.singles(picks)
    order = s.rng.permutation(len(blocks))
    for d in range(N_DESCENTS):  # each descent picks its failing halves at random
        if len(s.loc.bad) >= 3:
            break
        _descend(s, blocks[order[d % len(blocks)]])


def _descend(s: _Search, block: np.ndarray) -> None:
    """Follow failing halves of ``block`` down to one coordinate (``2 log2(n)`` measurements)."""
    while block.size > 1:
        if not s.room(2):
            s.loc.exhausted = True
            return
        mid = block.size // 2
        halves = [block[:mid], block[mid:]]
        results = s.measure(halves, "descent")
        bad = [(h, r) for h, r in zip(halves, results) if failing(r)]
        if not bad:
            results = s.measure(halves, "descent")
            bad = [(h, r) for h, r in zip(halves, results) if failing(r)]
            if not bad:
                return
        smooth = [h for h, r in bad if not r.kink and r.finite]
        pick = smooth or [h for h, _ in bad]
        block = pick[int(s.rng.integers(len(pick)))]
    s.singles(block)

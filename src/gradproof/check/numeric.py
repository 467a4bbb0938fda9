"""Numerical directional derivatives with an error estimate, and kink detection.

Everything the checker concludes rests on one measurement: for a scalar
``phi(x) = <dout, f(x)>`` and a direction ``u``, compare the analytic value
``A = <g, u>`` (``g = J^T dout`` from the user's backward) with the numerical
slope of ``t -> phi(x + t u)`` at ``t = 0``.

The measurement takes four evaluations, at ``t = +-h`` and ``t = +-h/2``:

* **Residuals, not slopes.** Rounding makes the step actually taken,
  ``(x + t u) - x``, differ from ``t u``; the analytic side is computed with the
  step actually taken, so ``R(h) = [phi(x+) - phi(x-) - <g, x+ - x->] / 2h`` is
  zero up to truncation and rounding for a correct gradient.
* **Truncation error, measured.** ``R(h) - R(h/2)`` estimates the O(h^2)
  error; Richardson extrapolation ``(4 R(h/2) - R(h)) / 3`` removes it.
* **Rounding error, modelled.** The noise on ``phi`` is bounded by
  ``eps * (sum |dout * out| + sum |g * x|)`` (a backward-error model: the
  forward computes the exact function of inputs perturbed by ``eps``); it
  enters divided by the step.
* **Kinks.** One-sided slopes ``(phi(x+) - phi(x)) / h`` and
  ``(phi(x) - phi(x-)) / h`` differ by ``h * phi''`` on a smooth function, which
  halves with the step; across a kink they differ by a jump that does not.
  Along a kinked direction any value between the two one-sided slopes is
  consistent with a valid subgradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .arrays import complex_step, inner, safe_norm

__all__ = ["Direction", "DirectionResult", "Measurer"]

# Safety factors on each part of the error estimate. The truncation estimate
# |R(h) - R(h/2)| already over-states the error of the extrapolated value (it
# is O(h^2), the extrapolation's error O(h^4)); the rounding model is a bound
# on a sum of random errors. Calibrated on the zoo's awkward cases.
SAFETY_TRUNCATION = 2.0
SAFETY_ROUNDING = 3.0
SAFETY_ANALYTIC = 8.0
# One-sided slopes of a smooth function differ by h*phi'' (ratio 1/2 when the
# step halves); across a kink the jump stays (ratio 1).
KINK_RATIO = 0.8
# A relative tolerance below which a step is not worth adapting (an ok needs at
# most 1e-2: see judge.RESOLUTION_CAP).
GOOD_ENOUGH = 1e-3
# Largest relative step the adaptation may reach.
MAX_STEP = 0.05


@dataclass
class Direction:
    """A direction ``u`` (float64, the input's shape) restricted to some coordinates.

    A sparse direction gives ``u=None`` with its support ``coords``, the
    ``values`` there and the input's ``shape``: the dense ``u`` is then built
    only while it is measured, so that a full check of n coordinates keeps
    O(n) memory, not O(n^2).
    """

    input: int
    u: np.ndarray | None
    label: str = "random projection"
    coords: np.ndarray | None = None  # flat indices of the support, None = all
    values: np.ndarray | None = None  # u at ``coords`` (sparse directions)
    shape: tuple[int, ...] | None = None  # the input's shape (sparse directions)

    def dense(self) -> np.ndarray:
        """``u`` as a float64 array of the input's shape."""
        if self.u is not None:
            return self.u
        u = np.zeros(int(np.prod(self.shape, dtype=np.int64)))
        u[self.coords] = self.values
        return u.reshape(self.shape)


def perturbed_points(
    inputs: Sequence[np.ndarray | None], directions: Sequence[Direction], steps: Sequence[float]
) -> tuple[list[tuple[int, np.ndarray]], list[list[np.ndarray]]]:
    """The points where ``phi`` is evaluated along each direction: ``x + t u`` for
    ``t`` in ``(h, -h, h/2, -h/2)``, rounded to the input's dtype; and the steps
    actually taken (``x_t - x`` in float64), four per direction."""
    points: list[tuple[int, np.ndarray]] = []
    deltas: list[list[np.ndarray]] = []
    for d, h in zip(directions, steps):
        x = inputs[d.input]
        x64 = x.astype(np.float64)
        u = d.dense()
        dl = []
        for t in (h, -h, h / 2, -h / 2):
            xt = (x64 + t * u).astype(x.dtype)
            points.append((d.input, xt))
            dl.append(xt.astype(np.float64) - x64)
        deltas.append(dl)
    return points, deltas


def smooth_tolerance(truncation: float, rounding: float, analytic_rounding: float) -> float:
    """The absolute tolerance on a smooth measurement's residual: each estimated error
    times its safety factor."""
    return (SAFETY_TRUNCATION * truncation + SAFETY_ROUNDING * rounding
            + SAFETY_ANALYTIC * analytic_rounding)


@dataclass
class DirectionResult:
    """The outcome of comparing analytic and numerical slopes along one direction."""

    direction: Direction
    analytic: float  # <g, u>
    numeric: float  # extrapolated slope of phi along u
    residual: float  # numeric - analytic
    tol: float  # absolute tolerance on the residual
    step: float  # the larger relative step h used
    truncation: float  # measured truncation error estimate
    rounding: float  # modelled rounding error of the numeric slope
    analytic_rounding: float
    kink: bool = False
    left: float = float("nan")  # one-sided slopes along u (valid when kink)
    right: float = float("nan")
    finite: bool = True
    ok: bool = True
    notes: list[str] = field(default_factory=list)

    magnitude: float = 0.0  # ||g * u||: the typical size of <g, u> for this direction
    one_sided: int = 0  # +1 / -1: only that side of x could be evaluated (a domain edge)
    natural: float = 0.0  # the function's own scale of a slope along u (see Measurer)

    def _denom(self) -> float:
        # A random projection can be small by cancellation; relative errors are
        # taken against the size of its terms, not only its value.
        return max(abs(self.analytic), abs(self.numeric), self.magnitude, self.tol, 1e-300)

    @property
    def rel_error(self) -> float:
        return abs(self.residual) / self._denom()

    @property
    def natural_tol(self) -> float:
        """The tolerance relative to the function's own scale (``inf`` if unknown):
        small when a tiny gradient is proven to be tiny."""
        return self.tol / self.natural if self.natural > 0 else float("inf")

    @property
    def rel_tol(self) -> float:
        return self.tol / self._denom()


def _aligned(d: Direction, inputs, sign: float) -> Direction | None:
    """``d`` with its weights at the input's exact zeros all of one sign (None if
    the input has no zero on ``d``'s support): moving every zero the same way keeps
    a function defined only on one side of 0 (sqrt, log, x**1.5) defined on that side."""
    x = inputs[d.input]
    if d.u is not None:
        zero = x == 0
        if not np.any(zero):
            return None
        return Direction(d.input, np.where(zero, sign * np.abs(d.u), d.u), d.label)
    zero = x.reshape(-1)[d.coords] == 0
    if not np.any(zero):
        return None
    values = np.where(zero, sign * np.abs(d.values), d.values)
    return Direction(d.input, None, d.label, d.coords, values, d.shape)


class Measurer:
    """Measures directional derivatives of ``phi`` around the base point.

    Parameters
    ----------
    evaluate:
        ``evaluate(list of (input index, perturbed array)) -> list of phi values``;
        each perturbed array replaces that input in a fresh copy of the inputs.
    inputs:
        The inputs at the base point.
    grads:
        The analytic gradients (float64, inputs' shapes), ``None`` where not checked.
    phi0:
        ``phi`` at the base point.
    noise:
        Per input, the rounding noise of one evaluation of ``phi`` when that
        input is perturbed.
    grad_noise:
        Per input, an empirical sample of the backward's own rounding noise
        (same shape as the gradient) or ``None``.
    step:
        Relative step per input (``h``); the actual perturbation of coordinate
        ``k`` is ``t * u_k``, where ``u`` already carries the coordinate's scale.
    """

    def __init__(
        self,
        evaluate: Callable[[list[tuple[int, np.ndarray]]], list[float]],
        inputs: Sequence[np.ndarray],
        grads: Sequence[np.ndarray | None],
        phi0: float,
        noise: Sequence[float],
        grad_noise: Sequence[np.ndarray | None],
        step: Sequence[float],
    ):
        self.evaluate = evaluate
        self.inputs = inputs
        self.grads = grads
        self.phi0 = phi0
        self.noise = noise
        # The function's own scale of a slope along a direction that moves each
        # coordinate by its perturbation scale: the rounding model's noise over eps
        # (sum of |dout * out|, |g * x| and |phi|), fixed before any adjustment.
        self.natural = [n / float(np.finfo(x.dtype).eps) if x is not None else 0.0
                        for n, x in zip(noise, inputs)]
        self.grad_noise = grad_noise
        self.step = step
        self.n_evals = 0
        # complex step: None (off), "try" (validate on the first adapted
        # measurements), "on" (validated: used for everything after)
        self.complex_evaluate: Callable | None = None
        self.complex_mode: str | None = None
        self.complex_note = ""

    def enable_complex_step(self, evaluate: Callable) -> None:
        """Use complex-step derivatives once they agree with central differences."""
        self.complex_evaluate = evaluate
        self.complex_mode = "try"

    # ------------------------------------------------------------------
    def measure(
        self, directions: Sequence[Direction], adapt: bool = False
    ) -> list[DirectionResult]:
        """Measure every direction (their evaluations are submitted as one batch).

        With ``adapt``, a step whose rounding or truncation error dominates is
        moved toward their balance; the adopted step of each input is then used
        for its later measurements.
        """
        if self.complex_mode == "on":
            return self._measure_complex(directions)
        results = self._measure_at(directions, [self.step[d.input] for d in directions])
        # A two-sided difference that leaves the function's domain on one side
        # became a one-sided one in ``_result``. Where both sides leave it (exact
        # zeros moved both ways, as a ReLU's output fed to sqrt), move the zeros
        # one way only, then shrink the step.
        for attempt in range(8):
            retry = [i for i, r in enumerate(results) if not r.finite]
            if not retry:
                break
            if attempt < 2:
                sign = 1.0 if attempt == 0 else -1.0
                dirs = [_aligned(results[i].direction, self.inputs, sign) for i in retry]
                steps = [results[i].step for i in retry]
                why = "zeros moved to one side: both sides of a two-sided step left the domain"
            else:
                dirs = [results[i].direction for i in retry]
                steps = [results[i].step / 16 for i in retry]
                why = "step shrunk: a larger step left the function's domain"
            keep = [k for k, d in enumerate(dirs) if d is not None]
            if not keep:
                continue
            redo = self._measure_at([dirs[k] for k in keep], [steps[k] for k in keep])
            for k, r in zip(keep, redo):
                if r.finite:
                    r.notes.append(why)
                    results[retry[k]] = r
        # Rounding and truncation errors trade off (eps/h against h^2); when one
        # dominates, move the step toward their balance and keep the better result.
        for _ in range(2 if adapt else 0):
            refine, steps = [], []
            for i, r in enumerate(results):
                if not r.finite or r.kink or r.rel_tol <= self._good_tol(r):
                    continue
                trunc = SAFETY_TRUNCATION * max(r.truncation, 1e-300)
                rnd = SAFETY_ROUNDING * max(r.rounding, 1e-300)
                ratio = (rnd / trunc) ** (1 / 3)
                if ratio < 0.5:
                    factor = float(np.clip(ratio, 1 / 64, 1 / 2))
                elif ratio > 2:
                    factor = float(np.clip(ratio, 2, 64))
                else:
                    continue
                new_step = min(r.step * factor, MAX_STEP)
                if new_step != r.step:
                    refine.append(i)
                    steps.append(new_step)
            if not refine:
                break
            redo = self._measure_at([directions[i] for i in refine], steps)
            for i, r in zip(refine, redo):
                if r.finite and r.tol < results[i].tol:
                    r.notes.append("step adapted to balance truncation and rounding")
                    results[i] = r
        if adapt:
            for i in {d.input for d in directions}:
                used = [r.step for r in results if r.direction.input == i and r.finite]
                if used:
                    self.step[i] = float(np.exp(np.mean(np.log(used))))
            if self.complex_mode == "try":
                results = self._validate_complex(directions, results)
        return results

    # ------------------------------------------------------------------
    def rounding_noise(self, d: Direction, eps: float | None = None) -> float:
        """The forward's rounding noise along ``d``, measured (4 forward calls).

        The slope of ``phi`` along ``d`` is measured twice, by central
        differences with a tiny step ``a = sqrt(eps)`` and with ``b = 4 a``
        (relative, of the input's dtype). Truncation makes them differ by
        ``O(b**2)``, far below ``eps / a`` for code that computes at its inputs'
        precision; rounding noise ``e`` makes them differ by about ``e / a``,
        and a forward that rounds its inputs to a coarser precision (a cast to
        float32 inside) does not move at all with the tiny step — when it moves
        at neither step though it should have, visibly in this dtype, the slope
        times ``b`` is returned (a forward that computes in float16). Both steps
        are tiny, so a kink near ``x`` (two nearly tied maxima) seldom lies
        between.
        Returns ``a * |S(a) - S(b)|``, an estimate of ``e`` (0 if not finite).
        ``eps`` replaces the dtype's (to test a coarser precision).
        """
        x = self.inputs[d.input]
        eps = float(np.finfo(x.dtype).eps) if eps is None else eps
        a = float(np.sqrt(eps))
        b = 4 * a  # close to a: a kink near x (a near-tie of a max) rarely falls between
        x64 = x.astype(np.float64)
        u = d.dense()
        points, taken = [], []
        for t in (a, -a, b, -b):
            xt = (x64 + t * u).astype(x.dtype)
            points.append((d.input, xt))
            taken.append(xt.astype(np.float64) - x64)
        values = self.evaluate(points)
        self.n_evals += len(points)
        if not all(np.isfinite(v) for v in values):
            return 0.0
        g = self.grads[d.input]
        slope = abs(inner(g, u))
        if all(v == self.phi0 for v in values) and slope * b > 64 * eps * self.natural[d.input]:
            # It did not move at all where it should have, visibly in this dtype: it
            # rounds its inputs coarser. What went missing is the noise level.
            return float(slope * b)
        # residuals against the analytic slope with the steps actually taken
        r_a = (values[0] - values[1] - inner(g, taken[0] - taken[1])) / (2 * a)
        r_b = (values[2] - values[3] - inner(g, taken[2] - taken[3])) / (2 * b)
        noise = a * abs(r_a - r_b)
        return float(noise) if np.isfinite(noise) else 0.0

    def _validate_complex(self, directions, fd_results):
        """Switch to complex step if it agrees with central differences everywhere.

        A forward that is not complex-analytic (abs, comparisons, max) gives
        wrong complex-step derivatives; central differences are the referee.
        """
        cs = self._measure_complex(directions)
        for c, f in zip(cs, fd_results):
            if not c.finite:
                self.complex_mode = None
                self.complex_note = (
                    "complex step not usable: the forward does not return complex outputs "
                    "for complex inputs; central differences were used"
                )
                return fd_results
            if f.finite and not f.kink and abs(c.numeric - f.numeric) > f.tol:
                self.complex_mode = None
                self.complex_note = (
                    "complex step disagrees with central differences (the forward is not "
                    "complex-analytic: abs, max or comparisons?); central differences were used"
                )
                return fd_results
        self.complex_mode = "on"
        self.complex_note = "complex-step derivatives (validated against central differences)"
        return cs

    def _measure_complex(self, directions: Sequence[Direction]) -> list[DirectionResult]:
        points = []
        effective = []
        for d in directions:
            x = self.inputs[d.input]
            cdtype = np.complex64 if x.dtype == np.float32 else np.complex128
            t = complex_step(x.dtype)
            xc = x.astype(cdtype) + 1j * (t * d.dense()).astype(x.dtype)
            points.append((d.input, xc))
            effective.append((t, xc.imag.astype(np.float64) / t))
        values = self.complex_evaluate(points)
        self.n_evals += len(points)
        out = []
        for d, (t, u_eff), v in zip(directions, effective, values):
            g = self.grads[d.input]
            eps = float(np.finfo(self.inputs[d.input].dtype).eps)
            analytic = inner(g, u_eff)
            terms = float(np.sum(np.abs(g.ravel() * u_eff.ravel())))
            a_round = eps * terms
            gn = self.grad_noise[d.input]
            if gn is not None:
                a_round += 3.0 * safe_norm(gn.ravel() * u_eff.ravel())
            if not np.isfinite(v):
                out.append(DirectionResult(d, analytic, float("nan"), float("nan"), float("inf"),
                                           t, 0.0, 0.0, a_round, finite=False, ok=True))
                continue
            numeric = v.imag / t
            rounding = 64 * eps * max(terms, abs(numeric))
            magnitude = safe_norm(g.ravel() * u_eff.ravel())
            tol = rounding + SAFETY_ANALYTIC * a_round
            r = DirectionResult(d, analytic, numeric, numeric - analytic, tol, t, 0.0, rounding,
                                a_round, magnitude=magnitude,
                                natural=self.natural[d.input])
            r.ok = abs(r.residual) <= tol
            out.append(r)
        return out

    def rejudge(self, r: DirectionResult) -> DirectionResult:
        """``r`` judged again at the current noise level of its input.

        Only a finite, two-sided, smooth measurement is rejudged (its rounding
        term is ``3 noise / h`` as in :meth:`_result`); a kink, a one-sided
        difference or a non-finite one is returned as it is.
        """
        if not r.finite or r.kink or r.one_sided:
            return r
        rounding = 3 * self.noise[r.direction.input] / r.step
        tol = smooth_tolerance(r.truncation, rounding, r.analytic_rounding)
        return replace(r, rounding=rounding, tol=tol, ok=abs(r.residual) <= tol,
                       notes=list(r.notes))

    def _good_tol(self, r: DirectionResult) -> float:
        """A relative tolerance not worth improving (1000 x the best a central
        difference can do in the input's precision)."""
        eps = float(np.finfo(self.inputs[r.direction.input].dtype).eps)
        return min(1000 * eps ** (2 / 3), GOOD_ENOUGH)

    # ------------------------------------------------------------------
    def _measure_at(
        self, directions: Sequence[Direction], steps: Sequence[float]
    ) -> list[DirectionResult]:
        points, deltas = perturbed_points(self.inputs, directions, steps)
        values = self.evaluate(points)
        self.n_evals += len(points)
        return [
            self._result(d, h, values[4 * j : 4 * j + 4], deltas[j])
            for j, (d, h) in enumerate(zip(directions, steps))
        ]

    def _one_sided(self, d, h, side, p0, p_h, p_h2, dl_h, dl_h2, analytic,
                   analytic_rounding, g, u) -> DirectionResult:
        """A one-sided difference on the side of ``x`` where the function is defined.

        ``D(h) = (phi(x + s h u) - phi(x)) / (s h)`` has an O(h) error; with
        ``h`` and ``h/2``, ``2 D(h/2) - D(h)`` removes it and ``|D(h) - D(h/2)|``
        measures it (also for the ``sqrt(h)`` errors met at a domain edge, where
        it is of the same order as the error itself).
        """
        a_h = float(inner(g, dl_h)) / (side * h)
        a_h2 = float(inner(g, dl_h2)) / (side * h / 2)
        r_h = (p_h - p0) / (side * h) - a_h
        r_h2 = (p_h2 - p0) / (side * h / 2) - a_h2
        residual = 2 * r_h2 - r_h
        truncation = abs(r_h - r_h2)
        rounding = 6 * self.noise[d.input] / h
        tol = smooth_tolerance(truncation, rounding, analytic_rounding)
        res = DirectionResult(d, analytic, analytic + residual, residual, tol, h, truncation,
                              rounding, analytic_rounding, magnitude=safe_norm(g * u),
                              one_sided=int(side), natural=self.natural[d.input])
        res.ok = abs(residual) <= tol
        res.notes.append("one-sided difference: the other side leaves the function's domain")
        return res

    def _result(
        self, d: Direction, h: float, phis: Sequence[float], dl: Sequence[np.ndarray]
    ) -> DirectionResult:
        g = self.grads[d.input]
        p_h, p_mh, p_h2, p_mh2 = phis
        p0 = self.phi0
        dtype = self.inputs[d.input].dtype
        eps_in = float(np.finfo(dtype).eps)
        # analytic slopes with the steps actually taken
        a_h = float(inner(g, dl[0] - dl[1])) / (2 * h)
        a_h2 = float(inner(g, dl[2] - dl[3])) / h
        u = d.dense()
        analytic = float(inner(g, u))
        scale_gu = float(np.sum(np.abs(g * u)))
        analytic_rounding = eps_in * scale_gu
        gn = self.grad_noise[d.input]
        if gn is not None:
            analytic_rounding += 3.0 * safe_norm(gn * u)

        if not all(np.isfinite(v) for v in phis):
            for side, (pa, pb), (da, db) in ((1.0, (p_h, p_h2), (dl[0], dl[2])),
                                             (-1.0, (p_mh, p_mh2), (dl[1], dl[3]))):
                if np.isfinite(pa) and np.isfinite(pb) and np.isfinite(p0):
                    return self._one_sided(d, h, side, p0, pa, pb, da, db, analytic,
                                           analytic_rounding, g, u)
            return DirectionResult(
                d, analytic, float("nan"), float("nan"), float("inf"), h, 0.0, 0.0,
                analytic_rounding, finite=False, ok=False,
            )
        n_h = (p_h - p_mh) / (2 * h)
        n_h2 = (p_h2 - p_mh2) / h
        r_h = n_h - a_h
        r_h2 = n_h2 - a_h2
        residual = (4 * r_h2 - r_h) / 3
        truncation = abs(r_h - r_h2)
        noise = self.noise[d.input]
        rounding = 3 * noise / h
        magnitude = safe_norm(g * u)
        tol = smooth_tolerance(truncation, rounding, analytic_rounding)
        numeric = analytic + residual
        res = DirectionResult(
            d, analytic, numeric, residual, tol, h, truncation, rounding, analytic_rounding,
            magnitude=magnitude, natural=self.natural[d.input],
        )

        # one-sided slopes for kink detection
        right_h, left_h = (p_h - p0) / h, (p0 - p_mh) / h
        right_h2, left_h2 = (p_h2 - p0) / (h / 2), (p0 - p_mh2) / (h / 2)
        jump_h, jump_h2 = right_h - left_h, right_h2 - left_h2
        jump_noise = SAFETY_ROUNDING * 4 * noise / h
        if (
            abs(jump_h2) > max(jump_noise, tol)
            and abs(jump_h2) > KINK_RATIO * abs(jump_h)
            and abs(residual) > tol
        ):
            res.kink = True
            res.left, res.right = left_h2, right_h2
            # one-sided differences have O(h) truncation error: measure it
            one_sided_err = max(abs(right_h - right_h2), abs(left_h - left_h2))
            ktol = (
                2 * one_sided_err
                + SAFETY_ROUNDING * 2 * rounding
                + SAFETY_ANALYTIC * analytic_rounding
            )
            lo, hi = min(left_h2, right_h2), max(left_h2, right_h2)
            res.tol = ktol
            res.ok = lo - ktol <= a_h2 <= hi + ktol
            if res.ok:
                res.residual = 0.0
                res.numeric = analytic
            else:
                nearest = lo if a_h2 < lo else hi
                res.residual = nearest - a_h2
                res.numeric = nearest
            return res
        res.ok = abs(residual) <= tol
        return res

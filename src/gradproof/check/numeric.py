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
from dataclasses import dataclass, field

import numpy as np

from .arrays import inner, safe_norm

__all__ = ["Direction", "DirectionResult", "Measurer"]

# Safety factors on each part of the error estimate. The truncation estimate
# |R(h) - R(h/2)| already over-states the error of the extrapolated value (it
# is O(h^2), the extrapolation's error O(h^4)); the rounding model is a bound
# on a sum of random errors. Calibrated on the zoo's awkward cases.
SAFETY_TRUNCATION = 2.0
SAFETY_ROUNDING = 8.0
SAFETY_ANALYTIC = 8.0
# One-sided slopes of a smooth function differ by h*phi'' (ratio 1/2 when the
# step halves); across a kink the jump stays (ratio 1).
KINK_RATIO = 0.8
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

    def _denom(self) -> float:
        # A random projection can be small by cancellation; relative errors are
        # taken against the size of its terms, not only its value.
        return max(abs(self.analytic), abs(self.numeric), self.magnitude, self.tol, 1e-300)

    @property
    def rel_error(self) -> float:
        return abs(self.residual) / self._denom()

    @property
    def rel_tol(self) -> float:
        return self.tol / self._denom()


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
        # Steps that left the function's domain (NaN/Inf) are shrunk; steps whose
        # measured truncation error dominates are refined once.
        for _ in range(6):
            retry = [i for i, r in enumerate(results) if not r.finite]
            if not retry:
                break
            redo = self._measure_at(
                [directions[i] for i in retry], [results[i].step / 16 for i in retry]
            )
            for i, r in zip(retry, redo):
                r.notes.append("step shrunk: a larger step left the function's domain")
                results[i] = r
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
            t = 1e-8 if x.dtype == np.float32 else 1e-20
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
                                a_round, magnitude=magnitude)
            r.ok = abs(r.residual) <= tol
            out.append(r)
        return out

    def _good_tol(self, r: DirectionResult) -> float:
        """A relative tolerance not worth improving (1000 x the best a central
        difference can do in the input's precision)."""
        eps = float(np.finfo(self.inputs[r.direction.input].dtype).eps)
        return 1000 * eps ** (2 / 3)

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
            return DirectionResult(
                d, analytic, float("nan"), float("nan"), float("inf"), h, 0.0, 0.0,
                analytic_rounding, finite=False, ok=True,
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
        tol = (
            SAFETY_TRUNCATION * truncation
            + SAFETY_ROUNDING * rounding
            + SAFETY_ANALYTIC * analytic_rounding
        )
        numeric = analytic + residual
        res = DirectionResult(
            d, analytic, numeric, residual, tol, h, truncation, rounding, analytic_rounding,
            magnitude=magnitude,
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

"""check_vjp: measure, then judge, then report.

1. **Call contract and side effects** (:mod:`.sidechecks`): the forward once
   on copies of the inputs, the backward with a random upstream gradient;
   structure, shape, dtype, finiteness; inputs, cache and upstream gradient
   left untouched; forward deterministic; backward repeatable and linear.
2. **Precision.** The forward's rounding noise is measured along a random
   direction per input; a forward noisier than its dtype promises (a float64
   function that computes in float32) is judged at the precision it has.
3. **Values.** Per input, ``<g, u>`` against the numerical slope along random
   directions ``u`` (:mod:`.numeric`); a failing projection is localised
   (:mod:`.localize`: along each axis, then inside) and, when no coordinate is
   isolated, re-measured on a fresh draw (new direction, new upstream
   gradient). ``mode="full"`` measures every coordinate instead.
4. **float64 re-check** of float32/float16 code (``upcast``): the same code on
   float64 copies (a backward that returns float32 whatever its inputs, upcast),
   measured before anything is concluded. float32 code that no re-check can
   prove is judged again at its forward's measured rounding noise
   (:func:`_sharpen`), which for an accurate forward is 10-100x below the model.
5. **Judge** (:mod:`.judge`): each input's measurements become one frozen
   result, ``ok``, ``failed`` or ``inconclusive``; the report is assembled once.
"""

from __future__ import annotations

import inspect
import math
import numbers
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any

import numpy as np

from .._validate import boolean, choice, positive_int
from ..errors import CostWarning, InputError, InputTypeError, describe
from .arrays import (
    deepcopy_inputs,
    default_step,
    is_float_array,
    machine_eps,
    perturbation_scale,
)
from .calls import Call, CallError, TimeBudgetSpent, phi_of, time_budget
from .judge import (
    SAFETY_ZERO,
    Evidence,
    Judgement,
    judge_low_precision_ties,
    judge_values,
    judge_witness,
    worst_verdict,
)
from .localize import failing, kink_suspects_last, localize, random_weights, single_coordinates
from .numeric import MAX_STEP, Direction, Measurer, perturbed_points
from .patterns import factor_candidates
from .report import Finding, InputResult, Report
from .sidechecks import noise_levels, run_side_checks

__all__ = ["check_vjp", "check_grad"]

MODES = ("auto", "full")
METHODS = ("fd", "complex")
MAX_DIRECTIONS = 1000  # n_directions above this is a typo, not a check (each: 4 forward calls)
# mode="full" costs 4 forward calls per checked coordinate: a warning above the first
# figure, a refusal above the second unless force_full=True (a 300x300 input is 360,000)
FULL_WARN_CALLS = 20_000
FULL_MAX_CALLS = 200_000


def _resolve_wrt(wrt, forward: Callable, inputs: tuple, names: list[str | None]) -> set[int]:
    float_idx = {i for i, x in enumerate(inputs) if is_float_array(x)}
    if wrt is None:
        return float_idx
    if not isinstance(wrt, (int, np.integer, str, list, tuple, set, frozenset, range)) \
            or isinstance(wrt, bool):
        raise InputTypeError(
            f"wrt must be an input's position (int), its parameter name (str) or a list of "
            f"them, got {describe(wrt)}")
    items = [wrt] if isinstance(wrt, (int, np.integer, str)) else list(wrt)
    chosen = set()
    for item in items:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not -len(inputs) <= item < len(inputs):
                raise InputError(
                    f"wrt={wrt!r}: index {item} is out of range for {len(inputs)} inputs"
                )
            chosen.add(int(item) % len(inputs))
        elif isinstance(item, str):
            if item not in names:
                raise InputError(
                    f"wrt={wrt!r}: {item!r} is not a parameter name of the forward; "
                    f"its inputs are named {[n for n in names if n]}"
                )
            chosen.add(names.index(item))
        else:
            raise InputTypeError(
                f"wrt must name inputs by position (int) or parameter name (str), got {item!r}"
            )
    for i in chosen:
        if not is_float_array(inputs[i]):
            raise InputError(
                f"wrt names input {i} ({names[i] or 'unnamed'}), which is not a float array "
                f"({describe(inputs[i])}); only float arrays can be differentiated"
            )
    return chosen


def _param_names(forward: Callable, n: int) -> list[str | None]:
    try:
        params = list(inspect.signature(forward).parameters.values())
    except (TypeError, ValueError):
        return [None] * n
    names: list[str | None] = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            break
    names = names[:n]
    return names + [None] * (n - len(names))


def _checker_rng(seed: int | None) -> np.random.Generator:
    """The checker's own random stream.

    Derived with a spawn key so that ``seed=0`` does not reproduce the stream of
    ``np.random.default_rng(0)``, which users often draw their inputs from: an
    upstream gradient equal to the input makes ``x.T @ dout`` symmetric and
    hides a transposed gradient.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x67726164,)))


def check_vjp(
    forward: Callable,
    backward: Callable | None,
    *inputs: Any,
    wrt: int | str | Sequence[int | str] | None = None,
    mode: str = "auto",
    method: str = "fd",
    seed: int | None = 0,
    n_directions: int = 2,
    step: float | None = None,
    max_evals: int = 2000,
    executor: Executor | None = None,
    names: Sequence[str] | None = None,
    upcast: bool | tuple[Callable, Callable | None] = True,
    timeout: float | None = None,
    force_full: bool = False,
) -> Report:
    """Check a backward pass (a vector-Jacobian product) against numerical derivatives.

    Parameters
    ----------
    forward:
        ``forward(*inputs) -> (out, cache)``. ``out`` is an array, a scalar or a
        tuple of arrays. If ``cache`` is callable it is the backward (closure
        style): ``cache(dout) -> grads``.
    backward:
        ``backward(dout, cache) -> grads`` (``backward(*douts, cache)`` for tuple
        outputs): one gradient per input in order, ``None`` for inputs that are
        not differentiable; a single array when there is one input. ``None``
        in closure style.
    *inputs:
        The point at which to check. Float arrays are checked; anything else
        (integer labels, indices, dicts of options, Python numbers) is passed
        through untouched.
    wrt:
        Which inputs to check: positions or parameter names. Default: every
        float array.
    mode:
        ``"auto"``: random projections, bisection to localise mismatches
        (cheap: tens of forward calls for a correct function). ``"full"``:
        every coordinate measured on its own (4 forward calls per element; for
        small inputs and teaching).
    method:
        ``"fd"``: central differences with Richardson extrapolation.
        ``"complex"``: complex-step derivatives where the forward accepts
        complex inputs (no subtractive cancellation); falls back to ``"fd"``
        with a note when it cannot be used.
    seed:
        Seed of the random upstream gradients and directions.
    n_directions:
        Random projections per input in ``"auto"`` mode.
    step:
        Relative step; default ``eps ** (1/3)`` of each input's dtype.
    max_evals:
        Budget of forward calls for localising a mismatch, per input.
    executor:
        A :class:`concurrent.futures.Executor` to evaluate the forward calls in
        parallel (a process pool, a Dask client's executor).
    names:
        Names of the inputs for the report (default: the forward's parameter names).
    upcast:
        Re-check float32 inputs in float64 when the code is dtype-generic (the
        same forward and backward run on float64 copies compute in float64):
        float32 rounding limits what finite differences can resolve to about
        1e-3 relative, so a slightly wrong formula (a tanh-approximated GELU
        derivative, off by 8e-4) passes a float32 check; in float64 it is seen.
        A coordinate counts as wrong when float64 finds it wrong by more than
        ``eps32 ** (2/3)`` (2.4e-5 relative, the best a float32 central
        difference could do); smaller differences (float32-rounded constants)
        get a note. Code that computes in float32
        whatever its inputs (a cast, a torch or JAX float32 function) is
        detected and not re-checked (a note says so). A pair
        ``(forward64, backward64)`` gives the float64 version of the code
        explicitly (the PyTorch adapter passes the same function evaluated in
        torch.float64).
    timeout:
        A time budget in seconds (None: none). When it is spent, the inputs
        not yet judged end ``"inconclusive"`` with the reason "time budget
        spent after N forward calls". A forward that never returns is
        interrupted (SIGALRM) on POSIX in the main thread when no other
        interval timer runs; elsewhere the budget is checked between calls.
    force_full:
        Run ``mode="full"`` even above its hard cap of 200,000 forward calls
        (4 per checked coordinate; a warning is given above 20,000).

    Returns
    -------
    Report
        ``report.verdict`` is ``"ok"`` (every checked input proven right),
        ``"failed"`` (evidence of a bug) or ``"inconclusive"`` (not proven
        either way: the notes say why); ``report.ok`` is True only for ``"ok"``.
    """
    t0 = time.perf_counter()
    choice("mode", mode, MODES)
    choice("method", method, METHODS)
    if not callable(forward):
        raise InputTypeError(f"forward must be callable, got {describe(forward)}")
    if backward is not None and not callable(backward):
        if not _takes(forward, 1 + len(inputs)) and _takes(forward, len(inputs)):
            raise InputTypeError(
                f"backward must be callable, backward(dout, cache) -> grads, or None in "
                f"closure style, got {describe(backward)}")
        # closure style with the backward argument left out: it is the first input
        inputs = (backward, *inputs)
        backward = None
    _count(n_directions, "n_directions", MAX_DIRECTIONS)
    _count(max_evals, "max_evals")
    if seed is not None and (isinstance(seed, (bool, np.bool_))
                             or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InputError(f"seed must be None or an int >= 0, got {describe(seed)}")
    if step is not None and (isinstance(step, (bool, np.bool_))
                             or not isinstance(step, numbers.Real)):
        raise InputTypeError(f"step must be None or a relative step in (0, 1), got "
                             f"{describe(step)}")
    if timeout is not None and (isinstance(timeout, (bool, np.bool_))
                                or not isinstance(timeout, numbers.Real)):
        raise InputTypeError(f"timeout must be None or a number of seconds > 0, got "
                             f"{describe(timeout)}")
    if timeout is not None and not 0 < timeout < math.inf:
        raise InputError(f"timeout must be None or a number of seconds > 0, got {timeout!r}")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise InputTypeError(
            "executor must be a concurrent.futures.Executor (gradproof.process_pool(2), a "
            f"Dask client's get_executor()) or None, got {describe(executor)}")
    boolean("force_full", force_full)
    if not (isinstance(upcast, bool) or (
            isinstance(upcast, tuple) and len(upcast) == 2 and callable(upcast[0])
            and (upcast[1] is None or callable(upcast[1])))):
        raise InputError("upcast must be True, False or a pair (forward64, backward64) of "
                         f"callables, got {describe(upcast)}")
    if step is not None and not (0 < step < 1):
        raise InputError(f"step must be a relative step in (0, 1), got {step!r}")
    if not inputs:
        raise InputError("check_vjp needs at least one input after forward and backward")

    arg_names = list(names) if names is not None else _param_names(forward, len(inputs))
    if len(arg_names) != len(inputs):
        raise InputError(f"names must have one entry per input ({len(inputs)}), got {names!r}")
    checked = _resolve_wrt(wrt, forward, inputs, arg_names)
    if not checked:
        raise InputError(
            "no input to check: none of the inputs is a float array "
            f"(got {[describe(x) for x in inputs]}); pass float64 or float32 arrays"
        )
    for i in sorted(checked):
        if inputs[i].dtype.itemsize > 8:
            raise InputError(
                f"input {i} ({arg_names[i] or 'unnamed'}) has dtype {inputs[i].dtype}: the "
                "checker measures in float16, float32 or float64; convert it with "
                ".astype(np.float64)")
    if mode == "full":
        _full_mode_cost(inputs, checked, arg_names, force_full)
    rng = _checker_rng(seed)
    originals = deepcopy_inputs(inputs)
    call = Call(forward, backward, inputs, executor=executor)
    fname = getattr(forward, "__qualname__", getattr(forward, "__name__", ""))
    if "<locals>" in fname:
        fname = getattr(forward, "__name__", fname)
    base = [
        InputResult(index=i, name=arg_names[i], shape=tuple(np.shape(x)),
                    dtype=str(getattr(x, "dtype", type(x).__name__)), checked=i in checked,
                    verdict="ok" if i in checked else "skipped",
                    status="ok" if i in checked else "skipped")
        for i, x in enumerate(inputs)
    ]
    run = _Run(call, inputs, base, checked, rng, mode, method, seed, fname, t0)
    with time_budget(timeout):
        try:
            return _measure(run, forward, backward, originals, mode, method, seed,
                            n_directions, step, max_evals, executor, arg_names, upcast)
        except TimeBudgetSpent:
            return run.assemble(budget_spent=True)


def _count(value, name: str, most: int | None = None) -> int:
    value = positive_int(name, value)
    if most is not None and value > most:
        raise InputError(f"{name} must be a positive int <= {most}, got {value!r}")
    return value


def _takes(forward: Callable, n: int) -> bool:
    """Whether ``forward`` accepts ``n`` positional arguments (True when unknown)."""
    try:
        inspect.signature(forward).bind(*range(n))
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): cannot tell
        return True
    return True


def _full_mode_cost(inputs: tuple, checked: set[int], names: list, force: bool) -> None:
    """mode="full" measures each coordinate with 4 forward calls: say what that costs up
    front, and refuse a run of hours unless it is forced."""
    coords = sum(int(np.size(inputs[i])) for i in checked)
    calls = 4 * coords
    if calls <= FULL_WARN_CALLS:
        return
    sizes = ", ".join(f"{names[i] or f'input {i}'} {np.shape(inputs[i])}"
                      for i in sorted(checked))
    what = (f'mode="full" measures {coords:,} coordinates ({sizes}) with about {calls:,} '
            "forward calls")
    if calls > FULL_MAX_CALLS and not force:
        raise InputError(
            f"{what}, over the cap of {FULL_MAX_CALLS:,}: use mode=\"auto\" (random "
            "projections; tens of calls), check fewer inputs with wrt=, or pass "
            "force_full=True (with timeout= to bound it)")
    warnings.warn(f"{what}; mode=\"auto\" costs tens", CostWarning, stacklevel=3)


def _measure(run: _Run, forward, backward, originals, mode, method, seed, n_directions,
             step, max_evals, executor, arg_names, upcast) -> Report:
    """Stages 1 to 4 (see the module docstring), then the report."""
    call, inputs, checked, rng = run.call, run.inputs, run.checked, run.rng
    steps = [
        step if step is not None else (default_step(x.dtype) if is_float_array(x) else 0.0)
        for x in inputs
    ]  # updated by the measurer when it adapts a step
    float_inputs = [x if is_float_array(x) else None for x in inputs]
    scales = {i: perturbation_scale(inputs[i]) for i in checked}  # flat, per coordinate
    first_dirs: list[Direction] = []

    def start_first_measurement(side) -> None:
        # The auto mode's random directions are drawn as soon as the gradients'
        # contract is known; with an executor their evaluations start now and
        # run while this process goes on with the side checks.
        for i in sorted(checked):
            if side.grads.get(i) is None or inputs[i].dtype == np.float16:
                continue
            for _ in range(n_directions):
                u = random_weights(rng, inputs[i].size) * scales[i]
                first_dirs.append(Direction(i, u.reshape(inputs[i].shape)))
        if call.executor is not None:
            points, _ = perturbed_points(float_inputs, first_dirs,
                                         [steps[d.input] for d in first_dirs])
            call.prefetch(points)

    # ---- 1: contract and side effects ---------------------------------------
    try:
        side = run_side_checks(call, checked, rng, originals,
                               on_contract=start_first_measurement if mode == "auto" else None)
    except CallError as exc:
        return run.assemble(error=exc)
    run.side = side
    run.spend("contract")
    if side.fatal:
        return run.assemble()
    value_idx = [i for i in sorted(checked) if side.grads[i] is not None]
    if not value_idx:
        return run.assemble()
    grads64 = [side.grads[i].astype(np.float64) if i in value_idx else None
               for i in range(len(inputs))]
    measurer = Measurer(call.phi_batch, float_inputs, grads64, side.phi0, side.noise,
                        side.grad_noise, steps)
    if method == "complex":
        measurer.enable_complex_step(call.phi_complex_batch)
    shapes_for_factors = [(f"input {i}", np.shape(x)) for i, x in enumerate(inputs)]
    shapes_for_factors += [(f"output {j}", np.shape(o)) for j, o in enumerate(side.outs)]
    run.cands = factor_candidates(shapes_for_factors)
    evidence = {i: Evidence(i) for i in value_idx}
    run.evidence, run.steps, run.scales = evidence, measurer.step, scales  # a budget may end it
    for i in value_idx:
        if inputs[i].dtype == np.float16:
            evidence[i].skip_reason = (
                "float16 finite differences cannot resolve a gradient (an 11-bit mantissa: "
                "a central difference is good to ~1e-2 relative at best); float16 values "
                "are proven only by the float64 re-check of the same code")

    # ---- 2: the forward's precision, measured ---------------------------------
    measured_idx = [i for i in value_idx if not evidence[i].skip_reason]
    low_noise = _precision(measurer, measured_idx, scales, rng, inputs, evidence, step)
    run.spend("precision")

    # ---- 3: values ----------------------------------------------------------
    fresh: list[Measurer] = []

    def fresh_measurer(k: int) -> Measurer:
        while len(fresh) <= k:
            fresh.append(_fresh_draw(call, originals, rng, measurer, low_noise))
        return fresh[k]

    def settle(i: int, noise_ratio: float = 1.0) -> None:
        """Input ``i`` has a failing projection: localise, then confirm on fresh draws
        (whose noise levels are scaled by ``noise_ratio``, as the measurer's were)."""
        ev = evidence[i]
        ev.loc = localize(measurer, i, inputs[i].shape, scales[i], rng, budget=max_evals,
                          groups=kink_suspects_last(inputs[i]), top=ev.top)
        _measure_ties(measurer, i, inputs[i].shape, scales[i],
                      [k for k, _ in ev.loc.kinks], ev)
        run.spend("localisation")
        smooth_failed = any(r.finite and not r.ok and not r.kink for r in ev.top)
        if smooth_failed and not ev.loc.bad:
            # up to FRESH_DRAWS independent draws (new dout, new directions):
            # one failing again confirms the failure
            for k in range(FRESH_DRAWS):
                dirs = [Direction(i, (random_weights(rng, inputs[i].size)
                                      * scales[i]).reshape(inputs[i].shape), "fresh draw")
                        for _ in range(2)]
                again = fresh_measurer(k)
                kept = again.noise[i]
                again.noise[i] = kept * noise_ratio
                ev.confirm += again.measure(dirs, adapt=True)
                again.noise[i] = kept
                if any(r.finite and not r.ok and not r.kink for r in ev.confirm):
                    break
            run.spend("confirmation")

    if mode == "full":
        for i in measured_idx:
            ev = evidence[i]
            ev.full = single_coordinates(measurer, i, inputs[i].shape, scales[i],
                                         np.arange(inputs[i].size))
            kinked = [k for k, r in enumerate(ev.full) if r.finite and r.kink]
            _measure_ties(measurer, i, inputs[i].shape, scales[i], kinked, ev)
            run.spend("coordinates")
            run.done.add(i)
    else:
        mine_all = measurer.measure([d for d in first_dirs if d.input in measured_idx],
                                    adapt=True)
        run.spend("projections")
        for i in measured_idx:
            ev = evidence[i]
            ev.top = [r for r in mine_all if r.direction.input == i]
            if any(failing(r) for r in ev.top):
                settle(i)
            run.done.add(i)
    run.done.update(i for i in value_idx if evidence[i].skip_reason)
    for i in measured_idx:
        evidence[i].perturbed_errors = list(call.perturbed_errors)
    if method == "complex":
        run.notes.append(measurer.complex_note)
        if measurer.complex_mode != "on":
            run.method = "fd"
    run.steps = measurer.step
    run.evidence = evidence
    run.scales = scales

    # ---- 4: float32/float16 code re-checked in float64 -------------------------
    if upcast is not False:
        pair = upcast if isinstance(upcast, tuple) else None
        _witness(run, forward, backward, pair,
                 dict(mode=mode, method=method, seed=seed, n_directions=n_directions,
                      max_evals=max_evals, executor=executor, names=arg_names))
    # ---- 4b: float32 code no float64 re-check can prove: its measured noise ------
    rechecked = run.witness[0] if run.witness is not None else {}
    for i in measured_idx:
        ev = evidence[i]
        if (mode == "auto" and inputs[i].dtype == np.float32 and i not in rechecked
                and i not in side.status and not side.problems and ev.top and ev.loc is None
                and not ev.eps_eff and not any(failing(r) for r in ev.top)):
            ratio = _sharpen(measurer, i, inputs[i], scales[i], rng, ev)
            run.spend("precision")
            if ratio < 1.0:
                run.notes.append(
                    f"input {run.base[i].label}: with no re-check at a higher precision, "
                    f"judged at its forward's measured rounding noise, {1 / ratio:.2g} times "
                    f"below the rounding model ({SHARPEN_PROBES} probes, safety "
                    f"{NOISE_SAFETY:g})")
                if any(failing(r) for r in ev.top):
                    settle(i, ratio)
    # ---- 4c: a gradient that looks zero: does the function move at all? ----------
    for i in measured_idx:
        ev = evidence[i]
        measured = ev.full if ev.full is not None else ev.top
        smooth = [r for r in measured if r.finite and not r.kink]
        if smooth and all(abs(r.analytic) <= SAFETY_ZERO * r.analytic_rounding for r in smooth):
            ev.still = _still(measurer, i, inputs[i], scales[i], rng)
            run.spend("precision")
    # ---- 5 + 6: judge and assemble ---------------------------------------------
    return run.assemble()


def _sharpen(measurer: Measurer, i: int, x: np.ndarray, scale: np.ndarray, rng,
             ev: Evidence) -> float:
    """Judge float32 code that no float64 re-check can prove at its measured noise.

    The rounding model (a backward-error bound) sits 10-100x above the actual
    rounding of an accurate float32 forward, and for code that computes in
    float32 whatever its inputs nothing else resolves finer: a 0.3 % error on
    5 % of the coordinates passed. The noise along ``SHARPEN_PROBES`` random
    directions like the test directions is measured (each probe is independent
    of any bug: a wrong gradient adds the same amount at both of its steps);
    the largest, times ``NOISE_SAFETY``, replaces the model, never below
    ``1 / SHARPEN_CAP`` of it, and the projections are judged again. Returns
    the ratio of the new noise level to the model (1.0: unchanged).
    """
    model = measurer.noise[i]
    if not (np.isfinite(model) and model > 0):
        return 1.0
    probes = []
    for _ in range(SHARPEN_PROBES):
        u = (random_weights(rng, x.size) * scale).reshape(x.shape)
        probes.append(measurer.rounding_noise(Direction(i, u, "rounding noise")))
    if not all(np.isfinite(p) for p in probes):
        return 1.0
    sharp = max(NOISE_SAFETY * max(probes), model / SHARPEN_CAP)
    if sharp >= model / 2:
        return 1.0
    measurer.noise[i] = sharp
    ev.top = [measurer.rejudge(r) for r in ev.top]
    return sharp / model


def _still(measurer: Measurer, i: int, x: np.ndarray, scale: np.ndarray, rng
           ) -> tuple[float, float] | None:
    """``(moved, rounding)``: the largest ``|phi(x + H u) - phi(x - H u)|`` over
    ``STILL_DIRECTIONS`` random directions with a large step ``H = STILL_STEP``, and
    what the forward's rounding alone can make of it; None if a value is not finite.

    A function that does not depend on the input (a bias before a normalisation, an
    unused argument, masked entries) does not move beyond rounding however large the
    step; one with a gradient that is merely tiny (1e-12 of its scale) moves in
    proportion to the step, and a step as large as each coordinate's own scale (1e5
    times the usual one in float64) shows it. The central difference cancels even
    orders, so a symmetric stationary point stays still.
    """
    moved = 0.0
    x64 = x.astype(np.float64)
    for _ in range(STILL_DIRECTIONS):
        u = (random_weights(rng, x.size) * scale).reshape(x.shape)
        values = measurer.evaluate([(i, (x64 + t * u).astype(x.dtype))
                                    for t in (STILL_STEP, -STILL_STEP)])
        measurer.n_evals += 2
        if not all(np.isfinite(v) for v in values):
            return None
        moved = max(moved, abs(values[0] - values[1]))
    return moved, STILL_ROUNDING * measurer.noise[i]


# ----------------------------------------------------------------------
STILL_DIRECTIONS = 2  # directions of the large-step test of a gradient that looks zero
STILL_STEP = 1.0  # its step, relative to each coordinate's perturbation scale
STILL_ROUNDING = 8.0  # how many rounding noises of phi a still function may move
FRESH_DRAWS = 2  # independent draws that may confirm a failure no block isolated
SHARPEN_PROBES = 4  # measured-noise probes before float32-only code is judged at that noise
SHARPEN_CAP = 30.0  # the measured noise replaces the model down to model / SHARPEN_CAP
NOISE_SAFETY = 4.0  # on a measured rounding noise used in place of the model
LOW_PRECISION_RATIO = 30.0  # measured noise this many times the dtype's model: low precision
COARSER = (("float32", float(np.finfo(np.float32).eps)),
           ("float16", float(np.finfo(np.float16).eps)),
           ("bfloat16", 2.0 ** -7))


def _precision(measurer: Measurer, idx: list[int], scales, rng, inputs, evidence,
               step: float | None) -> float:
    """Measure the forward's rounding noise per input; where it is far above what
    the dtype promises, judge at the precision the forward has: the noise level
    and the step are raised, and a note says so. Returns the largest ratio."""
    worst = 1.0
    for i in idx:
        x = inputs[i]
        order, bounds = kink_suspects_last(x)
        smooth = order[:bounds[1]]  # likely kinks (zeros, ties) would look like noise
        if smooth.size == 0:
            continue
        model = measurer.noise[i]
        measured = np.inf
        for _ in range(2):  # a second direction must agree before low precision is claimed
            # along the gradient's signs: a large slope, so that a forward that does not
            # move at the tiny step (it rounds its inputs coarser) shows
            u = np.zeros(x.size)
            signs = np.sign(measurer.grads[i].reshape(-1)[smooth])
            signs[signs == 0] = 1.0
            u[smooth] = signs * np.abs(random_weights(rng, smooth.size)) * scales[i][smooth]
            measured = min(measured, measurer.rounding_noise(
                Direction(i, u.reshape(x.shape), "rounding noise")))
            if not (model > 0 and measured > LOW_PRECISION_RATIO * model):
                break
        if np.isfinite(measured) and NOISE_SAFETY * measured > model:
            # The rounding model is a bound for a forward computed at its dtype's
            # precision; an ill-conditioned one (logsumexp(x) - x0 near 0 cancels
            # digits of the large terms) rounds more than it says: use what was
            # measured, with a safety factor.
            measurer.noise[i] = NOISE_SAFETY * measured
        if not (np.isfinite(model) and model > 0 and np.isfinite(measured)
                and measured > LOW_PRECISION_RATIO * model):
            continue
        ratio = measured / model
        worst = max(worst, ratio)
        # Which coarser precision does it compute at? The finest candidate at
        # whose own steps the forward moves as smoothly as that precision allows.
        eps = machine_eps(x.dtype)
        natural = measurer.natural[i]
        eps_eff, like = 0.1, "worse than bfloat16"
        for name, cand in COARSER:
            if cand <= eps:
                continue
            noise = measurer.rounding_noise(Direction(i, u.reshape(x.shape)), eps=cand)
            if noise <= LOW_PRECISION_RATIO * cand * natural:
                eps_eff, like = cand, name
                break
        measurer.noise[i] = max(4 * measured, 2 * eps_eff * natural)
        if step is None:
            measurer.step[i] = min(eps_eff ** (1 / 3), MAX_STEP)
        evidence[i].eps_eff = eps_eff
        evidence[i].precision_note = (
            f"input {i}: the forward is less precise than its {x.dtype} inputs: its rounding "
            f"noise, measured, is {ratio:.2g} times what {x.dtype} promises; it computes like "
            f"{like} (eps ~{eps_eff:.1g}) and is judged at that precision "
            f"(step {measurer.step[i]:.2g})")
    return worst


def _fresh_draw(call: Call, originals: tuple, rng, measurer: Measurer,
                low_noise: float) -> Measurer:
    """A second, independent measurement context: new upstream gradient, new cache."""
    call.stage = "the fresh draw's forward and backward"
    outs, cache = call.forward(deepcopy_inputs(originals))
    douts = call.make_douts(outs, rng)
    raw = call.backward(tuple(None if d is None else (np.copy(d) if isinstance(d, np.ndarray)
                                                      else d) for d in douts), cache)
    grads = call.grads_per_input(raw)
    grads64 = [g.astype(np.float64).reshape(np.shape(originals[i]))
               if measurer.grads[i] is not None and isinstance(g, np.ndarray)
               and g.size == np.size(originals[i]) else None for i, g in enumerate(grads)]
    phi0 = phi_of(outs, douts)
    noise = noise_levels(outs, douts, {i: g for i, g in enumerate(grads64) if g is not None},
                         originals, phi0)
    if low_noise > 1:  # keep the measured low-precision noise levels
        noise = [max(n, old) for n, old in zip(noise, measurer.noise)]
    return Measurer(lambda points: call.phi_batch(points, douts=douts), measurer.inputs,
                    grads64, phi0, noise, measurer.grad_noise, list(measurer.step))


def _measure_ties(measurer: Measurer, i: int, shape, scale, kinked: list[int],
                  ev: Evidence) -> None:
    """Move every kinked coordinate together: along that direction a function whose
    kinks are ties (max, min, max-pool) is smooth, and every valid subgradient
    gives the same derivative there, so a mismatch is a real bug (e.g. the
    gradient copied to every tied maximum instead of shared out)."""
    if len(kinked) < 2:
        return
    u = np.zeros(scale.size)
    u[kinked] = scale[kinked]
    (ev.ties,) = measurer.measure([Direction(i, u.reshape(shape), "all kinks together")])
    ev.n_ties = len(kinked)


class _Run:
    """One check's state between measuring and judging; ``assemble`` builds the report."""

    def __init__(self, call, inputs, base, checked, rng, mode, method, seed, fname, t0):
        self.call, self.inputs, self.base, self.checked = call, inputs, base, checked
        self.rng, self.mode, self.method, self.seed, self.fname, self.t0 = \
            rng, mode, method, seed, fname, t0
        self.side = None
        self.evidence: dict[int, Evidence] = {}
        self.scales: dict = {}
        self.steps: list[float] = []
        self.cands: list = []
        self.notes: list[str] = []
        self.witness = None  # (report, floor per input, low-precision name per input)
        self.extra_evals = 0
        self.done: set[int] = set()  # inputs whose measurements are complete
        self.calls: dict[str, int] = {}  # forward calls per phase
        self._marked = 0

    def spend(self, phase: str) -> None:
        """Book the forward calls made since the last booking to ``phase``."""
        n = self.call.n_forward
        if n > self._marked:
            self.calls[phase] = self.calls.get(phase, 0) + n - self._marked
        self._marked = n

    def assemble(self, error: CallError | None = None, budget_spent: bool = False) -> Report:
        self.call.cancel_prefetch()
        problems: list[Finding] = []
        kinks = []
        notes: list[str] = []
        results = list(self.base)
        side = self.side
        if error is not None:
            problems.append(Finding(str(error), error.kind))
            for i in self.checked:
                results[i] = replace(results[i], verdict="failed", status="ERROR",
                                     reason=str(error))
        if side is not None:
            problems.extend(side.problems)
            notes.extend(side.notes)
        spent = (f"time budget spent after {self.call.n_forward + self.extra_evals} forward "
                 "calls") if budget_spent else ""
        if spent:
            notes.append(f"{spent}: the inputs not yet judged are inconclusive; pass a "
                         "larger timeout= to finish the check")
        for i in sorted(self.checked):
            if spent and (side is None or (i in self.evidence and i not in self.done
                                           and i not in side.status)):
                results[i] = replace(results[i], verdict="inconclusive", status="inconclusive",
                                     reason=spent)
                continue
            if error is not None or side is None:
                break
            res = results[i]
            if i in self.evidence:
                res = replace(res, analytic=side.grads[i], step=float(self.steps[i]))
                j = judge_values(res, self.evidence[i], self.inputs[i], self.scales[i],
                                 self.cands, self.inputs)
                if self.witness is not None and i in self.witness[0]:
                    witness_report, floors, low = self.witness
                    w = witness_report[i]
                    j = judge_witness(j, w[0], w[1], floors[i], w[2], low[i])
                elif self.inputs[i].dtype in (np.float32, np.float16):
                    j = judge_low_precision_ties(j, str(self.inputs[i].dtype))
            else:
                j = Judgement(res)
                if side.grads.get(i) is None and i not in side.status:
                    why = ("values not checked: " + _fatal_kind(side)) if side.fatal else (
                        "the backward returned None for this float input: its gradient was "
                        "not checked (pass wrt= to name only the differentiable inputs)")
                    j.result = replace(res, verdict="inconclusive", status="not checked",
                                       reason=why)
                elif side.fatal:
                    j.result = replace(res, verdict="inconclusive", status="not checked",
                                       reason="values not checked: " + _fatal_kind(side))
            if i in side.status:
                status = j.result.status if j.result.status == "FAIL" else side.status[i]
                j.result = replace(j.result, verdict="failed", status=status)
            results[i] = j.result
            problems.extend(j.problems)
            kinks.extend(j.kinks)
            notes.extend(j.notes)
        notes.extend(self.notes)
        verdicts = [r.verdict for r in results if r.checked]
        if any(p.kind not in ("note",) for p in problems):
            verdicts.append("failed")
        self.spend("other")
        if self.extra_evals:
            self.calls["float64 re-check"] = self.extra_evals
        return Report(
            calls=dict(self.calls),
            verdict=worst_verdict(verdicts),
            n_evals=self.call.n_forward + self.extra_evals,
            n_backward=self.call.n_backward,
            inputs=results, problems=problems, kinks=kinks, notes=notes,
            mode=self.mode, method=self.method, seed=self.seed,
            seconds=time.perf_counter() - self.t0, function=self.fname,
        )


def _fatal_kind(side) -> str:
    kinds = {p.kind for p in side.problems}
    if "nondeterministic" in kinds:
        return "the forward is not deterministic"
    if "nan" in kinds:
        return "the forward's output has NaN/Inf"
    return "a problem above stops the check"


# ----------------------------------------------------------------------
# float32 code re-checked in float64
_TINY = 1e-8  # relative: float32 rounds it away (half an ulp is >= 3e-8), float64 keeps it
_RESOLVED = 1e-5  # relative: float32 resolves it


def _dtype_generic(forward, backward, up: tuple, cand: list[int], seed
                   ) -> tuple[str, int, bool]:
    """Whether the forward computes in float64 on float64 inputs: ``("", calls, cast)`` if
    so, else ``(reason, calls, False)``.

    Its outputs must be float64, its gradients float64 or the low precision
    (``cast``: a backward that returns float32 whatever its inputs; its gradients
    are then upcast for the re-check, whose tolerance includes the backward's
    measured rounding, and whose failures count only above the low precision's
    floor), and the slope of ``phi`` along a
    direction measured with a step far below float32's resolution (1e-8
    relative) must match the slope measured with a step float32 resolves
    (1e-5): code that casts to float32 inside rounds the tiny step away and
    does not move at all. (Both slopes are numerical: a wrong gradient cannot
    disguise itself as a float32 computation.)
    """
    call = Call(forward, backward, up)
    rng = _checker_rng(seed)
    try:
        outs, cache = call.forward(deepcopy_inputs(up))
        douts = call.make_douts(outs, rng)
        grads = call.grads_per_input(call.backward(douts, cache))
    except CallError as exc:
        return f"on float64 inputs, {exc}", call.n_forward, False
    if any(np.issubdtype(o.dtype, np.floating) and o.dtype != np.float64 for o in outs):
        return "the outputs are not float64 for float64 inputs", call.n_forward, False
    dirs = {}
    cast = False
    for i in cand:
        g = grads[i]
        if not (isinstance(g, np.ndarray) and g.shape == up[i].shape
                and g.dtype in (np.float64, np.float32, np.float16)):
            return (f"the gradient of input {i} is not a float array of its shape",
                    call.n_forward, False)
        cast = cast or g.dtype != np.float64
        g = g.astype(np.float64)
        signs = np.where(g > 0, 1.0, np.where(g < 0, -1.0, rng.choice([-1.0, 1.0], g.shape)))
        dirs[i] = signs * np.abs(up[i])  # zeros stay put: float32 could see them move

    def slope(t: float) -> float:
        phis = []
        for sign in (1.0, -1.0):
            args = list(deepcopy_inputs(up))
            for i, u in dirs.items():
                args[i] = up[i] + sign * t * u
            outs_t, _ = call.forward(tuple(args))
            phis.append(phi_of(outs_t, douts))
        return (phis[0] - phis[1]) / (2 * t)

    try:
        big, tiny = slope(_RESOLVED), slope(_TINY)
    except CallError as exc:
        return f"on float64 inputs, {exc}", call.n_forward, False
    if not (np.isfinite(big) and np.isfinite(tiny) and big != 0):
        return "the output does not move along a test direction", call.n_forward, False
    if not abs(tiny - big) <= 0.05 * abs(big):
        return ("a perturbation below float32's resolution does not move the output as a "
                "larger one does: the code computes in float32 (or lower) whatever its "
                "inputs"), call.n_forward, False
    return "", call.n_forward, cast


def _upcast_gradients(backward):
    """``backward`` with its float32/float16 gradients returned as float64 (exactly)."""

    def upcast(g):
        if isinstance(g, np.ndarray) and g.dtype in (np.float32, np.float16):
            return g.astype(np.float64)
        return g

    def backward64(*args):
        grads = backward(*args)
        if isinstance(grads, (tuple, list)):
            return type(grads)(upcast(g) for g in grads)
        return upcast(grads)

    return backward64



def _witness(run: _Run, forward, backward, pair, options: dict) -> None:
    """Re-check the float32/float16 inputs on float64 copies of the same code.

    Runs before anything is concluded; :func:`.judge.judge_witness` combines its
    results with the low-precision measurements. Skipped for inputs with a
    contract or side-effect finding, or a wrong coordinate already isolated.
    """
    side, inputs = run.side, run.inputs
    if any(p.kind != "ties" for p in side.problems):
        return
    cand = [i for i, ev in run.evidence.items()
            if inputs[i].dtype in (np.float32, np.float16) and i not in side.status
            and not (ev.loc is not None and ev.loc.bad)]
    if not cand:
        return
    up = tuple(x.astype(np.float64) if is_float_array(x) and x.dtype in (np.float32, np.float16)
               else x for x in inputs)
    cast = False
    if pair is not None:  # the float64 version of the code, given
        forward, backward = pair
        reason, calls = "", 0
    else:
        try:
            reason, calls, cast = _dtype_generic(forward, backward, up, cand, options["seed"])
        except Exception as exc:  # noqa: BLE001 - any failure means: not dtype-generic
            reason, calls = f"on float64 inputs the code raised {type(exc).__name__}: {exc}", 0
    run.extra_evals += calls
    if reason:
        run.notes.append(f"float32/float16 inputs not re-checked in float64: {reason}; "
                         "their verdict rests on low-precision measurements alone, whose "
                         "tolerance (the table's) is relative to the gradient's norm: an "
                         "error e on a fraction d of the coordinates weighs about e*sqrt(d)")
        return
    if cast:  # a float32 backward behind a float64 forward: its values, upcast, are judged
        backward = _upcast_gradients(backward)
    options = {**options, "wrt": cand}
    try:
        witness = check_vjp(forward, backward, *up, upcast=False, **options)
    except Exception as exc:  # noqa: BLE001 - the low-precision verdict stands alone
        run.notes.append(f"float32/float16 inputs not re-checked in float64: {exc}")
        return
    run.extra_evals += witness.n_evals
    value_kinds = {"mismatch", "factor", "sign", "zeros", "slice", "transpose", "ties",
                   "pattern", "unlocated"}
    other = [p for p in witness.problems if p.kind not in value_kinds]
    if other:
        run.notes.append(
            "float32/float16 inputs not re-checked in float64: on float64 inputs the code "
            f"behaves differently ({'; '.join(other)})")
        return
    per_input = {i: (witness.inputs[i], [p for p in witness.problems if p.input == i],
                     witness.n_evals) for i in cand}
    # a float64 error counts above what the low precision's central difference resolves
    floors = {i: machine_eps(inputs[i].dtype) ** (2 / 3) for i in cand}
    low = {i: str(inputs[i].dtype) for i in cand}
    run.witness = (per_input, floors, low)
    agree = [i for i in cand if witness.inputs[i].verdict == "ok"]
    if agree:
        run.notes.append(
            f"float32/float16 input(s) {', '.join(run.base[i].label for i in agree)} also "
            f"checked in float64 (the same code on upcast inputs, {witness.n_evals} forward "
            "calls" + ("; the backward returns float32 whatever its inputs: its gradient "
                       "upcast" if cast else "") + "): agree")


def check_grad(
    f: Callable[[np.ndarray], Any],
    grad: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    **options: Any,
) -> Report:
    """Check the gradient of a scalar function (SciPy's ``check_grad`` shape).

    ``f(x)`` returns a scalar, ``grad(x)`` an array of ``x``'s shape. All
    options of :func:`check_vjp` apply.
    """
    if not callable(f) or not callable(grad):
        raise InputTypeError("check_grad(f, grad, x): f and grad must be callable")
    if not is_float_array(x):
        raise InputTypeError(
            f"x must be a float array (float32 or float64), got {describe(x)}; "
            "convert with np.asarray(x, dtype=np.float64)"
        )

    def forward(x):
        return f(x), x

    def backward(dout, x):
        return np.asarray(grad(x.copy())) * dout

    options.setdefault("names", ["x"])
    report = check_vjp(forward, backward, x, **options)
    report.function = getattr(f, "__qualname__", "f")
    return report

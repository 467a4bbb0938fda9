"""check_vjp: the orchestration of a gradient check.

1. **Call contract.** Run the forward once on copies of the inputs and the
   backward once with a random upstream gradient; check the structure, shape,
   dtype and finiteness of what comes back.
2. **Side effects** (:mod:`.sidechecks`): inputs, cache and upstream gradient
   left untouched; forward deterministic; backward repeatable and linear in its
   upstream gradient.
3. **Values.** Per input, compare ``<g, u>`` with the numerical slope along
   random directions ``u`` (:mod:`.numeric`); when a projection disagrees,
   bisect to the wrong coordinates (:mod:`.localize`) and name the pattern
   (:mod:`.patterns`). ``mode="full"`` measures every coordinate instead.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np

from ..errors import InputError, InputTypeError, describe
from .arrays import deepcopy_inputs, default_step, is_float_array, perturbation_scale
from .calls import Call, CallError, phi_of
from .localize import kink_suspects_last, localize, random_weights
from .numeric import Direction, Measurer, perturbed_points
from .patterns import factor_candidates
from .report import Finding, InputResult, Report
from .sidechecks import run_side_checks
from .verdicts import check_full, conclude, summarise

__all__ = ["check_vjp", "check_grad"]

MODES = ("auto", "full")
METHODS = ("fd", "complex")


def _resolve_wrt(wrt, forward: Callable, inputs: tuple, names: list[str | None]) -> set[int]:
    float_idx = {i for i, x in enumerate(inputs) if is_float_array(x)}
    if wrt is None:
        return float_idx
    items = [wrt] if isinstance(wrt, (int, str)) else list(wrt)
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

    Returns
    -------
    Report
        ``report.ok`` is True when no evidence of a bug was found.
    """
    t0 = time.perf_counter()
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    if not callable(forward):
        raise InputTypeError(f"forward must be callable, got {describe(forward)}")
    if backward is not None and not callable(backward):
        # closure style with the backward argument left out: it is the first input
        inputs = (backward, *inputs)
        backward = None
    if not isinstance(n_directions, int) or n_directions < 1:
        raise InputError(f"n_directions must be a positive int, got {n_directions!r}")
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
    rng = _checker_rng(seed)
    originals = deepcopy_inputs(inputs)
    call = Call(forward, backward, inputs, executor=executor)
    fname = getattr(forward, "__qualname__", getattr(forward, "__name__", ""))
    if "<locals>" in fname:
        fname = getattr(forward, "__name__", fname)

    results = [
        InputResult(
            index=i,
            name=arg_names[i],
            shape=tuple(np.shape(x)),
            dtype=str(getattr(x, "dtype", type(x).__name__)),
            checked=i in checked,
            status="ok" if i in checked else "skipped",
        )
        for i, x in enumerate(inputs)
    ]
    report = Report(ok=True, n_evals=0, inputs=results, mode=mode, method=method, seed=seed,
                    function=fname)

    extra_evals = [0]  # forward calls of the float64 re-check

    def finish() -> Report:
        call.cancel_prefetch()
        report.n_evals = call.n_forward + extra_evals[0]
        report.n_backward = call.n_backward
        report.seconds = time.perf_counter() - t0
        report.ok = report.ok and all(r.ok for r in results)
        return report

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
            if side.grads.get(i) is None:
                continue
            for _ in range(n_directions):
                u = random_weights(rng, inputs[i].size) * scales[i]
                first_dirs.append(Direction(i, u.reshape(inputs[i].shape)))
        if call.executor is not None:
            points, _ = perturbed_points(float_inputs, first_dirs,
                                         [steps[d.input] for d in first_dirs])
            call.prefetch(points)

    # ---- 1 + 2: contract and side effects ------------------------------------
    try:
        side = run_side_checks(call, checked, rng, originals,
                               on_contract=start_first_measurement if mode == "auto" else None)
    except CallError as exc:
        report.ok = False
        report.problems.append(Finding(str(exc), exc.kind))
        return finish()
    report.problems.extend(side.problems)
    report.notes.extend(side.notes)
    for i, status in side.status.items():
        results[i].status = status
        results[i].ok = False
    if side.problems:
        report.ok = False
    if side.fatal:
        return finish()

    # ---- 3: values ----------------------------------------------------------
    value_idx = [i for i in sorted(checked) if side.grads[i] is not None]
    for i in value_idx:
        results[i].analytic = side.grads[i]
    if not value_idx:
        return finish()
    grads64 = [
        side.grads[i].astype(np.float64) if (i in value_idx) else None for i in range(len(inputs))
    ]
    measurer = Measurer(
        call.phi_batch,
        float_inputs,
        grads64,
        side.phi0,
        side.noise,
        side.grad_noise,
        steps,
    )
    if method == "complex":
        measurer.enable_complex_step(call.phi_complex_batch)
    for i in value_idx:
        results[i].step = steps[i]
    shapes_for_factors = [(f"input {i}", np.shape(x)) for i, x in enumerate(inputs)]
    shapes_for_factors += [(f"output {j}", np.shape(o)) for j, o in enumerate(side.outs)]
    cands = factor_candidates(shapes_for_factors)

    if mode == "full":
        for i in value_idx:
            check_full(measurer, i, inputs[i], scales[i], results[i], report, cands)
    else:
        top = measurer.measure(first_dirs, adapt=True)
        for i in value_idx:
            mine = [r for r in top if r.direction.input == i]
            summarise(results[i], mine)
            if all(r.ok and not r.kink for r in mine):
                continue
            loc = localize(measurer, i, inputs[i].shape, scales[i], rng, budget=max_evals,
                           groups=kink_suspects_last(inputs[i]))
            conclude(measurer, i, inputs[i], scales[i], loc, mine, results[i], report, cands,
                      rng)
    for i in value_idx:
        results[i].step = measurer.step[i]
    if method == "complex":
        report.notes.append(measurer.complex_note)
        if measurer.complex_mode != "on":
            report.method = "fd"
    if upcast is not False:
        pair = upcast if isinstance(upcast, tuple) else None
        extra_evals[0] = _upcast_witness(
            forward, backward, inputs, results, report, pair,
            dict(mode=mode, method=method, seed=seed, n_directions=n_directions,
                 max_evals=max_evals, executor=executor, names=arg_names))
    return finish()


# ----------------------------------------------------------------------
# float32 code re-checked in float64
WITNESS_FLOOR = float(np.finfo(np.float32).eps) ** (2 / 3)
_TINY = 1e-8  # relative: float32 rounds it away (half an ulp is >= 3e-8), float64 keeps it
_RESOLVED = 1e-5  # relative: float32 resolves it


def _dtype_generic(forward, backward, up: tuple, cand: list[int], seed) -> tuple[str, int]:
    """Whether the code computes in float64 on float64 inputs: ``("", calls)`` if so,
    else ``(reason, calls)``.

    Its outputs and gradients must be float64, and the slope of ``phi`` along a
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
        return f"on float64 inputs, {exc}", call.n_forward
    if any(np.issubdtype(o.dtype, np.floating) and o.dtype != np.float64 for o in outs):
        return "the outputs are not float64 for float64 inputs", call.n_forward
    dirs = {}
    for i in cand:
        g = grads[i]
        if not (isinstance(g, np.ndarray) and g.dtype == np.float64 and g.shape == up[i].shape):
            return f"the gradient of input {i} is not a float64 array of its shape", call.n_forward
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
        return f"on float64 inputs, {exc}", call.n_forward
    if not (np.isfinite(big) and np.isfinite(tiny) and big != 0):
        return "the output does not move along a test direction", call.n_forward
    if not abs(tiny - big) <= 0.05 * abs(big):
        return ("a perturbation below float32's resolution does not move the output as a "
                "larger one does: the code computes in float32 (or lower) whatever its "
                "inputs"), call.n_forward
    return "", call.n_forward


def _upcast_witness(forward, backward, inputs: tuple, results: list[InputResult], report: Report,
                    pair: tuple | None, options: dict) -> int:
    """Re-check the float32 inputs that passed on float64 copies; return the forward calls.

    A float32 *ties* verdict (moving every kinked coordinate together looked
    smooth, yet the analytic derivative disagreed) is re-checked too: float32
    cannot tell a small kink along that line (kinks that nearly cancel, as
    clip(x) at both bounds can) from a smooth one; float64 can, and its
    verdict replaces the float32 one. Other failures stand: float32 may have
    bugs of its own (cancellation, overflow) that float64 would not show.
    """
    ties = {p.input for p in report.problems if p.kind == "ties"}
    if any(p.kind != "ties" for p in report.problems) or any(
            inputs[i].dtype != np.float32 or results[i].before_ties is None for i in ties):
        return 0  # a failure or a side effect is already reported
    cand = [r.index for r in results
            if r.checked and (r.status.startswith("ok") or r.status == "inconclusive"
                              or r.index in ties)
            and inputs[r.index].dtype == np.float32]
    if not cand:
        return 0
    up = tuple(x.astype(np.float64) if is_float_array(x) and x.dtype == np.float32 else x
               for x in inputs)
    if pair is not None:  # the float64 version of the code, given
        forward, backward = pair
        reason, calls = "", 0
    else:
        try:
            reason, calls = _dtype_generic(forward, backward, up, cand, options["seed"])
        except Exception as exc:  # noqa: BLE001 - any failure means: not dtype-generic
            reason, calls = f"on float64 inputs the code raised {type(exc).__name__}: {exc}", 0
    if reason:
        report.notes.append(f"float32 inputs not re-checked in float64: {reason}")
        return calls
    options = {**options, "wrt": cand}
    try:
        witness = check_vjp(forward, backward, *up, upcast=False, **options)
    except Exception as exc:  # noqa: BLE001 - the float32 verdict stands alone
        report.notes.append(f"float32 inputs not re-checked in float64: {exc}")
        return calls
    calls += witness.n_evals
    value_kinds = {"mismatch", "factor", "sign", "zeros", "slice", "transpose", "ties"}
    if any(p.kind not in value_kinds for p in witness.problems):
        report.notes.append(
            "float32 inputs not re-checked in float64: on float64 inputs the code behaves "
            f"differently ({'; '.join(p for p in witness.problems if p.kind not in value_kinds)})")
        return calls
    # float64 resolves far more than float32 needs: differences below eps32^(2/3)
    # relative (float32-rounded constants, say) are not float32 bugs
    failed = [i for i in cand if witness.inputs[i].status == "FAIL"
              and witness.inputs[i].max_rel_error > WITNESS_FLOOR]
    below = [i for i in cand if witness.inputs[i].status == "FAIL" and i not in failed]
    for i in below:
        report.notes.append(
            f"input {results[i].label}: in float64 the gradient differs from the numerical one "
            f"by {witness.inputs[i].max_rel_error:.2g} relative, below what float32 can "
            f"resolve ({WITNESS_FLOOR:.1g}): not counted")
    for i in sorted(ties):
        if i in failed:
            continue  # float64 confirms the ties verdict
        r = results[i]
        r.ok, r.status = True, "ok"
        r.max_rel_error, r.tol = r.before_ties
        r.before_ties = None
        report.problems[:] = [p for p in report.problems if not (p.kind == "ties" and p.input == i)]
        report.notes.append(
            f"input {r.label}: moving its kinked coordinates together looked smooth in float32 "
            "and disagreed with the analytic derivative; in float64 (the same code on upcast "
            "inputs) that line has a kink, so the gradient there is a valid subgradient")
    failed = [i for i in failed if i not in ties]
    for i in failed:
        w, r = witness.inputs[i], results[i]
        r.ok, r.status = False, "FAIL"
        r.worst, r.max_rel_error, r.tol = w.worst, w.max_rel_error, w.tol
        r.tol_reason = f"float64 re-check: {w.tol_reason}"
        r.diagnosis.extend(w.diagnosis)
        report.problems.append(Finding(
            f"input {r.label}: float32 rounding hides it, but the same code run in float64 "
            f"(inputs upcast) has wrong gradient values, relative error {w.max_rel_error:.2g} "
            f"(float64 tolerance {w.tol:.2g}; float32 would need {WITNESS_FLOOR:.1g})",
            "mismatch", i))
        report.problems.extend(p for p in witness.problems if p.input == i)
    agree = [i for i in cand if i not in failed and i not in below]
    for i in agree:
        if results[i].status == "inconclusive" and witness.inputs[i].status.startswith("ok"):
            results[i].status = witness.inputs[i].status  # float64 settles it
    if agree:
        report.notes.append(
            f"float32 input(s) {', '.join(results[i].label for i in agree)} also checked in "
            f"float64 (the same code on upcast inputs, {witness.n_evals} forward calls): agree")
    return calls


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

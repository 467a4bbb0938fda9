"""Run one zoo case through one gradient-checking tool and record its verdict.

Tools (``TOOLS``):

- ``gradproof``: ``gradproof.check_vjp(forward, backward, *inputs)`` with its
  defaults (``upcast=False`` on request), on the case's own inputs (float32
  stays float32). Its status is its ``report.verdict``: ``"ok"`` passed,
  ``"failed"`` flagged, ``"inconclusive"`` (nothing proven either way; not a
  pass, not a failure).
- ``torch_full`` / ``torch_fast``: ``torch.autograd.gradcheck`` (full mode, and
  ``fast_mode=True``) with torch's default tolerances and
  ``raise_exception=False``. The NumPy pair is wrapped in a
  ``torch.autograd.Function`` as a user would: its forward runs the NumPy
  forward on detached copies of float64 tensors and keeps the cache on
  ``ctx``; its backward hands the upstream gradient (``grad.numpy()``, no copy)
  to the NumPy backward and returns ``torch.from_numpy(g)`` for each gradient.
  Torch's engine then does what it always does: casts a gradient of the wrong
  dtype, sums a broadcastable gradient down to the input's shape, and raises
  on a wrong count or an incompatible shape.
- ``scipy``: ``scipy.optimize.check_grad`` on phi(theta) = sum(dout * f(x)),
  theta = the checked inputs raveled and concatenated (float64), dout a fixed
  standard normal array; its ``grad(theta)`` concatenates the raveled
  gradients. Flags when ``err > 1e-4 * ||grad||``: check_grad uses forward
  differences with step 1.5e-8, whose relative error on a smooth, well-scaled
  function is about 1e-7 to 1e-6, so 1e-4 leaves a margin of 100x.
- ``cs231n``: the CS231n assignment recipe. The numerical gradient of each
  checked input by central differences with ``h = 1e-5`` per element (the
  input perturbed in place, as ``eval_numerical_gradient_array`` does), then
  one backward with the same dout, compared with
  ``rel_error(x, y) = max(|x - y| / max(1e-8, |x| + |y|))`` and flagged above
  1e-7 (the threshold the assignments quote). The gradients are compared as
  returned, with NumPy broadcasting, as a student's notebook would.

Tools other than gradproof see float64 copies of the float inputs (gradcheck
asks for double precision, check_grad works in float64, CS231n casts to
float64 before checking), so a float32 case is checked in float64 by them.
An exception raised inside a tool counts as flagged (status ``"error"``): the
user sees a failure. Warnings are silenced for every tool but gradproof.

Cost. torch_full, scipy and cs231n measure every element of every checked
input on its own: their calls grow with the Jacobian (:func:`jacobian_calls`:
2 forward calls per element for torch_full and cs231n, 1 for scipy; torch_full
also runs one backward per output element and holds two dense Jacobians).
With ``max_elements``, :func:`run_case` does not run them on a case with more
checked elements than that; it returns status ``"not_run"`` with the calls
the tool would need and a lower bound of their seconds: the calls times the
fastest of three timed calls (for torch_full through its torch wrapper), not
counting the tool's own work per call (torch_full fills two dense Jacobians;
measured, it took 4 to 10 times the bound). gradproof and torch_fast are
always run: their cost does not grow with the Jacobian.
"""

from __future__ import annotations

import contextlib
import importlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from unittest import mock

import numpy as np

from ..errors import InputError
from .case import Case

__all__ = ["TOOLS", "JACOBIAN_TOOLS", "STATUSES", "ToolResult", "CountingForward", "run_case",
           "checked_indices", "checked_elements", "jacobian_calls"]

TOOLS = ("gradproof", "torch_full", "torch_fast", "scipy", "cs231n")
STATUSES = ("passed", "flagged", "inconclusive", "error", "not_run")

SCIPY_REL_TOL = 1e-4
CS231N_STEP = 1e-5
CS231N_TOL = 1e-7
DOUT_SEED = 12345


@dataclass
class ToolResult:
    """One tool's verdict on one case.

    ``status`` is one of ``STATUSES``: ``"passed"``, ``"flagged"``,
    ``"inconclusive"`` (gradproof only: nothing proven either way),
    ``"error"`` (the tool raised; the user sees a failure) or ``"not_run"``
    (too large for a tool whose cost grows with the Jacobian; then
    ``forward_calls`` and ``seconds`` are 0; ``estimated_calls``,
    ``estimated_backward_calls`` and ``estimated_seconds`` say what running it
    would have cost).
    """

    tool: str
    case: str
    status: str
    detail: str
    forward_calls: int
    seconds: float
    estimated_calls: int = 0
    estimated_backward_calls: int = 0
    estimated_seconds: float = 0.0

    @property
    def ran(self) -> bool:
        return self.status != "not_run"

    @property
    def flagged(self) -> bool:
        """The tool did not pass the case: it failed it, raised, or was inconclusive."""
        return self.status in ("flagged", "inconclusive", "error")


class CountingForward:
    """Wraps a forward function and counts its calls."""

    def __init__(self, forward: Callable):
        self.forward = forward
        self.calls = 0
        self.__name__ = getattr(forward, "__name__", type(forward).__name__)
        self.__qualname__ = getattr(forward, "__qualname__", self.__name__)

    def __call__(self, *inputs):
        self.calls += 1
        return self.forward(*inputs)


def checked_indices(case: Case, inputs: tuple) -> list[int]:
    """Positions of the inputs a tool checks: float arrays, restricted to ``case.wrt``."""
    floats = [i for i, x in enumerate(inputs)
              if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)]
    return floats if case.wrt is None else [i for i in floats if i in case.wrt]


def checked_elements(case: Case) -> int:
    """Number of elements of the case's checked inputs (the Jacobian's columns)."""
    inputs = case.inputs()
    return sum(inputs[i].size for i in checked_indices(case, inputs))


# Forward calls per checked element of the tools that measure every element.
_CALLS_PER_ELEMENT = {"torch_full": 2, "scipy": 1, "cs231n": 2}
JACOBIAN_TOOLS = tuple(_CALLS_PER_ELEMENT)


def jacobian_calls(tool: str, case: Case) -> tuple[int, int] | None:
    """``(forward calls, backward calls)`` ``tool`` needs on ``case`` when they grow
    with the Jacobian, else None.

    torch_full: 2 forward calls per checked element (central differences) and
    one backward per output element (its analytical Jacobian, row by row);
    cs231n: 2 forward calls per element; scipy: 1 (forward differences); each
    plus the few unperturbed calls. None for gradproof and torch_fast, whose
    cost does not depend on the input size.
    """
    if tool not in _CALLS_PER_ELEMENT:
        return None
    backward = _output_elements(case) if tool == "torch_full" else 0
    return _CALLS_PER_ELEMENT[tool] * checked_elements(case), backward


def _output_elements(case: Case) -> int:
    out, _ = case.forward(*case.inputs())
    return sum(np.size(o) for o in _as_tuple(out))


def _best_seconds(call: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of a few timed calls, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def _seconds_per_call(tool: str, case: Case) -> tuple[float, float]:
    """Seconds of one forward and one backward call as ``tool`` makes them.

    torch_full: through the ``torch.autograd.Function`` wrapper (a backward that
    raises is counted as one forward); scipy and cs231n: the NumPy forward.
    """
    inputs = _float64_inputs(case)
    if tool != "torch_full":
        return _best_seconds(lambda: case.forward(*inputs)), 0.0
    import torch

    checked = set(checked_indices(case, inputs))
    args = _torch_args(inputs, checked)
    layer = _numpy_function(case, CountingForward(case.forward))
    t_forward = _best_seconds(lambda: layer.apply(*args))
    outs = _as_tuple(layer.apply(*args))
    try:
        t_backward = _best_seconds(lambda: torch.autograd.grad(
            outs, [args[i] for i in sorted(checked)], [torch.ones_like(o) for o in outs],
            retain_graph=True, allow_unused=True))
    except Exception:  # a buggy backward that raises: assume it costs a forward
        t_backward = t_forward
    return t_forward, t_backward


def _not_run(tool: str, case: Case, max_elements: int) -> ToolResult:
    """The result of a tool too costly to run on ``case``: what it would need."""
    forward_calls, backward_calls = jacobian_calls(tool, case)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        t_forward, t_backward = _seconds_per_call(tool, case)
    seconds = forward_calls * t_forward + backward_calls * t_backward
    calls = f"{forward_calls} forward" + (f" + {backward_calls} backward" if backward_calls
                                          else "")
    detail = (f"too large: {checked_elements(case)} checked elements > {max_elements}; "
              f"{calls} calls, at least {seconds:.1f} s")
    return ToolResult(tool, case.name, "not_run", detail, 0, 0.0, forward_calls,
                      backward_calls, seconds)


def _float64_inputs(case: Case) -> tuple:
    return tuple(x.astype(np.float64) if isinstance(x, np.ndarray)
                 and np.issubdtype(x.dtype, np.floating) else x for x in case.inputs())


def _as_tuple(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def _random_douts(out) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(DOUT_SEED)
    return tuple(rng.standard_normal(np.shape(o)) for o in _as_tuple(out))


def _inner(douts, out) -> float:
    return float(sum(np.sum(d * np.asarray(o, dtype=np.float64))
                     for d, o in zip(douts, _as_tuple(out))))


def _grads(case: Case, douts, cache) -> tuple:
    return _as_tuple(case.backward(*douts, cache))


# --- gradproof ---------------------------------------------------------------------


_GRADPROOF_STATUS = {"ok": "passed", "failed": "flagged", "inconclusive": "inconclusive"}


def _run_gradproof(case: Case, forward: CountingForward, upcast: bool = True) -> tuple[str, str]:
    import gradproof

    options = {} if case.wrt is None else {"wrt": case.wrt}
    with warnings.catch_warnings(record=True):
        report = gradproof.check_vjp(forward, case.backward, *case.inputs(), upcast=upcast,
                                     **options)
    if report.verdict not in _GRADPROOF_STATUS:
        raise InputError(f"report.verdict must be one of {tuple(_GRADPROOF_STATUS)}, "
                         f"got {report.verdict!r}")
    status = _GRADPROOF_STATUS[report.verdict]
    if status == "passed":
        return status, ""
    reasons = [str(p) for p in report.problems]
    reasons += [f"input {r.label}: {r.reason}" for r in report.inputs
                if r.checked and not r.ok and r.reason]
    return status, "; ".join(reasons) or str(report).splitlines()[0]


# --- torch.autograd.gradcheck ---------------------------------------------------------


def _numpy_function(case: Case, forward: CountingForward):
    """A torch.autograd.Function that runs the case's NumPy forward and backward."""
    import torch

    class NumpyLayer(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *args):
            arrays = [a.detach().numpy().copy() if isinstance(a, torch.Tensor) else a
                      for a in args]
            out, cache = forward(*arrays)
            ctx.cache = cache
            outs = tuple(torch.as_tensor(np.asarray(o)) for o in _as_tuple(out))
            return outs if isinstance(out, tuple) else outs[0]

        @staticmethod
        def backward(ctx, *grads):
            douts = [g.numpy() for g in grads]
            return tuple(None if g is None else torch.from_numpy(np.ascontiguousarray(g))
                         for g in _grads(case, douts, ctx.cache))

    return NumpyLayer


def _torch_args(inputs: tuple, checked: set[int]) -> list:
    """float64 arrays as tensors (requiring gradients where checked); the rest as they are."""
    import torch

    return [torch.from_numpy(x).requires_grad_(i in checked) if isinstance(x, np.ndarray)
            and x.dtype == np.float64 else x for i, x in enumerate(inputs)]


def _run_torch(case: Case, forward: CountingForward, fast: bool) -> tuple[str, str]:
    import torch

    inputs = _float64_inputs(case)
    args = _torch_args(inputs, set(checked_indices(case, inputs)))
    layer = _numpy_function(case, forward)
    with _no_slow_mode_message() if fast else contextlib.nullcontext():
        ok = torch.autograd.gradcheck(layer.apply, tuple(args), fast_mode=fast,
                                      raise_exception=False)
    return ("passed", "") if ok else ("flagged", "gradcheck returned False")


@contextlib.contextmanager
def _no_slow_mode_message():
    """Skip the full Jacobians fast-mode gradcheck computes for its error message.

    When fast mode finds a mismatch, its verdict is reached; only then does it
    recompute both Jacobians in slow mode (2 forward calls per input element,
    one backward per output element) to print them in the error message,
    which ``raise_exception=False`` discards. On the zoo's large cases that
    takes minutes, so the runner replaces the message by a short note; the
    verdict is unchanged. (Torch versions without that helper run as they are.)
    """
    module = importlib.import_module("torch.autograd.gradcheck")
    if not hasattr(module, "_run_slow_mode_and_get_error"):
        yield
        return
    with mock.patch.object(module, "_run_slow_mode_and_get_error",
                           lambda *args, **kwargs: "\n(slow-mode Jacobians not computed)"):
        yield


# --- scipy.optimize.check_grad -----------------------------------------------------------


def _run_scipy(case: Case, forward: CountingForward) -> tuple[str, str]:
    from scipy.optimize import check_grad

    inputs = _float64_inputs(case)
    idx = checked_indices(case, inputs)
    douts = _random_douts(forward(*inputs)[0])
    sizes = np.cumsum([0] + [inputs[i].size for i in idx])

    def unpack(theta):
        args = list(inputs)
        for k, i in enumerate(idx):
            args[i] = theta[sizes[k]:sizes[k + 1]].reshape(inputs[i].shape)
        return args

    def phi(theta):
        return _inner(douts, forward(*unpack(theta))[0])

    last_grad = []

    def grad(theta):
        _, cache = forward(*unpack(theta))
        grads = _grads(case, douts, cache)
        last_grad[:] = [np.concatenate([np.ravel(grads[i]) for i in idx])]
        return last_grad[0]

    theta0 = np.concatenate([inputs[i].ravel() for i in idx])
    err = check_grad(phi, grad, theta0)
    scale = float(np.linalg.norm(last_grad[0]))
    if err <= SCIPY_REL_TOL * scale:
        return "passed", ""
    return "flagged", f"err {err:.3g} vs ||grad|| {scale:.3g}"


# --- the CS231n recipe -------------------------------------------------------------------------


def numerical_gradient_array(f: Callable[[], float], x: np.ndarray, h: float) -> np.ndarray:
    """Central differences of the scalar ``f()`` in each element of ``x``, perturbed in place."""
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        plus = f()
        x[ix] = old - h
        minus = f()
        x[ix] = old
        grad[ix] = (plus - minus) / (2 * h)
    return grad


def rel_error(x, y) -> float:
    """CS231n's relative error: max |x - y| / max(1e-8, |x| + |y|) (broadcasting)."""
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def _run_cs231n(case: Case, forward: CountingForward) -> tuple[str, str]:
    inputs = list(_float64_inputs(case))
    douts = _random_douts(forward(*inputs)[0])
    numeric = {i: numerical_gradient_array(lambda: _inner(douts, forward(*inputs)[0]),
                                           inputs[i], CS231N_STEP)
               for i in checked_indices(case, tuple(inputs))}
    _, cache = forward(*inputs)
    grads = _grads(case, douts, cache)
    errors = {i: rel_error(np.asarray(grads[i], dtype=np.float64), num)
              for i, num in numeric.items()}
    bad = {i: e for i, e in errors.items() if not e <= CS231N_TOL}
    if not bad:
        return "passed", ""
    return "flagged", ", ".join(f"input {i}: rel_error {e:.2g}" for i, e in bad.items())


_RUNNERS = {
    "gradproof": _run_gradproof,
    "torch_full": lambda case, forward: _run_torch(case, forward, fast=False),
    "torch_fast": lambda case, forward: _run_torch(case, forward, fast=True),
    "scipy": _run_scipy,
    "cs231n": _run_cs231n,
}


def run_case(tool: str, case: Case, max_elements: int | None = None,
             upcast: bool = True) -> ToolResult:
    """Run ``case`` through ``tool``; returns its verdict, forward calls and seconds.

    ``max_elements``: a tool whose forward calls grow with the Jacobian
    (torch_full, scipy, cs231n; see :func:`jacobian_calls`) is not run on a case
    with more checked elements than this (status ``"not_run"``, with the calls it
    would need and their estimated seconds). None: no limit. ``upcast`` is passed
    to gradproof's ``check_vjp`` (False: no float64 re-check of float32 code).
    """
    if tool not in _RUNNERS:
        raise InputError(f"tool must be one of {TOOLS}, got {tool!r}")
    if max_elements is not None and max_elements < 0:
        raise InputError(f"max_elements must be >= 0 or None, got {max_elements!r}")
    if (tool in JACOBIAN_TOOLS and max_elements is not None
            and checked_elements(case) > max_elements):
        return _not_run(tool, case, max_elements)
    forward = CountingForward(case.forward)
    start = time.perf_counter()
    try:
        if tool == "gradproof":
            status, detail = _run_gradproof(case, forward, upcast)
        else:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                status, detail = _RUNNERS[tool](case, forward)
    except Exception as exc:  # a tool that crashes on a case has flagged it, loudly
        first_line = (str(exc).splitlines() or [""])[0]
        status, detail = "error", f"{type(exc).__name__}: {first_line[:160]}"
    return ToolResult(tool, case.name, status, detail, forward.calls,
                      time.perf_counter() - start)

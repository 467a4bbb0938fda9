"""Run one zoo case through one gradient-checking tool and record its verdict.

Tools (``TOOLS``):

- ``gradproof``: ``gradproof.check_vjp(forward, backward, *inputs)`` with its
  defaults, on the case's own inputs (float32 stays float32). Flags when
  ``report.ok`` is False.
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
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .case import Case

__all__ = ["TOOLS", "ToolResult", "CountingForward", "run_case", "checked_indices"]

TOOLS = ("gradproof", "torch_full", "torch_fast", "scipy", "cs231n")

SCIPY_REL_TOL = 1e-4
CS231N_STEP = 1e-5
CS231N_TOL = 1e-7
DOUT_SEED = 12345


@dataclass
class ToolResult:
    """One tool's verdict on one case."""

    tool: str
    case: str
    status: str  # "flagged" | "passed" | "error"
    detail: str
    forward_calls: int
    seconds: float

    @property
    def flagged(self) -> bool:
        return self.status != "passed"


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


def _run_gradproof(case: Case, forward: CountingForward) -> tuple[str, str]:
    import gradproof

    options = {} if case.wrt is None else {"wrt": case.wrt}
    with warnings.catch_warnings(record=True):
        report = gradproof.check_vjp(forward, case.backward, *case.inputs(), **options)
    if report.ok:
        return "passed", ""
    detail = "; ".join(str(p) for p in report.problems) or str(report).splitlines()[0]
    return "flagged", detail


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


def _run_torch(case: Case, forward: CountingForward, fast: bool) -> tuple[str, str]:
    import torch

    inputs = _float64_inputs(case)
    checked = set(checked_indices(case, inputs))
    args = [torch.from_numpy(x).requires_grad_(i in checked) if isinstance(x, np.ndarray)
            and x.dtype == np.float64 else x for i, x in enumerate(inputs)]
    layer = _numpy_function(case, forward)
    ok = torch.autograd.gradcheck(layer.apply, tuple(args), fast_mode=fast,
                                  raise_exception=False)
    return ("passed", "") if ok else ("flagged", "gradcheck returned False")


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


def run_case(tool: str, case: Case) -> ToolResult:
    """Run ``case`` through ``tool``; returns its verdict, forward calls and seconds."""
    if tool not in _RUNNERS:
        raise InputError(f"tool must be one of {TOOLS}, got {tool!r}")
    forward = CountingForward(case.forward)
    start = time.perf_counter()
    try:
        if tool == "gradproof":
            status, detail = _RUNNERS[tool](case, forward)
        else:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                status, detail = _RUNNERS[tool](case, forward)
    except Exception as exc:  # a tool that crashes on a case has flagged it, loudly
        first_line = (str(exc).splitlines() or [""])[0]
        status, detail = "error", f"{type(exc).__name__}: {first_line[:160]}"
    return ToolResult(tool, case.name, status, detail, forward.calls,
                      time.perf_counter() - start)

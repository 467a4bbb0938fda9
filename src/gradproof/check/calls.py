"""Calling the user's forward and backward: conventions, counting, parallel evaluation.

The checker reduces every question to the scalar ``phi(x) = <dout, f(x)>``
(summed over outputs, in float64). :class:`Call` knows the calling
conventions (cache or closure, one output or a tuple), counts calls, and
evaluates ``phi`` at many perturbed points, in parallel when given an executor.

**User code cannot end a check with success.** An exception from the user's
function, ``SystemExit`` included (``sys.exit(0)`` inside a forward), becomes a
:class:`CallError` (or NaN at a perturbed point); only ``KeyboardInterrupt``
passes through.

**Time budget.** Inside :func:`time_budget` every call into the user's code
first checks the clock and raises :class:`TimeBudgetSpent` once the budget is
spent; the engine turns that into inconclusive verdicts for the inputs not yet
judged. A forward that never returns is interrupted with ``SIGALRM`` (an
interval timer armed around each call) where that is possible: on POSIX, in
the main thread, when no other interval timer is running. Elsewhere (threads,
Windows) the budget is checked between calls only; with an executor, waiting
for a result is bounded by the budget but the worker's call is not.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from concurrent.futures import wait as wait_futures
from typing import Any

import numpy as np

from .._validate import positive_int
from ..errors import describe
from .arrays import deepcopy_inputs, inner, is_float_array

__all__ = ["Call", "CallError", "TimeBudgetSpent", "time_budget", "watching_user_code",
           "phi_of", "user_location"]

# what the user's code may raise that the checker reports instead of letting it end the
# check: every Exception, and SystemExit (sys.exit(0) in a forward must not pass a CI gate)
USER_ERRORS = (Exception, SystemExit)


class CallError(Exception):
    """The user's function broke the calling contract; ``kind`` names how.

    ``stage`` says which call it was (``"the first backward call"``) and
    ``where`` the user's file and line when the function raised.
    """

    def __init__(self, message: str, kind: str = "structure", stage: str = "",
                 where: str = ""):
        super().__init__(message)
        self.kind = kind
        self.stage = stage
        self.where = where


class TimeBudgetSpent(BaseException):
    """The check's time budget (``timeout=``) is spent.

    A ``BaseException``, like ``KeyboardInterrupt``, so that neither the user's
    ``except Exception`` nor the checker's own handlers of user errors swallow
    it; :func:`gradproof.check_vjp` catches it and reports the inputs not yet
    judged as inconclusive.
    """

    def __init__(self, seconds: float):
        super().__init__(f"time budget of {seconds:g} s spent")
        self.seconds = seconds


# (deadline on time.monotonic(), budget in seconds, SIGALRM usable) of the running check
_BUDGET: contextvars.ContextVar[tuple[float, float, bool] | None] = contextvars.ContextVar(
    "gradproof_time_budget", default=None)


def _alarm_usable() -> bool:
    """SIGALRM can interrupt the user's code: POSIX, the main thread, no timer running."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not \
            threading.main_thread():
        return False
    return signal.getitimer(signal.ITIMER_REAL)[0] == 0


def _on_alarm(signum, frame) -> None:
    budget = _BUDGET.get()
    raise TimeBudgetSpent(budget[1] if budget else 0.0)


@contextlib.contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Run the block with a time budget of ``seconds`` (None: none, or the enclosing one).

    Calls into the user's code made through :func:`watching_user_code` inside
    the block raise :class:`TimeBudgetSpent` once it is spent. A nested budget
    never extends the enclosing one.
    """
    outer = _BUDGET.get()
    if seconds is None:
        yield
        return
    deadline = time.monotonic() + seconds
    if outer is not None and outer[0] <= deadline:
        yield  # the enclosing budget ends first
        return
    alarm = outer[2] if outer is not None else _alarm_usable()
    previous = signal.signal(signal.SIGALRM, _on_alarm) if alarm and outer is None else None
    token = _BUDGET.set((deadline, seconds, alarm))
    try:
        yield
    finally:
        _BUDGET.reset(token)
        if previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def remaining_time() -> float | None:
    """Seconds left in the running check's budget (None without one); raises when spent."""
    budget = _BUDGET.get()
    if budget is None:
        return None
    left = budget[0] - time.monotonic()
    if left <= 0:
        raise TimeBudgetSpent(budget[1])
    return left


@contextlib.contextmanager
def watching_user_code() -> Iterator[None]:
    """Around one call into the user's code: check the budget first and, where SIGALRM is
    usable, arm a timer that interrupts the call when the budget runs out in it."""
    left = remaining_time()
    if left is None or not _BUDGET.get()[2]:
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, max(left, 1e-4))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _describe_exit(exc: SystemExit, what: str) -> str:
    return (f"{what} called sys.exit({exc.code!r}) (SystemExit): the user's code cannot end "
            "a check; it is reported as an error")


_LIBRARY_DIRS = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                 os.path.dirname(np.__file__))


def user_location(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frame of ``exc``'s traceback that is
    the user's code (not gradproof's, not NumPy's); ``""`` if there is none."""
    found = ""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        path = os.path.abspath(code.co_filename)
        if not path.startswith(_LIBRARY_DIRS) and not code.co_filename.startswith("<frozen"):
            found = f"{code.co_filename}:{tb.tb_lineno} in {code.co_name}"
        tb = tb.tb_next
    return found


def _as_outputs(out: Any) -> tuple[tuple[np.ndarray, ...], str]:
    """Normalise a forward's ``out`` to a tuple of arrays and remember its kind."""
    if isinstance(out, (tuple, list)):
        return tuple(np.asarray(o) for o in out), "tuple"
    if isinstance(out, np.ndarray):
        return (out,), "array"
    if isinstance(out, (np.floating, np.integer)):
        return (np.asarray(out),), "scalar"
    if isinstance(out, (float, int)) and not isinstance(out, bool):
        return (np.asarray(out, dtype=np.float64),), "pyscalar"
    raise CallError(
        f"forward must return (out, cache) with out an array, a scalar or a tuple of arrays; "
        f"out is {describe(out)}"
    )


def phi_of(outs: Sequence[np.ndarray], douts: Sequence[Any]) -> float:
    """``sum_j <dout_j, out_j>`` in float64 (non-float outputs are ignored)."""
    total = 0.0
    for o, d in zip(outs, douts):
        if d is None:
            continue
        total += float(inner(np.asarray(d, dtype=np.float64),
                               np.asarray(o, dtype=np.float64)))
    return total


def _phi_task(forward: Callable, args: tuple, douts: Sequence[Any]) -> float:
    """One evaluation of phi; a module-level function so process pools can pickle it.

    Floating-point warnings are silenced: a perturbed point may leave the
    function's domain, which the measurer sees as NaN and handles.
    """
    with np.errstate(all="ignore"):
        result = forward(*args)
    out = result[0] if isinstance(result, tuple) and len(result) == 2 else result
    outs, _ = _as_outputs(out)
    return phi_of(outs, douts)


def _phi_complex_task(forward: Callable, args: tuple, douts: Sequence[Any]) -> complex:
    """``sum_j <dout_j, out_j>`` at a complex input, for the complex-step method.

    NaN when the forward does not return complex outputs (it discarded the
    imaginary part, so complex step cannot be used).
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ComplexWarning: the forward discards imaginary parts
        result = forward(*args)
    out = result[0] if isinstance(result, tuple) and len(result) == 2 else result
    outs, _ = _as_outputs(out)
    total = 0j
    for o, d in zip(outs, douts):
        if d is None:
            continue
        if not np.iscomplexobj(o):
            return complex("nan")
        total += complex(np.sum(np.ravel(np.asarray(d, dtype=np.float64)) * np.ravel(o)))
    return total


class Call:
    """The function under test, with its calling conventions and call counters."""

    def __init__(
        self,
        forward: Callable,
        backward: Callable | None,
        inputs: tuple,
        executor: Executor | None = None,
    ):
        self.forward_fn = forward
        self.backward_fn = backward
        self.inputs = inputs
        self.executor = executor
        self.n_forward = 0
        self.n_backward = 0
        self.out_kind = "array"
        self.douts: tuple[Any, ...] = ()
        self.copy_each = False  # set when the forward writes into its inputs
        self.stage = ""  # which call is being made, for error messages
        self.perturbed_errors: list[str] = []  # first exceptions raised at perturbed points
        self._prefetched: dict[tuple, Future] = {}  # point key -> phi evaluation under way

    # ------------------------------------------------------------------
    def forward(self, args: tuple) -> tuple[tuple[np.ndarray, ...], Any]:
        self.n_forward += 1
        try:
            with watching_user_code():
                result = self.forward_fn(*args)
        except USER_ERRORS as exc:  # the user's code raised: say so, with the cause
            where = user_location(exc)
            what = _describe_exit(exc, "forward") if isinstance(exc, SystemExit) else \
                f"forward raised {type(exc).__name__}: {exc}"
            raise CallError(
                what + (f" ({where}, in {self.stage})" if where and self.stage else ""),
                "raised", self.stage, where,
            ) from exc
        if not (isinstance(result, tuple) and len(result) == 2):
            raise CallError(
                "forward must return a pair (out, cache) — or (out, backprop) in closure "
                f"style; it returned {describe(result)}"
            )
        out, cache = result
        outs, self.out_kind = _as_outputs(out)
        if not any(o.dtype.kind == "f" for o in outs):
            raise CallError(
                "forward must return a float output to differentiate; its output is "
                + ", ".join(describe(o) for o in outs) + " (an integer or boolean output is "
                "piecewise constant: there is no gradient to check; return the float values "
                "it is computed from)")
        if self.backward_fn is None and not callable(cache):
            raise CallError(
                "no backward given and the forward's second value is not callable: pass "
                "backward(dout, cache), or return (out, backprop) from the forward"
            )
        return outs, cache

    def make_douts(self, outs: Sequence[np.ndarray], rng: np.random.Generator) -> tuple:
        """Random upstream gradients of the outputs' shapes, dtypes and kind."""
        douts = []
        for o in outs:
            if not np.issubdtype(o.dtype, np.floating):
                douts.append(None)
                continue
            d = rng.standard_normal(o.shape).astype(o.dtype)
            if self.out_kind in ("scalar", "pyscalar"):
                # a scalar loss: a random scalar (not 1.0, so that a backward that
                # ignores dout is caught) of the loss's own type. A Python float
                # stays a Python float, so that dloss * dx keeps dx's dtype.
                value = rng.uniform(0.5, 1.5) * rng.choice([-1.0, 1.0])
                d = float(value) if self.out_kind == "pyscalar" else o.dtype.type(value)
            douts.append(d)
        return tuple(douts)

    def backward(self, douts: tuple, cache: Any) -> Any:
        self.n_backward += 1
        try:
            with watching_user_code():
                if self.backward_fn is None:
                    return cache(*douts)
                return self.backward_fn(*douts, cache)
        except USER_ERRORS as exc:
            where = user_location(exc)
            what = _describe_exit(exc, "backward") if isinstance(exc, SystemExit) else \
                f"backward raised {type(exc).__name__}: {exc}"
            raise CallError(
                what
                + (f" ({where}, in {self.stage})" if where and self.stage else ""),
                "raised", self.stage, where,
            ) from exc

    def grads_per_input(self, raw: Any) -> list[Any]:
        """One gradient (or None) per input, from what the backward returned."""
        n = len(self.inputs)
        floats = [i for i, x in enumerate(self.inputs) if is_float_array(x)]
        if not isinstance(raw, (tuple, list)):
            if n == 1:
                return [raw]
            if len(floats) == 1:
                grads: list[Any] = [None] * n
                grads[floats[0]] = raw
                return grads
            raise CallError(
                f"backward returned a single {describe(raw)} but the forward has {n} inputs "
                f"({len(floats)} float arrays): return one gradient per input, None for "
                "inputs that are not differentiable"
            )
        raw = list(raw)
        if len(raw) == n:
            return raw
        if len(raw) == len(floats):
            grads = [None] * n
            for i, g in zip(floats, raw):
                grads[i] = g
            return grads
        raise CallError(
            f"backward returned {len(raw)} gradients but the forward has {n} inputs "
            f"({len(floats)} float arrays): return one gradient per input, in order, "
            "None for inputs that are not differentiable"
        )

    # ------------------------------------------------------------------
    def args_with(self, i: int, xi: np.ndarray) -> tuple:
        base = deepcopy_inputs(self.inputs) if self.copy_each else list(self.inputs)
        args = list(base)
        # arithmetic on a 0-d array gives a NumPy scalar: hand the forward an array, as given
        args[i] = np.asarray(xi) if isinstance(xi, np.generic) else xi
        return tuple(args)

    def phi_complex_batch(self, points: list[tuple[int, np.ndarray]]) -> list[complex]:
        """``phi`` at complex points (complex-step method); NaN where unsupported."""
        self.n_forward += len(points)
        tasks = [self.args_with(i, xi) for i, xi in points]
        if self.executor is not None:
            futures = [self.executor.submit(_phi_complex_task, self.forward_fn, args, self.douts)
                       for args in tasks]
            return [_complex_or_nan(lambda f=f: _wait(f)) for f in futures]
        return [_complex_or_nan(lambda a=args: _watched(_phi_complex_task, self.forward_fn, a,
                                                        self.douts))
                for args in tasks]

    def prefetch(self, points: list[tuple[int, np.ndarray]]) -> None:
        """Start evaluating ``phi`` at ``points`` on the executor (a no-op without
        one); a later :meth:`phi_batch` at the same points collects the results.

        Only evaluations that :meth:`phi_batch` collects are counted as forward
        calls, so that a parallel check reports what the serial one does.
        """
        if self.executor is None:
            return
        for i, xi in points:
            key = _point_key(i, xi)
            if key not in self._prefetched:
                self._prefetched[key] = self.executor.submit(
                    _phi_task, self.forward_fn, self.args_with(i, xi), self.douts)

    def cancel_prefetch(self) -> None:
        """Drop the prefetched evaluations nobody collected."""
        for future in self._prefetched.values():
            future.cancel()
        self._prefetched.clear()

    def phi_batch(self, points: list[tuple[int, np.ndarray]],
                  douts: tuple | None = None) -> list[float]:
        """``phi`` at each point ``(input index, replacement array)``; NaN where the
        forward raised or returned NaN (its first exceptions are kept in
        ``perturbed_errors``). ``douts`` replaces the upstream gradients of ``phi``
        (a fresh draw)."""
        self.n_forward += len(points)
        fresh = douts is not None
        douts = self.douts if douts is None else douts
        if self.executor is not None:
            futures = []
            for i, xi in points:
                future = self._prefetched.pop(_point_key(i, xi), None) \
                    if self._prefetched and not fresh else None
                if future is None:
                    future = self.executor.submit(_phi_task, self.forward_fn,
                                                  self.args_with(i, xi), douts)
                futures.append(future)
            return [self._result_or_nan(lambda f=f: _wait(f)) for f in futures]
        tasks = [self.args_with(i, xi) for i, xi in points]
        return [self._result_or_nan(lambda a=args: _watched(_phi_task, self.forward_fn, a, douts))
                for args in tasks]

    def _result_or_nan(self, get: Callable[[], float]) -> float:
        """A forward that raises at a perturbed point left its domain there: report
        NaN, so that the step is shrunk, as for a forward that returns NaN."""
        try:
            return float(get())
        except USER_ERRORS as exc:
            if len(self.perturbed_errors) < 3:
                where = user_location(exc)
                what = _describe_exit(exc, "the forward") if isinstance(exc, SystemExit) \
                    else f"{type(exc).__name__}: {exc}"
                self.perturbed_errors.append(what + (f" ({where})" if where else ""))
            return float("nan")


def _point_key(i: int, xi: np.ndarray) -> tuple:
    """A key that identifies a perturbed point by its exact bytes."""
    data = np.ascontiguousarray(xi)
    raw = data.reshape(-1).view(np.uint8)
    return (i, data.dtype.str, data.shape, hashlib.blake2b(raw, digest_size=16).digest())


def _complex_or_nan(get: Callable[[], complex]) -> complex:
    try:
        return complex(get())
    except USER_ERRORS:
        return complex("nan")


def _watched(task: Callable, *args) -> Any:
    """``task(*args)``, a call into the user's code, within the time budget."""
    with watching_user_code():
        return task(*args)


def _wait(future: Future) -> Any:
    """A worker's result, waiting no longer than the time budget allows."""
    left = remaining_time()
    if left is not None and not wait_futures([future], timeout=left).done:
        raise TimeBudgetSpent(_BUDGET.get()[1])
    return future.result()


def process_pool(workers: int) -> Executor:
    """A process pool for ``executor=`` whose workers start clean.

    Worker processes come from a fork server (where the platform has one), not
    from ``fork`` of the calling process: a process that has started threads
    (JAX, PyTorch, a BLAS pool) can deadlock its forked children. The forward
    is pickled by reference, so it must be importable: a module-level function.

    In a script, call it under ``if __name__ == "__main__":`` (as for any
    multiprocessing or Dask code): the workers import the script again, and an
    unguarded pool would be started again inside each of them. A call from the
    script's unguarded top level raises :class:`gradproof.InputError` saying so,
    instead of the pool breaking later with ``BrokenProcessPool``.

    Args:
        workers: the number of processes (>= 1).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = positive_int("workers", workers)
    methods = multiprocessing.get_all_start_methods()
    method = "forkserver" if "forkserver" in methods else None
    if method is not None or multiprocessing.get_start_method(allow_none=True) != "fork":
        from .scriptguard import require_main_guard

        require_main_guard("process_pool()")
    context = multiprocessing.get_context(method)
    return ProcessPoolExecutor(workers, mp_context=context)

"""Shared machinery of the training-speed benchmarks: each library in its own process.

Why one process per library: NumPy's OpenBLAS keeps its own pthreads and
torch its own OpenMP threads. In one process the two pools fight over the
cores (a pool that has just worked keeps spinning for a while), and torch's
MLP step measured inside such a harness took 2-2.5x as long as alone, which
made gradproof look faster than it is.

How a comparison runs (:func:`compare`):

* The parent starts one worker process per library (``multiprocessing``
  "spawn": a fresh interpreter that inherits no thread pool), after setting
  ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` to the
  same thread count; the torch worker also calls ``torch.set_num_threads``.
* Each worker builds its model and its (identical, seeded) batches with the
  benchmark's ``build(library, options)``, runs the warm-up steps, and blocks
  on its pipe.
* A round asks one worker for ``steps`` training steps and waits for its
  time, then asks the other. The idle worker sleeps on its pipe, so the
  libraries never run at the same time. Which library goes first alternates
  from round to round.
* Figures: samples per second per library (median over rounds) and the ratio
  gradproof / PyTorch (median of the per-round ratios), with the load average
  before and after (the machine's other jobs are what makes figures noisy).
  The CPU time per step (all of the worker's threads, spinning included) is
  printed beside: on a busy machine it moves less than the wall time, but
  with several threads it also counts threads that wait by spinning.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

LIBRARIES = ("gradproof", "pytorch")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# build(library, options) -> (step, batches): step(a, b) -> loss runs one training step
Step = Callable[[object, object], float]
Build = Callable[[str, dict], tuple[Step, Sequence]]


def default_threads() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def load_average() -> float:
    """The 1-minute load average (nan where the system has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


# --- the worker process ------------------------------------------------------------------
def _limit_threads(library: str, threads: int) -> dict:
    """Apply ``threads`` inside a worker; return what the libraries report."""
    info = {"threads": threads, "numpy": np.__version__}
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(threads, user_api="blas")
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        if blas:
            info["blas"] = f"{blas[0]['internal_api']} {blas[0]['version']}"
            info["blas_threads"] = blas[0]["num_threads"]
    except ImportError:
        pass
    if library == "pytorch":
        import torch

        torch.set_num_threads(threads)
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def _worker(conn, build: Build, library: str, options: dict, threads: int, warmup: int) -> None:
    """Build, warm up, then run ``("run", steps)`` requests until ``("stop",)``."""
    try:
        info = _limit_threads(library, threads)
        step, batches = build(library, options)
        loss = float("nan")
        for k in range(warmup):
            loss = step(*batches[k % len(batches)])
        conn.send(("ready", info, float(loss)))
        start = warmup
        while True:
            request = conn.recv()
            if request[0] == "stop":
                return
            steps = request[1]
            t0, c0 = time.perf_counter(), time.process_time()
            for k in range(start, start + steps):
                loss = step(*batches[k % len(batches)])
            seconds = (time.perf_counter() - t0, time.process_time() - c0)
            start += steps
            conn.send(("done", seconds, float(loss)))
    except BaseException as exc:  # report it: the parent would otherwise wait for ever
        conn.send(("error", f"{type(exc).__name__}: {exc}", float("nan")))
        raise


class _Worker:
    """The parent's handle on one worker process."""

    def __init__(self, ctx, build: Build, library: str, options: dict, threads: int,
                 warmup: int):
        self.library = library
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_worker, args=(child, build, library, options, threads, warmup),
            name=f"bench-{library}", daemon=True,
        )
        self.process.start()
        child.close()

    def receive(self) -> tuple:
        kind, value, loss = self.conn.recv()
        if kind == "error":
            raise RuntimeError(f"the {self.library} worker failed: {value}")
        return value, loss

    def run(self, steps: int) -> tuple[tuple[float, float], float]:
        """``((wall seconds, CPU seconds), last loss)`` of ``steps`` steps."""
        self.conn.send(("run", steps))
        return self.receive()

    def stop(self) -> None:
        try:
            self.conn.send(("stop",))
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()


# --- rounds --------------------------------------------------------------------------------
@dataclass
class Comparison:
    """Figures of one comparison: samples/s per round per library, per-round time ratios."""

    name: str
    steps: int
    warmup: int
    batch: int
    threads: int
    rates: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in LIBRARIES})
    losses: dict[str, float] = field(default_factory=dict)
    ratios: list[float] = field(default_factory=list)  # torch seconds / gradproof seconds
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in LIBRARIES})
    info: dict[str, dict] = field(default_factory=dict)
    extra: tuple[str, ...] = ()  # reference workers timed in the same rounds, not in the ratio
    load_before: float = float("nan")
    load_after: float = float("nan")

    @property
    def rounds(self) -> int:
        return len(self.ratios)

    @property
    def ratio(self) -> float:
        """gradproof / pytorch throughput: the median of the per-round ratios."""
        return statistics.median(self.ratios)

    @property
    def cpu_ratio(self) -> float:
        """pytorch / gradproof CPU time per step: the median of the per-round ratios."""
        return statistics.median(
            t / g for g, t in zip(self.cpu_ms["gradproof"], self.cpu_ms["pytorch"]))

    def median(self, library: str) -> float:
        return statistics.median(self.rates[library])

    def summary(self) -> dict:
        """The medians the scripts return (``threads``, per-library samples/s, ``ratio``)."""
        return {
            "name": self.name,
            "threads": self.threads,
            "gradproof": self.median("gradproof"),
            "pytorch": self.median("pytorch"),
            "ratio": self.ratio,
            "ratio_quartiles": _quartiles(self.ratios),
            "cpu_ms_per_step": {k: statistics.median(v) for k, v in self.cpu_ms.items()},
            "cpu_ratio": self.cpu_ratio,
            "rounds": self.rounds,
            "load_average": (self.load_before, self.load_after),
            **{name: self.median(name) for name in self.extra},
            **{f"{name}_ratio": self.extra_ratio(name) for name in self.extra},
        }

    def extra_ratio(self, name: str) -> float:
        """``name`` / pytorch throughput: the median of the per-round ratios."""
        return statistics.median(
            e / t for e, t in zip(self.rates[name], self.rates["pytorch"]))


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def compare(
    build: Build,
    options: dict,
    *,
    name: str,
    rounds: int,
    steps: int,
    warmup: int,
    batch: int,
    threads: int,
    max_seconds: float | None = None,
    extra: Sequence[str] = (),
) -> Comparison:
    """Run ``rounds`` alternating rounds of ``steps`` steps per library, one process each.

    ``build(library, options)`` runs in each worker (library is "gradproof" or
    "pytorch") and returns ``(step, batches)``; it must be a module-level
    function (the spawned worker imports it by name). With ``max_seconds``,
    no new round starts after that long (at least 3 run). ``extra`` names
    more workers (``build`` gets their names as ``library``), e.g. a floor
    written in plain NumPy: timed in the same rounds, each in its own process,
    printed beside the two libraries but kept out of the ratio.
    """
    for var in THREAD_VARS:  # before the workers load NumPy or torch
        os.environ[var] = str(threads)
    ctx = multiprocessing.get_context("spawn")
    run = Comparison(name=name, steps=steps, warmup=warmup, batch=batch, threads=threads,
                     extra=tuple(extra))
    everyone = (*LIBRARIES, *run.extra)
    for library in run.extra:
        run.rates[library], run.cpu_ms[library] = [], []
    workers = {}
    try:
        for library in everyone:  # build and warm up one at a time, too
            workers[library] = _Worker(ctx, build, library, options, threads, warmup)
            run.info[library], run.losses[library] = workers[library].receive()
        run.load_before = load_average()
        t_start = time.perf_counter()
        for r in range(rounds):
            if max_seconds is not None and r >= 3 and time.perf_counter() - t_start > max_seconds:
                print(f"(time budget of {max_seconds:g} s reached after {r} rounds)")
                break
            order = everyone if r % 2 == 0 else everyone[::-1]
            seconds = {}
            for library in order:
                (seconds[library], cpu), run.losses[library] = workers[library].run(steps)
                run.rates[library].append(steps * batch / seconds[library])
                run.cpu_ms[library].append(1e3 * cpu / steps)
            run.ratios.append(seconds["pytorch"] / seconds["gradproof"])
        run.load_after = load_average()
    finally:
        for worker in workers.values():
            worker.stop()
    return run


def machine_line(run: Comparison) -> str:
    """Threads, library versions, CPU and load average of a comparison."""
    gp, pt = run.info.get("gradproof", {}), run.info.get("pytorch", {})
    blas = gp.get("blas", "BLAS")
    return (
        f"threads: {run.threads} per library (NumPy's {blas}: {gp.get('blas_threads', '?')}, "
        f"torch: {pt.get('torch_threads', '?')}); torch {pt.get('torch', '?')}, NumPy "
        f"{gp.get('numpy', '?')}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; load average {run.load_before:.1f} before, "
        f"{run.load_after:.1f} after"
    )


def print_report(run: Comparison) -> None:
    """The machine line, the per-library table and the ratio line of a comparison."""
    print(machine_line(run))
    print()
    print(
        f"{'library':<12}{'median samples/s':>18}{'min':>12}{'max':>12}{'ms/step':>10}"
        f"{'CPU ms/step':>13}{'loss after':>12}"
    )
    for library in (*LIBRARIES, *run.extra):
        rates = run.rates[library]
        med = statistics.median(rates)
        print(
            f"{library:<12}{med:>18,.0f}{min(rates):>12,.0f}{max(rates):>12,.0f}"
            f"{1e3 * run.batch / med:>10.2f}{statistics.median(run.cpu_ms[library]):>13.2f}"
            f"{run.losses[library]:>12.4f}"
        )
    print()
    low, high = _quartiles(run.ratios)
    total = run.warmup + run.rounds * run.steps
    print(
        f"ratio gradproof / pytorch: {run.ratio:.2f} (median of {run.rounds} alternating rounds; "
        f"quartiles {low:.2f}-{high:.2f}; {total} steps each; load average "
        f"{run.load_before:.1f} -> {run.load_after:.1f})"
    )
    print(f"ratio of CPU time per step, pytorch / gradproof: {run.cpu_ratio:.2f} (median of the "
          "rounds)")
    for name in run.extra:
        within = statistics.median(
            g / e for g, e in zip(run.rates["gradproof"], run.rates[name]))
        print(f"ratio {name} / pytorch: {run.extra_ratio(name):.2f}; gradproof / {name}: "
              f"{within:.2f} (medians of the rounds)")


def add_arguments(parser, rounds: int, steps: int, warmup: int, max_seconds: float | None):
    """The options every speed benchmark shares, with the script's defaults."""
    parser.add_argument("--rounds", type=int, default=rounds,
                        help=f"alternating rounds (default {rounds})")
    parser.add_argument("--steps", type=int, default=steps,
                        help=f"training steps per library per round (default {steps})")
    parser.add_argument("--warmup", type=int, default=warmup,
                        help=f"untimed steps per library (default {warmup})")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"threads per library (default: the CPUs, {default_threads()})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=max_seconds,
                        help="start no new round after this long (at least 3 rounds run)")


# --- the training steps both sides use -----------------------------------------------------
def gradproof_sgd_step(model, lr: float, loss: str = "softmax") -> Step:
    """``step(x, y) -> loss`` training ``model`` with :class:`gradproof.optim.SGD`."""
    from gradproof.nn.models import loss_and_backward
    from gradproof.optim import SGD

    opt = SGD(model.parameters(), lr=lr)

    def step(x, y):
        opt.zero_grad()
        value = loss_and_backward(model, x, y, loss)
        opt.step()
        return value

    return step


def torch_sgd_step(net, lr: float) -> Step:
    """``step(x, y) -> loss`` training the torch module ``net`` with SGD on cross-entropy."""
    import torch

    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def as_tensors(batches: Sequence[tuple[np.ndarray, np.ndarray]]) -> list:
    """NumPy batches as torch tensors (sharing memory)."""
    import torch

    return [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in batches]


def sgd_classifier(library: str, model, torch_twin: Callable, batches: Sequence,
                   lr: float) -> tuple[Step, Sequence]:
    """``(step, batches)`` of a ``build``: SGD on softmax cross-entropy, either library.

    For "gradproof" it trains ``model`` on ``batches``; for "pytorch" it trains
    ``torch_twin(model)`` (the same network with ``model``'s weights, so both
    start alike) on the same batches as tensors.
    """
    if library == "gradproof":
        return gradproof_sgd_step(model, lr), batches
    return torch_sgd_step(torch_twin(model), lr), as_tensors(batches)


# --- where a gradproof step spends its time ------------------------------------------------
def layer_times(model, batches: Sequence, lr: float, steps: int, threads: int,
                loss: str = "softmax") -> list[tuple[str, float, float]]:
    """Median milliseconds per module of a Sequential ``model``, forward and backward.

    Runs ``steps`` SGD steps layer by layer (after as many untimed ones) with
    NumPy's BLAS limited to ``threads``; returns rows ``(name, forward ms,
    backward ms)``, then ``("loss", ...)``, ``("zero_grad + SGD step", ...)``.
    """
    from contextlib import nullcontext

    from gradproof.nn.functional.losses import loss_function
    from gradproof.optim import SGD

    try:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(threads, user_api="blas")
    except ImportError:
        limit = nullcontext()
    opt, loss_fn = SGD(model.parameters(), lr=lr), loss_function(loss)
    layers = list(model.layers)
    fwd = [[] for _ in layers]
    bwd = [[] for _ in layers]
    loss_s, opt_s = [], []
    clock = time.perf_counter
    with limit:
        for k in range(2 * steps):
            x, y = batches[k % len(batches)]
            t0 = clock()
            opt.zero_grad()
            t_zero = clock() - t0
            times_f, times_b = [], []
            for layer in layers:
                t0 = clock()
                x = layer.forward(x)
                times_f.append(clock() - t0)
            t0 = clock()
            _, dout = loss_fn(x, y)
            t_loss = clock() - t0
            for layer in reversed(layers):
                t0 = clock()
                dout = layer.backward(dout) if dout is not None else None
                times_b.append(clock() - t0)
            t0 = clock()
            opt.step()
            t_opt = clock() - t0 + t_zero
            if k >= steps:  # the first half warms up
                for i, t in enumerate(times_f):
                    fwd[i].append(t)
                for i, t in enumerate(reversed(times_b)):
                    bwd[i].append(t)
                loss_s.append(t_loss)
                opt_s.append(t_opt)
    rows = [(repr(layer), 1e3 * statistics.median(f), 1e3 * statistics.median(b))
            for layer, f, b in zip(layers, fwd, bwd)]
    rows.append(("softmax loss", 1e3 * statistics.median(loss_s), 0.0))
    rows.append(("zero_grad + SGD step", 0.0, 1e3 * statistics.median(opt_s)))
    return rows


def print_layer_times(rows: list[tuple[str, float, float]], threads: int, steps: int) -> None:
    """The per-layer table as Markdown (it goes into the docs as printed)."""
    total = sum(f + b for _, f, b in rows)
    print(f"gradproof, per module (median of {steps} steps, {threads} thread(s), load average "
          f"{load_average():.1f}; sum {total:.2f} ms/step)")
    print()
    print("| module | forward ms | backward ms | share |")
    print("|---|---|---|---|")
    for name, f, b in rows:
        print(f"| {name} | {f:.3f} | {b:.3f} | {100 * (f + b) / total:.0f} % |")

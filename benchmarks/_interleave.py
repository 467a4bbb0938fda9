"""Shared machinery of the training-speed benchmarks: gradproof.nn against PyTorch, interleaved.

Blocks of training steps alternate (gradproof, torch, gradproof, torch, ...) so
that both libraries see the same machine load; both use the same number of
threads (torch.set_num_threads(n) with n = the threads NumPy's BLAS uses).
Samples per second are reported per library (median over blocks) with their
ratio (median of the per-pair ratios).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gradproof.nn.models import loss_and_backward
from gradproof.nn.module import Module

Step = Callable[[object, object], float]


def blas_threads() -> int:
    """Threads NumPy's BLAS uses (threadpoolctl when installed, else the usual env vars)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        counts = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        if counts:
            return int(counts[0])
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


def set_threads(requested: int | None) -> int:
    """Give torch (and NumPy's BLAS, when ``requested``) the same thread count; returns it.

    ``requested=None`` keeps NumPy's BLAS as it is and gives torch as many threads.
    """
    import torch

    threads = requested or blas_threads()
    torch.set_num_threads(threads)
    if requested:
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(threads, user_api="blas")
        except ImportError:
            print("threadpoolctl missing: --threads only applies to torch")
    return threads


def gradproof_sgd_step(model: Module, lr: float) -> Step:
    """A ``step(x, y) -> loss`` training ``model`` with plain SGD on softmax cross-entropy."""
    try:
        from gradproof.optim import SGD
    except ImportError:  # the optimizers are not there yet: the same update, inline
        SGD = None
    if SGD is not None:
        opt = SGD(model.parameters(), lr=lr)
        zero_grad, update = opt.zero_grad, opt.step
    else:
        params = model.parameters()
        lr32 = np.float32(lr)

        def zero_grad():
            for p in params:
                p.grad.fill(0)

        def update():
            for p in params:
                p.data -= lr32 * p.grad

    def step(x, y):
        zero_grad()
        loss = loss_and_backward(model, x, y, "softmax")
        update()
        return loss

    return step


def torch_sgd_step(net, lr: float) -> Step:
    """A ``step(x, y) -> loss`` training the torch module ``net`` with SGD on cross-entropy."""
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


def run_block(step: Step, data: Sequence, steps: int, start: int) -> tuple[float, float]:
    """Time ``steps`` training steps; returns (seconds, last loss)."""
    loss = float("nan")
    t0 = time.perf_counter()
    for k in range(steps):
        x, y = data[(start + k) % len(data)]
        loss = step(x, y)
    return time.perf_counter() - t0, float(loss)


@dataclass
class Interleaved:
    """Figures of an interleaved run: samples/s per block per library, per-pair time ratios."""

    steps: int
    warmup: int
    batch: int
    gp_rates: list[float] = field(default_factory=list)
    pt_rates: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # torch seconds / gradproof seconds
    gp_loss: float = float("nan")
    pt_loss: float = float("nan")

    @property
    def blocks(self) -> int:
        return len(self.ratios)

    @property
    def ratio(self) -> float:
        """gradproof / pytorch throughput: the median of the per-pair ratios."""
        return statistics.median(self.ratios)

    def summary(self, threads: int) -> dict:
        """``{"threads", "gradproof", "pytorch", "ratio"}``: the medians the scripts return."""
        return {
            "threads": threads,
            "gradproof": statistics.median(self.gp_rates),
            "pytorch": statistics.median(self.pt_rates),
            "ratio": self.ratio,
        }


def interleave(
    gp_step: Step,
    pt_step: Step,
    data: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    blocks: int,
    steps: int,
    warmup: int,
    batch: int,
    max_seconds: float | None = None,
) -> Interleaved:
    """Warm both up, then time ``blocks`` alternating pairs of ``steps``-step blocks.

    ``data`` is a list of (x, y) NumPy batches; torch gets the same batches as tensors.
    With ``max_seconds``, stops adding blocks after that long (at least 3 run).
    """
    import torch

    torch_data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]
    run_block(gp_step, data, warmup, 0)
    run_block(pt_step, torch_data, warmup, 0)
    run = Interleaved(steps=steps, warmup=warmup, batch=batch)
    t_start = time.perf_counter()
    for b in range(blocks):
        if max_seconds is not None and b >= 3 and time.perf_counter() - t_start > max_seconds:
            print(f"(time budget of {max_seconds:g} s reached after {b} blocks)")
            break
        start = warmup + b * steps
        gp_s, run.gp_loss = run_block(gp_step, data, steps, start)
        pt_s, run.pt_loss = run_block(pt_step, torch_data, steps, start)
        run.gp_rates.append(steps * batch / gp_s)
        run.pt_rates.append(steps * batch / pt_s)
        run.ratios.append(pt_s / gp_s)
    return run


def print_report(run: Interleaved, threads: int) -> None:
    """The machine line, the per-library table and the ratio line of an interleaved run."""
    import torch

    print(
        f"threads: {threads} (NumPy BLAS and torch.set_num_threads); torch {torch.__version__}, "
        f"NumPy {np.__version__}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print()
    print(
        f"{'library':<12}{'median samples/s':>18}{'min':>12}{'max':>12}{'ms/step':>10}"
        f"{'loss after':>12}"
    )
    for name, rates, loss in (
        ("gradproof", run.gp_rates, run.gp_loss),
        ("pytorch", run.pt_rates, run.pt_loss),
    ):
        med = statistics.median(rates)
        print(
            f"{name:<12}{med:>18,.0f}{min(rates):>12,.0f}{max(rates):>12,.0f}"
            f"{1e3 * run.batch / med:>10.2f}{loss:>12.4f}"
        )
    print()
    gp_med, pt_med = statistics.median(run.gp_rates), statistics.median(run.pt_rates)
    total = run.warmup + run.blocks * run.steps
    print(
        f"ratio gradproof / pytorch (median of {run.blocks} paired blocks): {run.ratio:.3f}  "
        f"(ratio of medians {gp_med / pt_med:.3f}; {total} steps each)"
    )

"""MLP training speed: gradproof.nn against PyTorch on the CPU, interleaved.

Trains the same MLP (784-256-256-10, ReLU, float32, batch 128, plain SGD with
lr 0.01, softmax cross-entropy) from the same initial weights with both
libraries on synthetic data. Blocks of steps alternate (gradproof, torch,
gradproof, torch, ...) so that both see the same machine load; both use the
same number of threads (torch.set_num_threads(n) with n = the threads NumPy's
BLAS uses). Prints samples per second per library (median over blocks) and
their ratio (median of the per-pair ratios). Tests never time anything; this
script is where speed is measured.

    python benchmarks/train_speed.py                 # at most ~60 s (--max-seconds)
    python benchmarks/train_speed.py --blocks 61 --steps 200 --max-seconds 600
    python benchmarks/train_speed.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from gradproof.nn.models import MLP, loss_and_backward

SIZES = (784, 256, 256, 10)


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


def make_data(n_batches: int, batch: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic MNIST-shaped batches: float32 inputs (batch, 784), int64 labels (batch,)."""
    rng = np.random.default_rng(seed)
    return [
        (
            rng.standard_normal((batch, SIZES[0]), dtype=np.float32),
            rng.integers(0, SIZES[-1], size=batch),
        )
        for _ in range(n_batches)
    ]


def gradproof_trainer(lr: float, seed: int):
    """A ``step(x, y) -> loss`` for gradproof.nn, and its model."""
    model = MLP(SIZES[0], list(SIZES[1:-1]), SIZES[-1], dtype=np.float32, rng=seed)
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

    return step, model


def torch_trainer(model_np: MLP, lr: float):
    """A ``step(x, y) -> loss`` for the same network in PyTorch, from model_np's weights."""
    import torch

    linears = [m for m in model_np.layers if hasattr(m, "weight")]
    layers = []
    for i, lin in enumerate(linears):
        t = torch.nn.Linear(lin.in_features, lin.out_features)
        with torch.no_grad():
            t.weight.copy_(torch.from_numpy(lin.weight.data.T.copy()))
            t.bias.copy_(torch.from_numpy(lin.bias.data.copy()))
        layers.append(t)
        if i < len(linears) - 1:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def run_block(step, data, steps: int, start: int) -> tuple[float, float]:
    """Time ``steps`` training steps; returns (seconds, last loss)."""
    loss = float("nan")
    t0 = time.perf_counter()
    for k in range(steps):
        x, y = data[(start + k) % len(data)]
        loss = step(x, y)
    return time.perf_counter() - t0, float(loss)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=21, help="blocks per library (odd)")
    parser.add_argument("--steps", type=int, default=50, help="training steps per block")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps per library")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=None, help="default: NumPy's BLAS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=50.0,
                        help="stop adding blocks after this long (at least 3 blocks run)")
    args = parser.parse_args(argv)

    import torch

    threads = args.threads or blas_threads()
    torch.set_num_threads(threads)
    if args.threads:
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(threads, user_api="blas")
        except ImportError:
            print("threadpoolctl missing: --threads only applies to torch")

    data = make_data(16, args.batch, args.seed)
    torch_data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]
    gp_step, model = gradproof_trainer(args.lr, args.seed)
    pt_step = torch_trainer(model, args.lr)  # same initial weights

    run_block(gp_step, data, args.warmup, 0)
    run_block(pt_step, torch_data, args.warmup, 0)
    gp_rates, pt_rates, ratios = [], [], []
    gp_loss = pt_loss = float("nan")
    t_start = time.perf_counter()
    for b in range(args.blocks):
        if b >= 3 and time.perf_counter() - t_start > args.max_seconds:
            print(f"(time budget of {args.max_seconds:g} s reached after {b} blocks)")
            break
        start = args.warmup + b * args.steps
        gp_s, gp_loss = run_block(gp_step, data, args.steps, start)
        pt_s, pt_loss = run_block(pt_step, torch_data, args.steps, start)
        gp_rates.append(args.steps * args.batch / gp_s)
        pt_rates.append(args.steps * args.batch / pt_s)
        ratios.append(pt_s / gp_s)

    gp_med, pt_med = statistics.median(gp_rates), statistics.median(pt_rates)
    ratio = statistics.median(ratios)
    blocks = len(ratios)
    total = args.warmup + blocks * args.steps
    print(f"MLP {'-'.join(map(str, SIZES))}, ReLU, float32, batch {args.batch}, SGD lr {args.lr}, "
          f"softmax cross-entropy; {blocks} interleaved blocks of {args.steps} steps")
    print(f"threads: {threads} (NumPy BLAS and torch.set_num_threads); "
          f"torch {torch.__version__}, NumPy {np.__version__}; {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print()
    print(f"{'library':<12}{'median samples/s':>18}{'min':>12}{'max':>12}{'loss after':>14}")
    for name, rates, loss in (("gradproof", gp_rates, gp_loss), ("pytorch", pt_rates, pt_loss)):
        print(f"{name:<12}{statistics.median(rates):>18,.0f}{min(rates):>12,.0f}"
              f"{max(rates):>12,.0f}{loss:>14.4f}")
    print()
    print(f"ratio gradproof / pytorch (median of {blocks} paired blocks): {ratio:.3f}  "
          f"(ratio of medians {gp_med / pt_med:.3f}; {total} steps each)")
    print(f"gradproof at or above PyTorch's CPU throughput: {'yes' if ratio >= 1 else 'NO'}")
    return {"threads": threads, "gradproof": gp_med, "pytorch": pt_med, "ratio": ratio}


if __name__ == "__main__":
    main()

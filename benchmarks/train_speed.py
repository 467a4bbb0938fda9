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

import numpy as np
from _interleave import gradproof_sgd_step, interleave, print_report, set_threads, torch_sgd_step

from gradproof.nn.models import MLP

SIZES = (784, 256, 256, 10)


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
    return gradproof_sgd_step(model, lr), model


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
    return torch_sgd_step(torch.nn.Sequential(*layers), lr)


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

    threads = set_threads(args.threads)
    data = make_data(16, args.batch, args.seed)
    gp_step, model = gradproof_trainer(args.lr, args.seed)
    pt_step = torch_trainer(model, args.lr)  # same initial weights
    run = interleave(
        gp_step, pt_step, data, blocks=args.blocks, steps=args.steps,
        warmup=args.warmup, batch=args.batch, max_seconds=args.max_seconds,
    )

    print(f"MLP {'-'.join(map(str, SIZES))}, ReLU, float32, batch {args.batch}, SGD lr {args.lr}, "
          f"softmax cross-entropy; {run.blocks} interleaved blocks of {args.steps} steps")
    print_report(run, threads)
    print(f"gradproof at or above PyTorch's CPU throughput: {'yes' if run.ratio >= 1 else 'NO'}")
    return run.summary(threads)


if __name__ == "__main__":
    main()

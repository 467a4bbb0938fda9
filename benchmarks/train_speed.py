"""MLP training speed: gradproof.nn against PyTorch on the CPU, one process per library.

Trains the same MLP (784-256-256-10, ReLU, float32, batch 128, plain SGD with
lr 0.01, softmax cross-entropy) from the same initial weights with both
libraries on the same synthetic batches. Each library runs in its own worker
process with the same thread count; rounds of steps alternate (one library
runs while the other sleeps, the first library alternates), see
``benchmarks/_interleave.py``. Prints samples per second per library (median
over rounds), the ratio (median of the per-round ratios) and the load
average. A third worker runs the same step in the fewest NumPy calls (the
floor any NumPy library can reach here; ``--no-floor`` skips it). Tests never
time anything; this script is where speed is measured.

    python benchmarks/train_speed.py                 # about a minute
    python benchmarks/train_speed.py --threads 1
    python benchmarks/train_speed.py --rounds 41 --steps 100 --max-seconds 600
"""

from __future__ import annotations

import argparse

import numpy as np
from _interleave import (
    add_arguments,
    compare,
    default_threads,
    print_report,
    sgd_classifier,
)

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


def gradproof_model(seed: int):
    from gradproof.nn.models import MLP

    return MLP(SIZES[0], list(SIZES[1:-1]), SIZES[-1], dtype=np.float32, rng=seed)


def torch_network(model_np):
    """The same network in PyTorch, with ``model_np``'s weights."""
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
    return torch.nn.Sequential(*layers)


def numpy_floor_step(model_np, lr: float):
    """``step(x, y) -> loss``: the same SGD step in the fewest NumPy calls, no module API.

    The floor a NumPy library can reach on this network: the same GEMMs
    (written into reused buffers), the bias added in place, ReLU in place, one
    softmax pass, and no input checks, no caches, no non-finite check, no
    ``grad`` objects. gradproof's distance to it is its own overhead; torch's
    distance to it is what is left to win.
    """
    linears = [m for m in model_np.layers if hasattr(m, "weight")]
    weights = [lin.weight.data.copy() for lin in linears]
    biases = [lin.bias.data.copy() for lin in linears]
    grads = [np.empty_like(w) for w in weights]
    scratch = [np.empty_like(w) for w in weights]
    last = len(weights) - 1

    def step(x, y):
        acts, h = [x], x
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = h @ w
            h += b
            if i < last:
                np.maximum(h, 0, out=h)
            acts.append(h)
        n, rows = len(y), np.arange(len(y))
        e = np.exp(h - h.max(axis=1, keepdims=True))
        total = e.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(total[:, 0]) - np.log(e[rows, y])))
        e *= 1 / (n * total)
        e[rows, y] -= np.float32(1 / n)
        d = e
        for i in range(last, -1, -1):
            np.matmul(acts[i].T, d, out=grads[i])
            db = d.sum(axis=0)
            if i > 0:
                d = d @ weights[i].T
                d *= acts[i] > 0
            np.multiply(grads[i], -lr, out=scratch[i])
            weights[i] += scratch[i]
            biases[i] -= np.float32(lr) * db
        return loss

    return step


def build(library: str, options: dict):
    """``(step, batches)`` for one worker (see ``_interleave.compare``)."""
    model = gradproof_model(options["seed"])
    batches = make_data(16, options["batch"], options["seed"])
    if library == "numpy-floor":
        return numpy_floor_step(model, options["lr"]), batches
    return sgd_classifier(library, model, torch_network, batches, options["lr"])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, rounds=21, steps=100, warmup=30, max_seconds=60.0)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the third worker, the same step in the fewest NumPy calls")
    args = parser.parse_args(argv)

    threads = args.threads or default_threads()
    options = {"batch": args.batch, "lr": args.lr, "seed": args.seed}
    run = compare(build, options, name="mlp", rounds=args.rounds, steps=args.steps,
                  warmup=args.warmup, batch=args.batch, threads=threads,
                  max_seconds=args.max_seconds, extra=() if args.no_floor else ("numpy-floor",))
    print(f"MLP {'-'.join(map(str, SIZES))}, ReLU, float32, batch {args.batch}, SGD lr {args.lr}, "
          f"softmax cross-entropy; {run.rounds} rounds of {args.steps} steps per library")
    print_report(run)
    return run.summary()


if __name__ == "__main__":
    main()

"""CNN training speed: gradproof.nn against PyTorch on the CPU, one process per library.

Part 1 trains the same CNN with both libraries from the same initial weights,
on the same synthetic 1x28x28 images (float32, batch 64, plain SGD lr 0.01,
softmax cross-entropy)::

    conv(1->16, 3x3, pad 1) - ReLU - maxpool 2 - conv(16->32, 3x3, pad 1) - ReLU
    - maxpool 2 - affine(32*7*7 -> 10)

(gradproof's :class:`~gradproof.nn.cnn.SmallCNN` pools before the ReLU, the
same function with the same gradients.) Each library runs in its own worker
process with the same thread count; rounds of steps alternate, one library
running while the other sleeps (``benchmarks/_interleave.py``). Prints
samples per second (median over rounds), the ratio (median of the per-round
ratios) and the load average.

Part 2 (``--layers``) times each module of gradproof's SmallCNN, forward and
backward, and the optimizer step, in this process with the same thread count
(the per-layer table of docs/nn_conv.md).

Part 3 times the fast conv (:func:`~gradproof.nn.functional.conv2d`) against
the loop version (:func:`~gradproof.nn.functional.conv2d_naive`), forward and
backward, on the two conv layers of that network (batch 64, float32), both on
one thread (``--skip-naive`` leaves it out).

    python benchmarks/train_speed_cnn.py                  # about 1-2 minutes
    python benchmarks/train_speed_cnn.py --threads 1 --layers --skip-naive
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from functools import partial

import numpy as np
from _interleave import (
    add_arguments,
    compare,
    default_threads,
    layer_times,
    print_layer_times,
    print_report,
    sgd_classifier,
)

from gradproof.nn import functional as F

BATCH_SHAPE = (1, 28, 28)
CONV_SHAPES = {  # name: (x shape, w shape) at batch 64
    "conv1 1->16 on 28x28": ((64, 1, 28, 28), (16, 1, 3, 3)),
    "conv2 16->32 on 14x14": ((64, 16, 14, 14), (32, 16, 3, 3)),
}


def make_data(n_batches: int, batch: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic image batches: float32 (batch, 1, 28, 28), int64 labels (batch,)."""
    rng = np.random.default_rng(seed)
    return [
        (
            rng.standard_normal((batch, *BATCH_SHAPE), dtype=np.float32),
            rng.integers(0, 10, size=batch),
        )
        for _ in range(n_batches)
    ]


def gradproof_model(seed: int):
    from gradproof.nn.cnn import SmallCNN

    return SmallCNN(1, 28, 10, channels=(16, 32), dtype=np.float32, rng=seed)


def torch_network(model):
    """The same network in PyTorch (conv - ReLU - pool order), with ``model``'s weights."""
    import torch

    from gradproof.nn.conv import Conv2d

    layers = []
    for m in model.layers:
        if isinstance(m, Conv2d):
            conv = torch.nn.Conv2d(
                m.in_channels,
                m.out_channels,
                m.weight.shape[2:],
                stride=m.stride,
                padding=m.padding,
            )
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(m.weight.data))
                conv.bias.copy_(torch.from_numpy(m.bias.data))
            layers += [conv, torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
    linear = model.layers[-1]
    fc = torch.nn.Linear(linear.in_features, linear.out_features)
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(linear.weight.data.T.copy()))
        fc.bias.copy_(torch.from_numpy(linear.bias.data))
    return torch.nn.Sequential(*layers, torch.nn.Flatten(), fc)


def build(library: str, options: dict):
    """``(step, batches)`` for one worker (see ``_interleave.compare``)."""
    return sgd_classifier(library, gradproof_model(options["seed"]), torch_network,
                          make_data(8, options["batch"], options["seed"]), options["lr"])


def best_time(fn, repeats: int) -> float:
    """The fastest of ``repeats`` calls of ``fn()``, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def conv_speedups(repeats: int, fast_repeats: int, seed: int) -> list[dict]:
    """Fast vs naive conv2d, forward and backward, on the benchmark network's conv shapes."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, (x_shape, w_shape) in CONV_SHAPES.items():
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal(w_shape, dtype=np.float32)
        b = rng.standard_normal(w_shape[0], dtype=np.float32)
        out, cache = F.conv2d(x, w, b, stride=1, pad=1)
        out_naive, cache_naive = F.conv2d_naive(x, w, b, stride=1, pad=1)
        dout = rng.standard_normal(out.shape, dtype=np.float32)
        grads = F.conv2d_backward(dout, cache)
        grads_naive = F.conv2d_naive_backward(dout, cache_naive)
        diff = max(
            float(np.max(np.abs(a - n)) / (np.max(np.abs(n)) or 1.0))
            for a, n in zip((out, *grads), (out_naive, *grads_naive))
        )
        row = {
            "layer": name,
            "fast_fwd": best_time(partial(F.conv2d, x, w, b, 1, 1), fast_repeats),
            "naive_fwd": best_time(partial(F.conv2d_naive, x, w, b, 1, 1), repeats),
            "fast_bwd": best_time(partial(F.conv2d_backward, dout, cache), fast_repeats),
            "naive_bwd": best_time(partial(F.conv2d_naive_backward, dout, cache_naive), repeats),
            "max_rel_diff": diff,
        }
        rows.append(row)
    return rows


@contextmanager
def one_blas_thread():
    """Limit NumPy's BLAS to one thread inside the block (when threadpoolctl is installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, rounds=15, steps=30, warmup=10, max_seconds=120.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--layers", action="store_true", help="part 2: time each module")
    parser.add_argument("--naive-repeats", type=int, default=1, help="timed naive conv calls")
    parser.add_argument("--skip-naive", action="store_true", help="skip part 3")
    args = parser.parse_args(argv)

    threads = args.threads or default_threads()
    options = {"batch": args.batch, "lr": args.lr, "seed": args.seed}
    run = compare(build, options, name="cnn", rounds=args.rounds, steps=args.steps,
                  warmup=args.warmup, batch=args.batch, threads=threads,
                  max_seconds=args.max_seconds)
    print(
        f"CNN conv(1->16)-ReLU-pool-conv(16->32)-ReLU-pool-affine(1568->10), 1x28x28, float32, "
        f"batch {args.batch}, SGD lr {args.lr}; {run.rounds} rounds of {args.steps} steps per "
        "library"
    )
    print_report(run)
    result = run.summary()

    if args.layers:
        print()
        rows = layer_times(gradproof_model(args.seed), make_data(8, args.batch, args.seed),
                           args.lr, 3 * args.steps, threads)
        print_layer_times(rows, threads, 3 * args.steps)
        result["layers"] = rows

    if not args.skip_naive:
        print()
        print(
            f"fast conv2d vs conv2d_naive (float32, stride 1, pad 1, one thread; best of "
            f"{args.naive_repeats} naive / 20 fast calls)"
        )
        print(f"{'layer':<24}{'pass':<10}{'naive ms':>10}{'fast ms':>10}{'speed-up':>10}")
        with one_blas_thread():
            rows = conv_speedups(args.naive_repeats, 20, args.seed)
        for row in rows:
            for step in ("fwd", "bwd"):
                naive, fast = row[f"naive_{step}"], row[f"fast_{step}"]
                label = "forward" if step == "fwd" else "backward"
                print(
                    f"{row['layer']:<24}{label:<10}{1e3 * naive:>10.1f}{1e3 * fast:>10.2f}"
                    f"{naive / fast:>9.0f}x"
                )
        worst = max(row["max_rel_diff"] for row in rows)
        print(f"largest difference fast vs naive (relative to the largest value): {worst:.1e}")
        result["conv"] = rows
    return result


if __name__ == "__main__":
    main()

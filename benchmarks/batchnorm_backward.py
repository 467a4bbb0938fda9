"""Batch-norm backward: the staged graph walk against the closed form.

``batchnorm_backward`` backpropagates through every node of the forward graph
(mean, centring, square, variance, sqrt, reciprocal, product); ``batchnorm_backward_alt``
uses the simplified formula ``dx = (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) / std``.
Both are timed on the same caches, interleaved (staged, closed, staged, ...) so
that both see the same machine load; the table gives the median time of each
and the median of the per-pair speed-ups, and the largest difference between
their gradients (they must agree to rounding). Tests never time anything; this
script is where speed is measured.

    python benchmarks/batchnorm_backward.py            # a few seconds
    python benchmarks/batchnorm_backward.py --repeats 101
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from gradproof.nn.functional import batchnorm, batchnorm_backward, batchnorm_backward_alt

SHAPES = ((64, 128), (256, 512), (1024, 1024), (4096, 256))


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def measure(shape: tuple[int, int], repeats: int, dtype: type, seed: int = 0) -> dict:
    """Median times of both backwards on one shape, the median speed-up, their max difference."""
    rng = np.random.default_rng(seed)
    N, D = shape
    x = (5 * rng.standard_normal(shape) + 12).astype(dtype)
    gamma, beta = rng.standard_normal(D).astype(dtype), rng.standard_normal(D).astype(dtype)
    _, cache = batchnorm(x, gamma, beta, {"mode": "train"})
    dout = rng.standard_normal(shape).astype(dtype)
    staged, closed = batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache)  # warm up
    diff = max(
        float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
        for a, b in zip(staged, closed)
    )
    t_staged, t_closed = [], []
    for _ in range(repeats):
        t_staged.append(timed(batchnorm_backward, dout, cache))
        t_closed.append(timed(batchnorm_backward_alt, dout, cache))
    return {
        "staged": statistics.median(t_staged),
        "closed": statistics.median(t_closed),
        "speedup": statistics.median(s / c for s, c in zip(t_staged, t_closed)),
        "diff": diff,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31, help="timed pairs per shape (31)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    args = parser.parse_args(argv)
    dtype = np.dtype(args.dtype).type
    print(f"batch-norm backward, {args.dtype}, median of {args.repeats} interleaved pairs")
    header = ("N x D", "staged ms", "closed ms", "speed-up", "max rel diff")
    print("{:>12}  {:>10}  {:>10}  {:>8}  {:>12}".format(*header))
    for shape in SHAPES:
        r = measure(shape, args.repeats, dtype)
        print(
            f"{shape[0]:>5} x {shape[1]:<5}  {1e3 * r['staged']:>10.3f}  {1e3 * r['closed']:>10.3f}"
            f"  {r['speedup']:>7.2f}x  {r['diff']:>12.1e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Full mode's memory: peak bytes allocated against the input size.

``check_vjp(..., mode="full")`` measures every coordinate of an input alone.
The directions are sparse and measured in chunks, so the peak memory grows
like the input (O(n)), not like a dense Jacobian or one dense direction per
coordinate (O(n^2): 3.2 GB at n = 20,000 with the four perturbed copies).

    python benchmarks/full_mode_memory.py [--sizes 1000 4000 16000]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from gradproof import check_vjp


def tanh_layer(x):
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, out):
    return dout * (1 - out**2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    args = parser.parse_args()
    print(f"{'n':>8} {'forward calls':>14} {'seconds':>8} {'peak MB':>8} "
          f"{'dense n^2 directions, MB':>25}")
    for n in args.sizes:
        x = np.random.default_rng(0).standard_normal(n)
        tracemalloc.start()
        t0 = time.perf_counter()
        report = check_vjp(tanh_layer, tanh_backward, x, mode="full", seed=0)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert report.ok, report
        print(f"{n:>8} {report.n_evals:>14} {seconds:>8.2f} {peak / 2**20:>8.1f} "
              f"{5 * 8 * n * n / 2**20:>25.0f}")


if __name__ == "__main__":
    main()

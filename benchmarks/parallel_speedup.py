"""Parallel gradient checks: serial vs 2 worker processes vs a local Dask cluster.

The forward under test costs about 10 ms per call, as a real layer on real
data would: ``sleep`` (the cost of waiting, e.g. on I/O or another device) or
a NumPy computation (CPU work). Each check's report must be identical to the
serial one. Prints seconds and speed-ups.

    python benchmarks/parallel_speedup.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core per worker, no oversubscription
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from gradproof import check_vjp, process_pool  # noqa: E402
from gradproof.nn import functional as F  # noqa: E402


def _work_matrix() -> np.ndarray:
    # made in each call, not a global: Dask pickles __main__'s functions by value,
    # globals included, and a 320 kB global would be shipped with every task
    return np.random.default_rng(0).standard_normal((200, 200))


def _calibrate_rounds() -> int:
    """Matrix products that take about 10 ms on this machine."""
    work = _work_matrix()
    t0 = time.perf_counter()
    for _ in range(20):
        work @ work
    per = (time.perf_counter() - t0) / 20
    return max(int(0.010 / per), 1)


def affine_sleep(x, w, b):
    """An affine layer that also waits 10 ms per call."""
    time.sleep(0.010)
    return F.affine(x, w, b)


def affine_compute(x, w, b, rounds=1):
    """An affine layer that also burns ``rounds`` matrix products of CPU per call."""
    work = _work_matrix()
    m = work
    for _ in range(rounds):
        m = work @ m
        m /= np.abs(m).max()
    return F.affine(x, w, b)




def wrong_row_backward(dout, cache):
    dx, dw, db = F.affine_backward(dout, cache)
    dw = dw.copy()
    dw[2] *= 1.01
    return dx, dw, db


def _inputs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((8, 6)), rng.standard_normal((6, 4)), rng.standard_normal(4)


CASES = [
    ("correct, auto mode", F.affine_backward, "auto"),
    ("wrong dw row, auto mode", wrong_row_backward, "auto"),
    ("correct, full mode (76 coordinates)", F.affine_backward, "full"),
]


def _timed(forward, backward, mode, executor):
    t0 = time.perf_counter()
    report = check_vjp(forward, backward, *_inputs(), mode=mode, seed=0, executor=executor)
    return time.perf_counter() - t0, report


def _same(a, b) -> bool:
    da, db = a.to_dict(), b.to_dict()
    da.pop("seconds")
    db.pop("seconds")
    return da == db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the sleep forward only")
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args()
    forwards = [("sleep 10 ms", affine_sleep)]
    if not args.quick:
        # calibrated here, once: the workers import this script, and a global
        # calibrated there would give them a different amount of work
        rounds = _calibrate_rounds()
        forwards.append((f"NumPy ~10 ms ({rounds} matmuls 200x200)",
                         functools.partial(affine_compute, rounds=rounds)))

    pool = process_pool(2)
    # start both workers (two tasks in flight at once) and let them import this
    # script and gradproof before timing
    list(pool.map(time.sleep, [0.5, 0.5]))
    check_vjp(affine_sleep, F.affine_backward, *_inputs(), seed=1, executor=pool)
    executors = [("2 processes", pool)]
    cluster = client = None
    if not args.no_dask:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
        executors.append(("Dask LocalCluster, 2 workers", client.get_executor()))

    print(f"{'forward':<40} {'case':<38} {'calls':>6} {'serial s':>9} "
          + " ".join(f"{name + ' s (x)':>32}" for name, _ in executors))
    try:
        for fname, forward in forwards:
            for case, backward, mode in CASES:
                t_serial, serial = _timed(forward, backward, mode, None)
                cells = []
                for _, ex in executors:
                    t, report = _timed(forward, backward, mode, ex)
                    flag = "" if _same(report, serial) else " DIFFERS"
                    cells.append(f"{t:8.2f} ({t_serial / t:4.2f}x){flag}")
                print(f"{fname:<40} {case:<38} {serial.n_evals:>6} {t_serial:>9.2f} "
                      + " ".join(f"{c:>32}" for c in cells))
    finally:
        pool.shutdown()
        if client is not None:
            client.close()
            cluster.close()


if __name__ == "__main__":
    main()

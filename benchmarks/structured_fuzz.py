"""Structured bugs planted at random in gradproof.nn layers: caught, and where?

    python benchmarks/structured_fuzz.py [--seed 0] [--rounds 4]

For every layer of ``planted_bugs.py`` (27 layers and losses, float64 and
float32) and every checked input, bugs are planted on random structures — one
slice along a random axis, every k-th index along an axis, one entry per row,
one coordinate, 3 % of the coordinates at random — with a random factor (x0.5,
x0.98, x1.001, x1.02, zeroed, sign flipped). Each must end ``failed`` with its
worst coordinate inside the planted structure; each correct layer must be
``ok``. Prints the counts and every exception (missed, inconclusive, worst
coordinate outside the structure).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from planted_bugs import LOSSES, checked_inputs, gradients_at, layers  # noqa: E402

from gradproof import check_vjp  # noqa: E402

FACTORS = (0.5, 0.98, 1.001, 1.02, 0.0, -1.0)


def structures(rng: np.random.Generator, shape: tuple[int, ...]) -> list[tuple[str, np.ndarray]]:
    """Random structures of an input of ``shape``: (label, boolean mask)."""
    out = []
    nd = len(shape)
    if nd >= 2:
        axis = int(rng.integers(nd))
        index = [slice(None)] * nd
        index[axis] = int(rng.integers(shape[axis]))
        mask = np.zeros(shape, bool)
        mask[tuple(index)] = True
        out.append((f"slice {index[axis]} of axis {axis}", mask))
        if shape[axis] >= 6:
            k = int(rng.integers(2, max(3, shape[axis] // 2)))
            start = int(rng.integers(k))
            index[axis] = slice(start, None, k)
            mask = np.zeros(shape, bool)
            mask[tuple(index)] = True
            out.append((f"every {k}th index from {start} of axis {axis}", mask))
        mask = np.zeros(shape, bool)
        rows = mask.reshape(shape[0], -1)
        rows[np.arange(shape[0]), rng.integers(0, rows.shape[1], shape[0])] = True
        out.append(("one entry per row", mask))
    mask = np.zeros(int(np.prod(shape)), bool)
    mask[rng.integers(mask.size)] = True
    out.append(("one coordinate", mask.reshape(shape)))
    mask = rng.random(shape) < 0.03
    if mask.any():
        out.append(("3 % at random", mask))
    return out


def planted(backward, which: int, mask: np.ndarray, factor: float):
    def buggy(*args):
        grads = backward(*args)
        grads = list(grads) if isinstance(grads, (tuple, list)) else [grads]
        g = np.array(grads[which], copy=True)
        g[mask] = g[mask] * factor
        grads[which] = g
        return tuple(grads)

    return buggy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    t0 = time.perf_counter()
    counts: dict[tuple[str, str], int] = {}
    odd: list[str] = []
    for rnd in range(args.rounds):
        rng = np.random.default_rng(1000 + args.seed + rnd)
        for dtype in (np.float64, np.float32):
            dname = np.dtype(dtype).name
            for name, forward, backward, inputs in layers(rng, dtype):
                wrt = [0] if name in LOSSES else None
                checked = checked_inputs(name, inputs)
                report = check_vjp(forward, backward, *inputs, seed=rnd, wrt=wrt)
                counts[("correct", dname)] = counts.get(("correct", dname), 0) + 1
                if not report.ok:
                    odd.append(f"{dname} correct {name}: {report.verdict}")
                grads = gradients_at(forward, backward, inputs, rng, dtype)
                for which in checked:
                    g = np.asarray(grads[which], np.float64)
                    for label, mask in structures(rng, g.shape):
                        if np.abs(g[mask]).max() < 1e-3 * np.abs(g).max():
                            continue  # the plant would be (nearly) a no-op
                        factor = float(rng.choice(FACTORS))
                        report = check_vjp(forward, planted(backward, which, mask, factor),
                                           *inputs, seed=rnd, wrt=wrt)
                        counts[("bug", dname)] = counts.get(("bug", dname), 0) + 1
                        worst = report.inputs[which].worst
                        what = f"{dname} {name}[{which}] {label} x{factor}"
                        if report.ok:
                            odd.append(f"MISSED {what}")
                        elif report.verdict == "inconclusive":
                            odd.append(f"inconclusive {what}")
                        elif worst and not mask[worst[0][0]]:
                            odd.append(f"worst coordinate outside: {what}: {worst[0][0]}")
    for (kind, dname), n in sorted(counts.items()):
        print(f"{kind:8s} {dname}: {n} checks")
    print(f"exceptions: {len(odd)}")
    for line in odd:
        print("  " + line)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()

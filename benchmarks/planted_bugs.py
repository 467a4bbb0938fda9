"""Planted bugs: one wrong gradient coordinate in each of gradproof.nn's layers.

For every layer, dtype (float64, float32), seed and input, one coordinate of
the backward's gradient is multiplied by ``1 + eps`` (eps = 1e-3 and 5e-2) and
the layer is checked with ``check_vjp``'s defaults. A plant is a no-op where
that coordinate's gradient is 0 (a ReLU's negative side, a max-pool's
non-maxima); the figure that matters is how many of the effective plants pass.

    python benchmarks/planted_bugs.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from gradproof import check_vjp
from gradproof.nn import functional as F

LOSSES = ("softmax_loss", "svm_loss", "softmax_loss_big", "mse", "bce", "huber")


def _loss(fn):
    return (lambda *a: fn(*a)), (lambda d, dx: (d * dx, None))


def layers(rng, dtype):
    """``(name, forward, backward, inputs)`` for each layer, at small random shapes."""
    def r(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    n, d, m, h = 4, 6, 5, 5
    y = rng.integers(0, m, n)
    yield "affine", F.affine, F.affine_backward, (r(n, d), r(d, m), r(m))
    for name in ("relu", "sigmoid", "tanh", "gelu", "softplus", "silu", "elu", "leaky_relu"):
        yield name, getattr(F, name), getattr(F, name + "_backward"), (r(n, d, scale=3),)
    yield ("softmax_loss", *_loss(F.softmax_loss), (r(n, m, scale=3), y))
    yield ("svm_loss", *_loss(F.svm_loss), (r(n, m, scale=3), y))
    yield ("softmax_loss_big", *_loss(F.softmax_loss), (r(n, m, scale=300), y))
    yield ("mse", *_loss(F.mse_loss), (r(n, m), r(n, m)))
    yield ("bce", *_loss(F.bce_with_logits_loss),
           (r(n, m, scale=5), (rng.random((n, m)) > 0.5).astype(dtype)))
    yield ("huber", *_loss(F.huber_loss), (r(n, m, scale=2), r(n, m)))
    yield ("batchnorm", F.batchnorm, F.batchnorm_backward,
           (r(8, d, scale=2) + 3, r(d), r(d), {"mode": "train"}))
    yield ("batchnorm_alt", F.batchnorm, F.batchnorm_backward_alt,
           (r(8, d) + 3, r(d), r(d), {"mode": "train"}))
    yield "layernorm", F.layernorm, F.layernorm_backward, (r(n, d), r(d), r(d))
    yield ("groupnorm", lambda x, g, b: F.groupnorm(x, g, b, 2), F.groupnorm_backward,
           (r(2, 4, 3, 3), r(1, 4, 1, 1), r(1, 4, 1, 1)))
    yield ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, pad=1), F.conv2d_backward,
           (r(2, 3, 7, 7), r(4, 3, 3, 3), r(4)))
    yield "maxpool", lambda x: F.max_pool2d(x, 3, 3, 2), F.max_pool2d_backward, (r(2, 2, 7, 7),)
    yield "avgpool", lambda x: F.avg_pool2d(x, 3, 3, 2), F.avg_pool2d_backward, (r(2, 2, 7, 7),)
    yield ("rnn", F.rnn, F.rnn_backward,
           (r(2, 4, 3), r(2, h), r(3, h, scale=0.5), r(h, h, scale=0.5), r(h)))
    yield ("lstm", F.lstm, F.lstm_backward,
           (r(2, 4, 3), r(2, h), r(3, 4 * h, scale=0.5), r(h, 4 * h, scale=0.5), r(4 * h)))
    yield ("gru", F.gru, F.gru_backward,
           (r(2, 4, 3), r(2, h), r(3, 3 * h, scale=0.5), r(h, 3 * h, scale=0.5), r(3 * h),
            r(3 * h)))
    yield ("attention", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, causal=True),
           F.scaled_dot_product_attention_backward, (r(2, 4, 3), r(2, 4, 3), r(2, 4, 3)))
    yield "embedding", F.embedding, F.embedding_backward, (rng.integers(0, 5, (3, 4)), r(5, 3))


def planted(backward, which: int, k: int, factor: float):
    """``backward`` with coordinate ``k`` (flat) of gradient ``which`` multiplied by ``factor``."""
    def wrong(*args):
        grads = backward(*args)
        many = isinstance(grads, (tuple, list))
        out = list(grads) if many else [grads]
        g = np.array(out[which], copy=True, order="C")
        g.reshape(-1)[k] *= factor
        out[which] = g
        return tuple(out) if many else out[0]
    return wrong


def checked_inputs(name: str, inputs: tuple) -> list[int]:
    """The inputs whose gradients are planted: the scores of a loss, else every float array."""
    return [0] if name in LOSSES else [i for i, x in enumerate(inputs)
                                       if isinstance(x, np.ndarray) and x.dtype.kind == "f"]


def gradients_at(forward, backward, inputs: tuple, rng: np.random.Generator, dtype) -> tuple:
    """The layer's gradients for a random upstream gradient drawn from ``rng``."""
    out, cache = forward(*inputs)
    dout = rng.standard_normal(np.shape(out)).astype(dtype) if isinstance(out, np.ndarray) else 1.0
    grads = backward(dout, cache)
    return grads if isinstance(grads, (tuple, list)) else (grads,)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    t0 = time.perf_counter()
    rows = {}
    for dtype in (np.float64, np.float32):
        for seed in range(args.seeds):
            rng = np.random.default_rng(100 + seed)
            for name, forward, backward, inputs in layers(rng, dtype):
                checked = checked_inputs(name, inputs)
                grads = gradients_at(forward, backward, inputs, rng, dtype)
                for which in checked:
                    g = np.abs(np.asarray(grads[which], np.float64)).reshape(-1)
                    for factor in (1.001, 1.05):
                        k = int(rng.integers(0, g.size))
                        report = check_vjp(forward, planted(backward, which, k, factor), *inputs,
                                           seed=seed, wrt=[0] if name in LOSSES else None)
                        # the plant's size relative to the gradient's largest entry
                        size = (factor - 1) * g[k] / max(g.max(), 1e-300)
                        key = (np.dtype(dtype).name, "effective" if size > 1e-6 else "no-op")
                        row = rows.setdefault(key, {"planted": 0, "caught": 0, "missed": []})
                        row["planted"] += 1
                        row["caught"] += not report.ok
                        if report.ok:
                            row["missed"].append(f"{name}[{which}] k={k} size {size:.1e}")
                        elif size <= 1e-6:
                            row.setdefault("flagged", []).append(
                                f"{name}[{which}] k={k} {report.verdict}")
    print("| dtype | plants | planted | caught | passed |")
    print("|---|---|---|---|---|")
    for (dtype, kind), row in sorted(rows.items()):
        print(f"| {dtype} | {kind} | {row['planted']} | {row['caught']} | "
              f"{row['planted'] - row['caught']} |")
    for (dtype, kind), row in sorted(rows.items()):
        if kind == "effective" and row["missed"]:
            print(f"missed ({dtype}): " + "; ".join(row["missed"]))
        if row.get("flagged"):
            print(f"no-op plants not ok ({dtype}): " + "; ".join(row["flagged"]))
    print(f"({time.perf_counter() - t0:.0f} s; effective: the planted error is above 1e-6 of "
          "the gradient's largest entry; no-op: that coordinate's gradient is ~0)")


if __name__ == "__main__":
    main()

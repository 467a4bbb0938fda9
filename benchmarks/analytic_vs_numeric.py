"""Analytic vs numerical backward, in numbers: cost and accuracy as layers grow, and training.

    python benchmarks/analytic_vs_numeric.py [--budget 2] [--epochs 20] [--png PATH]

Part 1, layers of growing size (10 to 10^6 parameters or elements), one
backward each, timed and compared with the exact (analytic) gradient:

* ``affine``: ``out = x @ w + b`` with x (8, D), w (D, M), P = D*M parameters.
  Analytic ``dw = x.T @ dout``; numerical VJP of w by central differences
  (2 forward calls per parameter) and by complex step (1 call per parameter).
* ``tanh``: an elementwise activation on n elements. Analytic
  ``dout * (1 - out^2)``; the elementwise fast path of ``gradproof.nn.numeric``
  (``nn/numeric_layer.py``; central: 2 calls, Richardson: 4, complex step: 1,
  whatever n); the general numerical VJP (2n calls).

Where a numerical VJP would take more than ``--budget`` seconds it is measured
on a random sample of coordinates and its full time extrapolated (``est``).

Part 2, training the MLP 64-64-10 (tanh) on digits with each backward: the
analytic one; the numeric activation (fast path, central and complex step);
the numeric activation by full VJP and every weight's gradient by central
differences of the loss, both for as many steps as ``--train-budget`` seconds
allow, with the time a full run would take.

Prints two tables and saves a log-log plot of time against size.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from gradproof.data import load_digits
from gradproof.nn import MLP
from gradproof.nn.functional import softmax_loss
from gradproof.nn.numeric_layer import NumericCostWarning, numeric, numerical_vjp
from gradproof.optim import Adam
from gradproof.train.trainer import Trainer

SIZES = [10, 100, 1_000, 10_000, 100_000, 1_000_000]
N_BATCH = 8


def timed(fn, min_time: float = 0.05) -> tuple[float, object]:
    """Seconds per call of ``fn`` (repeated to at least ``min_time``), and its result."""
    result = fn()
    start, calls = time.perf_counter(), 0
    while True:
        result = fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / calls, result


def rel_error(approx: np.ndarray, exact: np.ndarray) -> float:
    """Normwise relative error ``max|approx - exact| / max|exact|``."""
    return float(np.max(np.abs(approx - exact)) / max(np.max(np.abs(exact)), 1e-300))


def numerical_row(layer: str, size: int, method: str, f, w, dout, exact, per_coord: int,
                  budget: float, rng) -> dict:
    """Time a full numerical VJP of ``f`` at ``w``, or extrapolate it from a sample."""
    start = time.perf_counter()
    sample = rng.choice(w.size, size=min(w.size, 20), replace=False)
    numerical_vjp(f, w, dout, method, coords=sample)
    per = (time.perf_counter() - start) / sample.size
    if per * w.size <= budget:
        seconds, dx = timed(lambda: numerical_vjp(f, w, dout, method), min_time=0.0)
        error, how = rel_error(dx, exact), "measured"
    else:
        k = max(20, min(w.size, int(budget / per)))
        coords = rng.choice(w.size, size=k, replace=False)
        start = time.perf_counter()
        dx = numerical_vjp(f, w, dout, method, coords=coords)
        seconds = (time.perf_counter() - start) / k * w.size
        error, how = rel_error(dx, exact.reshape(-1)[coords]), f"est. from {k} coords"
    return dict(layer=layer, size=size, method=f"numerical VJP ({method})",
                calls=per_coord * w.size, seconds=seconds, error=error, how=how)


def affine_rows(size: int, budget: float, rng) -> list[dict]:
    D = 10 ** ((len(str(size)) - 1) // 2)  # 10 -> 1x10, 1000 -> 10x100, 10^6 -> 1000x1000
    M = size // D
    x = rng.standard_normal((N_BATCH, D))
    w = rng.standard_normal((D, M)) / np.sqrt(D)
    b = rng.standard_normal(M)
    dout = rng.standard_normal((N_BATCH, M))
    seconds, exact = timed(lambda: x.T @ dout)
    rows = [dict(layer="affine", size=D * M, method="analytic", calls=0, seconds=seconds,
                 error=0.0, how="measured")]
    for method, per in (("central", 2), ("complex", 1)):
        rows.append(numerical_row("affine", D * M, method, lambda v: x @ v + b, w, dout, exact,
                                  per, budget, rng))
    return rows


def tanh_rows(size: int, budget: float, rng) -> list[dict]:
    x = rng.standard_normal(size)
    dout = rng.standard_normal(size)
    out = np.tanh(x)
    seconds, exact = timed(lambda: dout * (1 - out * out))
    rows = [dict(layer="tanh", size=size, method="analytic", calls=0, seconds=seconds,
                 error=0.0, how="measured")]
    for label, method, richardson, calls in (("fast path (central)", "central", False, 2),
                                             ("fast path (Richardson)", "central", True, 4),
                                             ("fast path (complex)", "complex", False, 1)):
        layer = numeric(np.tanh, method=method, richardson=richardson, elementwise=True)
        _, cache = layer.forward(x)
        seconds, dx = timed(lambda: layer.backward(dout, cache))  # noqa: B023
        rows.append(dict(layer="tanh", size=size, method=label, calls=calls, seconds=seconds,
                         error=rel_error(dx, exact), how="measured"))
    rows.append(numerical_row("tanh", size, "central", np.tanh, x, dout, exact, 2, budget, rng))
    return rows


def print_table(rows: list[dict]) -> None:
    print("| layer | size | backward | calls of f | seconds | rel. error vs analytic | |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['layer']} | {r['size']:,} | {r['method']} | {r['calls']:,} | "
              f"{r['seconds']:.3g} | {r['error']:.1e} | {r['how']} |")


def save_plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for ax, layer in zip(axes, ("affine", "tanh")):
        methods = dict.fromkeys(r["method"] for r in rows if r["layer"] == layer)
        for method in methods:
            sel = [r for r in rows if r["layer"] == layer and r["method"] == method]
            sizes = [r["size"] for r in sel]
            ax.plot(sizes, [r["seconds"] for r in sel], marker="o", label=method)
            est = [r for r in sel if r["how"] != "measured"]
            if est:
                ax.scatter([r["size"] for r in est], [r["seconds"] for r in est],
                           facecolors="none", edgecolors="k", s=80, zorder=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("parameters" if layer == "affine" else "elements")
        ax.set_ylabel("seconds per backward")
        ax.set_title(f"{layer}: backward time (circled: extrapolated)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    print(f"saved {path}")


# --- part 2: training -----------------------------------------------------------------------
def train_row(label: str, activation, data, epochs: int, max_seconds: float | None = None,
              numeric_weights: bool = False) -> dict:
    model = MLP(64, [64], 10, activation=activation, init="xavier", rng=0)
    optimizer = Adam(model.parameters(), lr=3e-3)
    if not numeric_weights and max_seconds is None:
        trainer = Trainer(model, optimizer, batch_size=64, epochs=epochs, progress=False,
                          seed=0)
        start = time.perf_counter()
        trainer.fit(data)
        seconds = time.perf_counter() - start
        steps = trainer.step
        test_acc = trainer.evaluate(data.x_test, data.y_test)[1]
        return dict(label=label, steps=steps, seconds=seconds, per_step=seconds / steps,
                    full=seconds, test_acc=test_acc, done=True)
    # a hand loop that stops after max_seconds
    rng = np.random.default_rng(0)
    steps_per_epoch = -(-len(data.y_train) // 64)
    total_steps = epochs * steps_per_epoch
    start, steps = time.perf_counter(), 0
    while steps < total_steps and time.perf_counter() - start < max_seconds:
        order = rng.permutation(len(data.y_train))
        for i in range(0, len(order), 64):
            idx = order[i:i + 64]
            xb, yb = data.x_train[idx], data.y_train[idx]
            model.zero_grad()
            if numeric_weights:
                numeric_weight_gradients(model, xb, yb)
            else:
                _, dscores = softmax_loss(model.forward(xb), yb)
                model.backward(dscores)
            optimizer.step()
            steps += 1
            if steps >= total_steps or time.perf_counter() - start >= max_seconds:
                break
    seconds = time.perf_counter() - start
    model.eval()
    test_acc = float(np.mean(model.forward(data.x_test).argmax(axis=1) == data.y_test))
    return dict(label=label, steps=steps, seconds=seconds, per_step=seconds / steps,
                full=seconds / steps * total_steps, test_acc=test_acc,
                done=steps >= total_steps)


def numeric_weight_gradients(model, xb, yb) -> None:
    """Every parameter's gradient by central differences of the batch loss (2 forwards each)."""
    for p in model.parameters():
        original = p.data

        def loss_at(w, p=p):
            p.data = w
            return np.asarray(softmax_loss(model.forward(xb), yb)[0])

        p.grad[...] = numerical_vjp(loss_at, original, np.ones(()), "central")
        p.data = original


def training_rows(epochs: int, train_budget: float) -> list[dict]:
    data = load_digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericCostWarning)
        warnings.simplefilter("ignore", UserWarning)
        rows = [
            train_row("analytic tanh", "tanh", data, epochs),
            train_row("numeric tanh, fast path (central, 2 calls)",
                      numeric(np.tanh).module_class, data, epochs),
            train_row("numeric tanh, fast path (complex, 1 call)",
                      numeric(np.tanh, method="complex").module_class, data, epochs),
            train_row("numeric tanh, full VJP (2 x 64 x 64 calls)",
                      numeric(np.tanh, elementwise=False).module_class, data, epochs,
                      max_seconds=train_budget),
            train_row("every weight numerical (2 x 4,810 net forwards)", "tanh", data, epochs,
                      max_seconds=train_budget, numeric_weights=True),
        ]
    return rows


def print_training(rows: list[dict], epochs: int) -> None:
    base = rows[0]["per_step"]
    print(f"\nMLP 64-64-10 tanh on digits, Adam 3e-3, batch 64, {epochs} epochs "
          f"({rows[0]['steps']} steps)")
    print("| backward | steps run | s / step | x analytic | full run (s) | test acc |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        full = f"{r['full']:.1f}" if r["done"] else f"{r['full']:.0f} (est.)"
        note = "" if r["done"] else " (after the steps run)"
        print(f"| {r['label']} | {r['steps']} | {r['per_step']:.2e} | "
              f"{r['per_step'] / base:.1f} | {full} | {r['test_acc']:.3f}{note} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=2.0,
                        help="seconds per numerical VJP before extrapolating (default 2)")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    parser.add_argument("--train-budget", type=float, default=15.0,
                        help="seconds for each slow numerical training run (default 15)")
    parser.add_argument("--png", default=os.path.join(os.path.dirname(__file__),
                                                      "analytic_vs_numeric.png"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for size in SIZES:
        rows += affine_rows(size, args.budget, rng)
    for size in SIZES:
        rows += tanh_rows(size, args.budget, rng)
    print_table(rows)
    save_plot(rows, args.png)
    print_training(training_rows(args.epochs, args.train_budget), args.epochs)


if __name__ == "__main__":
    main()

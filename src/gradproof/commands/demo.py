"""``gradproof demo``: check a handful of layers, three of them buggy, and print the reports.

The correct layers are gradproof.nn's own; the buggy ones are what students
write: a batch-norm backward that forgets the variance path, a bias gradient
with an extra axis that broadcasting hides, a ReLU backward that writes into
``dout``.
"""

from __future__ import annotations

import numpy as np

from .. import check_vjp
from ..nn import functional as F

__all__ = ["run_demo"]


def _student_batchnorm_backward(dout, cache):
    """A common bug: the path through the variance is forgotten."""
    _, dgamma, dbeta = F.batchnorm_backward_alt(dout, cache)
    dxhat = dout * cache.gamma
    dx = (dxhat - dxhat.mean(axis=0)) * cache.inv_std
    return dx, dgamma, dbeta


def _student_affine_backward(dout, cache):
    """A shape bug that broadcasting hides: db of shape (1, M) for b of shape (M,)."""
    dx, dw, db = F.affine_backward(dout, cache)
    return dx, dw, db[None, :]


def _student_relu_backward(dout, cache):
    """Writes into the caller's dout."""
    dout[cache.x <= 0] = 0
    return dout


def _cases(rng: np.random.Generator):
    x = rng.standard_normal((32, 64))
    w = rng.standard_normal((64, 10)) / 8
    b = rng.standard_normal(10)
    y = rng.integers(0, 10, 32)
    xr = rng.standard_normal((8, 16))
    xr[xr < -1] = 0.0  # exact zeros: ReLU's kink, not a bug
    xb = rng.standard_normal((32, 16)) * 3 + 1
    gamma, beta = rng.standard_normal(16), rng.standard_normal(16)

    def bn(x, gamma, beta):
        return F.batchnorm(x, gamma, beta, {"mode": "train"})

    def loss(x, y):
        return F.softmax_loss(x, y)

    return [
        ("affine (float64)", F.affine, F.affine_backward, (x, w, b)),
        ("affine (float32)", F.affine, F.affine_backward,
         tuple(a.astype(np.float32) for a in (x, w, b))),
        ("relu at exact zeros", F.relu, F.relu_backward, (xr,)),
        ("softmax loss, logits in the hundreds", loss, lambda d, dx: (d * dx, None),
         (x @ w * 300, y)),
        ("batch norm (closed-form backward)", bn, F.batchnorm_backward_alt, (xb, gamma, beta)),
        ("a student's batch norm backward", bn, _student_batchnorm_backward, (xb, gamma, beta)),
        ("a student's affine backward", F.affine, _student_affine_backward, (x, w, b)),
        ("a student's relu backward", F.relu, _student_relu_backward, (xr,)),
    ]


def run_demo(seed: int = 0, verbose: bool = True) -> list[tuple[str, bool]]:
    """Check the demo cases; print each report; return ``[(name, ok), ...]``."""
    rng = np.random.default_rng(seed)
    results = []
    for name, forward, backward, inputs in _cases(rng):
        report = check_vjp(forward, backward, *inputs, seed=seed)
        results.append((name, report.ok))
        if verbose:
            print(f"\n=== {name} ===")
            print(report)
    if verbose:
        print("\n=== summary ===")
        for name, ok in results:
            print(f"  {'OK    ' if ok else 'FAILED'}  {name}")
    return results

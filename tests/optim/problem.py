"""A small least-squares problem and a harness that runs our optimizer and torch's side by side.

Both sides compute their gradients from their *own* parameters with the same
NumPy function (:meth:`LeastSquares.grads`), so a difference in one step
propagates to the next instead of being reset; torch gets them through
``.grad``. Parameters are compared after every step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from gradproof.nn import Parameter
from gradproof.optim import SGD, AdaGrad, Adam, AdamW, RMSProp

# Our optimizer class -> torch's, with the same keyword arguments.
TORCH_OPTIMIZERS = {
    SGD: torch.optim.SGD,
    AdaGrad: torch.optim.Adagrad,
    RMSProp: torch.optim.RMSprop,
    Adam: torch.optim.Adam,
    AdamW: torch.optim.AdamW,
}

# (optimizer, kwargs): every option of every optimizer is exercised at least once.
SETTINGS = [
    (SGD, dict(lr=0.1)),
    (SGD, dict(lr=0.05, momentum=0.9)),
    (SGD, dict(lr=0.05, momentum=0.8, dampening=0.5)),
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.1, nesterov=True)),
    (SGD, dict(lr=0.1, weight_decay=0.3)),
    (AdaGrad, dict(lr=0.1)),
    (AdaGrad, dict(lr=0.2, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.5)),
    (AdaGrad, dict(lr=0.1, eps=1e-3)),
    (RMSProp, dict(lr=0.01)),
    (RMSProp, dict(lr=0.01, centered=True)),
    (RMSProp, dict(lr=0.005, momentum=0.9)),
    (RMSProp, dict(lr=0.005, alpha=0.9, eps=1e-4, weight_decay=0.1, momentum=0.5, centered=True)),
    (Adam, dict(lr=0.02)),
    (Adam, dict(lr=0.02, amsgrad=True)),
    (Adam, dict(lr=0.02, weight_decay=0.1)),
    (Adam, dict(lr=0.05, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.05, amsgrad=True)),
    (AdamW, dict(lr=0.02)),
    (AdamW, dict(lr=0.02, weight_decay=0.5, amsgrad=True)),
    (AdamW, dict(lr=0.05, betas=(0.8, 0.95), weight_decay=0.0)),
]


def setting_id(setting) -> str:
    cls, kwargs = setting
    return cls.__name__ + "(" + ",".join(f"{k}={v}" for k, v in kwargs.items()) + ")"


@dataclass
class LeastSquares:
    """``loss(w, b) = 0.5 * mean_n ||x_n @ w + b - y_n||^2``.

    Shapes: x (N, D), y (N, M), w (D, M), b (M,).
    """

    x: np.ndarray
    y: np.ndarray
    w0: np.ndarray
    b0: np.ndarray

    @classmethod
    def make(cls, seed: int = 0, N: int = 8, D: int = 3, M: int = 2) -> LeastSquares:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((N, D))
        return cls(x, rng.standard_normal((N, M)), rng.standard_normal((D, M)),
                   rng.standard_normal(M))

    def loss(self, w: np.ndarray, b: np.ndarray) -> float:
        r = self.x @ w + b - self.y
        return 0.5 * float(np.sum(r * r)) / len(self.x)

    def grads(self, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(dw, db)``, shapes (D, M) and (M,), in float64 whatever the dtype of w and b."""
        r = (self.x @ w.astype(np.float64) + b - self.y) / len(self.x)
        return self.x.T @ r, r.sum(axis=0)

    def ours(self, dtype=np.float64) -> list[Parameter]:
        return [Parameter(self.w0.astype(dtype)), Parameter(self.b0.astype(dtype))]

    def theirs(self, dtype=torch.float64) -> list[torch.Tensor]:
        return [torch.tensor(a, dtype=dtype, requires_grad=True) for a in (self.w0, self.b0)]


def set_grads_ours(problem: LeastSquares, params: list[Parameter]) -> None:
    for p, g in zip(params, problem.grads(params[0].data, params[1].data)):
        p.grad[...] = g


def set_grads_theirs(problem: LeastSquares, params: list[torch.Tensor]) -> None:
    arrays = [p.detach().numpy() for p in params]
    for p, g in zip(params, problem.grads(*arrays)):
        p.grad = torch.from_numpy(g.astype(arrays[0].dtype))


def assert_normwise_close(actual: np.ndarray, expected: np.ndarray, rtol: float, what: str):
    """``max|actual - expected| <= rtol * max(1, max|expected|)``, with a message saying where."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    err = float(np.max(np.abs(actual.astype(np.float64) - expected), initial=0.0))
    assert err <= rtol * scale, f"{what}: max abs error {err:.3e} > {rtol:.0e} * {scale:.3g}"


def follow_torch(
    make_ours: Callable[[list[Parameter]], object],
    make_theirs: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    *,
    steps: int = 50,
    seed: int = 0,
    dtype=np.float64,
    rtol: float = 1e-10,
    after_step: Callable[[object, object], None] | None = None,
) -> list[Parameter]:
    """Run both optimizers ``steps`` times; assert the parameters agree after every step.

    Also asserts that ``step()`` updated the original arrays in place. Returns
    our parameters.
    """
    problem = LeastSquares.make(seed)
    ours = problem.ours(dtype)
    theirs = problem.theirs(torch.float32 if dtype == np.float32 else torch.float64)
    arrays = [p.data for p in ours]
    opt, topt = make_ours(ours), make_theirs(theirs)
    for step in range(1, steps + 1):
        set_grads_ours(problem, ours)
        set_grads_theirs(problem, theirs)
        opt.step()
        topt.step()
        if after_step is not None:
            after_step(opt, topt)
        for i, (p, t) in enumerate(zip(ours, theirs)):
            assert p.data is arrays[i], "step() must update p.data in place"
            assert p.data.dtype == dtype
            assert_normwise_close(p.data, t.detach().numpy(), rtol, f"step {step}, param {i}")
    return ours

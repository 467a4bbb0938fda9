"""PyTorch twins of gradproof.nn modules, for oracle tests of modules and models.

:func:`twin` builds the ``torch.nn`` module (float64) that computes the same
function with the same weights, and pairs every gradproof parameter with its
torch counterpart; :func:`assert_matches_torch` runs both forward and backward
with one random upstream gradient and compares the output, ``dx`` and every
parameter gradient (normwise, 1e-10).

Import it as ``from torch_modules import ...`` (pytest puts ``tests/nn`` on the path).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch_oracle import assert_close

from gradproof.nn import activation as A
from gradproof.nn.containers import Flatten, Residual, Sequential
from gradproof.nn.dropout import Dropout
from gradproof.nn.linear import Linear
from gradproof.nn.module import Module, Parameter
from gradproof.nn.norm import BatchNorm1d, LayerNorm

__all__ = ["twin", "assert_matches_torch", "TorchResidual", "TORCH_ACTIVATIONS"]

# gradproof activation class -> torch class; options have the same names
TORCH_ACTIVATIONS: dict[type, type] = {
    A.ReLU: torch.nn.ReLU,
    A.LeakyReLU: torch.nn.LeakyReLU,
    A.ELU: torch.nn.ELU,
    A.GELU: torch.nn.GELU,
    A.Sigmoid: torch.nn.Sigmoid,
    A.Tanh: torch.nn.Tanh,
    A.Softplus: torch.nn.Softplus,
    A.SiLU: torch.nn.SiLU,
}

# (gradproof parameter, torch parameter, map from gradproof layout to torch layout)
Pair = tuple[Parameter, torch.nn.Parameter, Callable[[np.ndarray], np.ndarray]]


class TorchResidual(torch.nn.Module):
    def __init__(self, f: torch.nn.Module):
        super().__init__()
        self.f = f

    def forward(self, x):
        return x + self.f(x)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64))


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _transpose(a: np.ndarray) -> np.ndarray:
    return a.T


def twin(module: Module) -> tuple[torch.nn.Module, list[Pair]]:
    """The float64 torch module computing ``module``'s function, and the parameter pairs."""
    pairs: list[Pair] = []
    if isinstance(module, Linear):
        t = torch.nn.Linear(module.in_features, module.out_features,
                            bias=module.bias is not None, dtype=torch.float64)
        t.weight.data = _tensor(module.weight.data.T)
        pairs.append((module.weight, t.weight, _transpose))
        if module.bias is not None:
            t.bias.data = _tensor(module.bias.data)
            pairs.append((module.bias, t.bias, _same))
    elif isinstance(module, (BatchNorm1d, LayerNorm)):
        if isinstance(module, BatchNorm1d):
            t = torch.nn.BatchNorm1d(module.num_features, eps=module.eps,
                                     momentum=module.momentum, dtype=torch.float64)
            t.running_mean.data = _tensor(module.running_mean)
            t.running_var.data = _tensor(module.running_var)
        else:
            t = torch.nn.LayerNorm(module.num_features, eps=module.eps, dtype=torch.float64)
        t.weight.data = _tensor(module.gamma.data)
        t.bias.data = _tensor(module.beta.data)
        pairs += [(module.gamma, t.weight, _same), (module.beta, t.bias, _same)]
    elif type(module) in TORCH_ACTIVATIONS:
        t = TORCH_ACTIVATIONS[type(module)](**module.options)
    elif isinstance(module, Sequential):
        parts = [twin(m) for m in module.layers]
        t = torch.nn.Sequential(*(p[0] for p in parts))
        pairs = [pair for p in parts for pair in p[1]]
    elif isinstance(module, Residual):
        inner, pairs = twin(module.f)
        t = TorchResidual(inner)
    elif isinstance(module, Flatten):
        t = torch.nn.Flatten()
    elif isinstance(module, Dropout) and not module.training:
        t = torch.nn.Identity()
    else:
        raise TypeError(f"no torch twin for {module!r}")
    t.train(module.training)
    return t, pairs


def assert_matches_torch(module: Module, x: np.ndarray, seed: int = 0, rtol: float = 1e-10,
                         input_grad: bool = True) -> np.ndarray:
    """Forward and backward ``module`` and its torch twin; compare out, dx and parameter grads.

    ``module``'s gradients are zeroed first. Returns the gradproof output.
    """
    t, pairs = twin(module)
    module.zero_grad()
    out = module.forward(x)
    # a stream of its own: an upstream gradient drawn like x would be a function of x
    dout = np.random.default_rng((seed, 7)).standard_normal(out.shape).astype(out.dtype)
    dx = module.backward(dout)

    xt = _tensor(x).requires_grad_(True)
    out_t = t(xt)
    (out_t * _tensor(dout)).sum().backward()

    assert_close(out, out_t.detach().numpy(), rtol, name=f"{module!r} out")
    if input_grad:
        assert dx.shape == x.shape and dx.dtype == x.dtype
        assert_close(dx, xt.grad.numpy(), rtol, name=f"{module!r} dx")
    for ours, theirs, to_torch_layout in pairs:
        assert ours.grad.dtype == ours.data.dtype
        assert_close(to_torch_layout(ours.grad), theirs.grad.numpy(), rtol,
                     name=f"{module!r} grad of {tuple(ours.shape)} parameter")
    return out

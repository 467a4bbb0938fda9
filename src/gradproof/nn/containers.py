"""Containers: modules made of modules (Sequential, Residual) and the Flatten reshape."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .._validate import upstream
from ..errors import InputError, InputTypeError, describe
from .dtypes import check_float_input
from .module import Module

__all__ = ["Sequential", "Residual", "Flatten"]


def _check_module(value, name: str) -> Module:
    if not isinstance(value, Module):
        raise InputTypeError(f"{name} must be a gradproof.nn.Module, got {describe(value)}")
    return value


class Sequential(Module):
    """Modules applied in order: ``out = m_k(...m_1(m_0(x)))``; backward in reverse.

    Children are named ``"0"``, ``"1"``, ... as in ``torch.nn.Sequential``, so
    parameter names match (``"0.weight"``); ``seq[i]`` and ``len(seq)`` work.
    """

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        self.layers = [_check_module(m, f"layers[{i}]") for i, m in enumerate(layers)]

    def children(self) -> Iterator[tuple[str, Module]]:
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {m!r}" for i, m in enumerate(self.layers))
        return f"{type(self).__name__}({inner}\n)"

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """Each layer's backward in reverse order; stops at a layer that returns None."""
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
            if dout is None:
                return None
        return dout


class Residual(Module):
    """A residual block ``out = x + f(x)`` around any module ``f`` of matching shapes.

    Backward: ``dx = dout + f.backward(dout)``.
    """

    def __init__(self, f: Module) -> None:
        super().__init__()
        self.f = _check_module(f, "f")
        self._out: tuple[tuple[int, ...], np.dtype] | None = None  # shape and dtype of out

    def __repr__(self) -> str:
        return f"Residual({self.f!r})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        fx = self.f.forward(x)
        if np.shape(fx) != np.shape(x):
            raise InputError(
                f"Residual: f(x) must have the shape of x {np.shape(x)} to be added to it, "
                f"got {np.shape(fx)} from {self.f!r}"
            )
        out = x + fx
        self._out = out.shape, out.dtype
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._out is None:
            raise InputError(f"{self!r}: backward called before forward")
        dout = upstream(dout, *self._out, self)
        df = self.f.backward(dout)
        if df is None:
            raise InputError(
                f"Residual: the inner module {self.f!r} returned no input gradient; "
                "set its input_grad=True"
            )
        return dout + df


class Flatten(Module):
    """``x`` (N, d1, ..., dk) -> (N, d1*...*dk); backward reshapes ``dout`` back."""

    def __init__(self) -> None:
        super().__init__()
        self._x_shape: tuple[int, ...] | None = None
        self._x_dtype: np.dtype | None = None

    def __repr__(self) -> str:
        return "Flatten()"

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(x, "Flatten()")
        if x.ndim < 1:
            raise InputError(f"Flatten(): x must have a batch axis, got shape {x.shape}")
        self._x_shape, self._x_dtype = x.shape, x.dtype
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # explicit: N = 0 works too

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` (N, d1*...*dk), the output's shape and dtype -> ``dx`` (N, d1, ..., dk)."""
        if self._x_shape is None:
            raise InputError(f"{self!r}: backward called before forward")
        out_shape = (self._x_shape[0], math.prod(self._x_shape[1:]))
        return upstream(dout, out_shape, self._x_dtype, self).reshape(self._x_shape)

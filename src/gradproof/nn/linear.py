"""Linear: the dense layer ``out = x @ weight + bias`` as a module.

The math is :func:`gradproof.nn.functional.affine`'s, written here with the
module's hot path in mind (this layer is most of an MLP's time): no copies of
``x``, the bias added in place, and the input gradient skipped when nobody
needs it (``input_grad=False``, the first layer of a model, as PyTorch skips
inputs that do not require a gradient).
"""

from __future__ import annotations

import numpy as np

from .._validate import boolean, positive_int, upstream
from ..errors import InputError
from .dtypes import check_float_input, check_memory, resolve_dtype
from .init import initializer
from .module import Module, Parameter

__all__ = ["Linear"]


class Linear(Module):
    """Dense layer: ``out = x @ weight + bias``.

    Parameters
    ----------
    in_features, out_features:
        ``D`` and ``M``.
    init:
        Weight initialiser: a name of :mod:`gradproof.nn.init` (``"he"``,
        ``"xavier"``, ``"he_uniform"``, ...) or a float std. The bias starts at 0.
    rng:
        A ``numpy.random.Generator`` or an int seed for the initialiser.
    dtype:
        ``np.float32`` or ``np.float64``: the dtype of the parameters, which
        inputs must have.
    bias:
        Whether to have a bias.
    input_grad:
        When False, :meth:`backward` accumulates the parameter gradients but
        does not compute ``dx`` and returns None (for a model's first layer).

    Shapes: ``x`` (N, D) or (..., D); ``weight`` (D, M) (the transpose of
    ``torch.nn.Linear.weight``); ``bias`` (M,); ``out`` (..., M).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        init: str | float = "he",
        rng: np.random.Generator | int | None = None,
        dtype=np.float64,
        bias: bool = True,
        input_grad: bool = True,
    ) -> None:
        super().__init__()
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        dtype = resolve_dtype(dtype)
        check_memory(f"Linear({self.in_features}, {self.out_features})",
                     [(self.in_features, self.out_features)], dtype)
        make = initializer(init)
        self.weight = Parameter(make((self.in_features, self.out_features), rng, dtype))
        bias, self.input_grad = boolean("bias", bias), boolean("input_grad", input_grad)
        self.bias = Parameter(np.zeros(self.out_features, dtype)) if bias else None
        self._x2: np.ndarray | None = None
        self._x_shape: tuple[int, ...] = ()
        self._dw: np.ndarray | None = None  # scratch for x.T @ dout, reused across steps

    @property
    def dtype(self) -> np.dtype:
        return self.weight.data.dtype

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}, dtype={self.dtype})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` (..., D) -> ``out`` (..., M), in the module's dtype."""
        check_float_input(x, self, self.weight.data.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise InputError(
                f"{self!r}: x must have shape (N, {self.in_features}) (last axis "
                f"in_features={self.in_features}), got {x.shape}"
            )
        self._x_shape = x.shape
        x2 = x.reshape(-1, self.in_features)
        self._x2 = x2
        out = x2 @ self.weight.data
        if self.bias is not None:
            out += self.bias.data
        return out.reshape(*x.shape[:-1], self.out_features)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """``dout`` (..., M) -> ``dx`` (..., D); adds ``x.T @ dout`` to ``weight.grad``.

        ``bias.grad`` gets ``dout`` summed over all axes but the last.
        Returns None when ``input_grad`` is False.
        """
        if self._x2 is None:
            raise InputError(f"{self!r}: backward called before forward")
        out_shape = (*self._x_shape[:-1], self.out_features)
        dout = upstream(dout, out_shape, self.weight.data.dtype, self)
        dout2 = dout.reshape(-1, self.out_features)
        grad, fresh = self.weight.grad_to_overwrite()
        if fresh:  # zeroed since the last step: write x.T @ dout straight into it
            np.matmul(self._x2.T, dout2, out=grad)
        else:
            if self._dw is None or self._dw.dtype != grad.dtype or self._dw.shape != grad.shape:
                self._dw = np.empty_like(grad)
            # into reused scratch: a fresh (D, M) array per step costs page faults, not a copy
            np.matmul(self._x2.T, dout2, out=self._dw)
            grad += self._dw
        if self.bias is not None:
            bgrad, fresh = self.bias.grad_to_overwrite()
            if fresh:
                np.sum(dout2, axis=0, out=bgrad)
            else:
                bgrad += dout2.sum(axis=0)
        if not self.input_grad:
            return None
        return (dout2 @ self.weight.data.T).reshape(self._x_shape)

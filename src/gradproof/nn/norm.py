"""Normalisation modules: BatchNorm1d and LayerNorm over the functional layers.

Both learn a scale ``gamma`` (starts at 1) and a shift ``beta`` (starts at 0)
of shape (D,) and share :class:`_Normalization` (parameters, input checks). Each
forward calls the functional layer and keeps its cache; each backward calls the
functional backward and adds ``dgamma``, ``dbeta`` to the gradients.
BatchNorm1d owns its running statistics (buffers) and passes them to
:func:`~gradproof.nn.functional.batchnorm_core` with PyTorch's convention
(``momentum`` weighs the *new* statistic, the running variance is the unbiased
one), so a model trained here and in torch keeps the same running statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import fraction, non_negative, positive_int
from ..errors import InputError
from . import functional as F
from .dtypes import check_float_input, resolve_dtype
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "LayerNorm"]


class _Normalization(Module):
    """Shared shell: ``gamma``, ``beta`` (D,), input checks, the forward/backward plumbing."""

    def __init__(self, num_features: int, eps: float, dtype, arg: str) -> None:
        super().__init__()
        self.num_features = positive_int(arg, num_features)
        self.eps = non_negative("eps", eps)
        dtype = resolve_dtype(dtype)
        self.gamma = Parameter(np.ones(self.num_features, dtype))
        self.beta = Parameter(np.zeros(self.num_features, dtype))
        self._cache: Any = None

    @property
    def dtype(self) -> np.dtype:
        return self.gamma.data.dtype

    def _check(self, x: np.ndarray, axis: int, layout: str) -> None:
        check_float_input(x, self, self.gamma.data.dtype)
        if x.ndim < 1 or x.shape[axis] != self.num_features:
            raise InputError(
                f"{self!r}: x must have shape {layout} with D = {self.num_features}, got {x.shape}"
            )

    def _forward_cache(self) -> Any:
        if self._cache is None:
            raise InputError(f"{self!r}: backward called before forward")
        return self._cache

    def _add_grads(self, dgamma: np.ndarray, dbeta: np.ndarray) -> None:
        self.gamma.accumulate(dgamma)
        self.beta.accumulate(dbeta)


class BatchNorm1d(_Normalization):
    """Batch normalisation of (N, D) inputs, like ``torch.nn.BatchNorm1d(D)``.

    Train mode normalises with the batch's mean and (biased) variance and
    updates ``running = (1 - momentum) * running + momentum * batch`` (the
    variance unbiased); eval mode normalises with the running statistics
    (buffers ``running_mean``, ``running_var``, shape (D,)).

    Shapes: ``x``, ``out``, ``dx`` (N, D); ``gamma``, ``beta`` (D,).
    """

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, dtype=np.float64
    ) -> None:
        super().__init__(num_features, eps, dtype, "num_features")
        self.momentum = fraction("momentum", momentum)
        self.running_mean = np.zeros(self.num_features, self.dtype)
        self.running_var = np.ones(self.num_features, self.dtype)
        self._buffers = ["running_mean", "running_var"]

    def __repr__(self) -> str:
        return f"BatchNorm1d({self.num_features}, dtype={self.dtype})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` (N, D) -> ``out`` (N, D); needs N >= 2 in train mode."""
        self._check(x, 1, "(N, D)")
        if x.ndim != 2:
            raise InputError(f"{self!r}: x must have shape (N, D), got {x.shape}")
        if self.training and x.shape[0] < 2:
            raise InputError(
                f"{self!r}: train mode needs at least 2 examples per batch to estimate a "
                f"variance, got x of shape {x.shape}; call .eval() to use running statistics"
            )
        out, self._cache, self.running_mean, self.running_var = F.batchnorm_core(
            x, self.gamma.data, self.beta.data, self.running_mean, self.running_var,
            train=self.training, eps=self.eps, new_weight=self.momentum, unbiased=True)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` (N, D) -> ``dx`` (N, D); adds ``dgamma``, ``dbeta`` to the gradients."""
        dx, dgamma, dbeta = F.batchnorm_backward_alt(dout, self._forward_cache())
        self._add_grads(dgamma, dbeta)
        return dx


class LayerNorm(_Normalization):
    """Layer normalisation over the last axis, like ``torch.nn.LayerNorm(D)``.

    Shapes: ``x``, ``out``, ``dx`` (..., D); ``gamma``, ``beta`` (D,). Same in
    train and eval mode.
    """

    def __init__(self, normalized_shape: int, eps: float = 1e-5, dtype=np.float64) -> None:
        super().__init__(normalized_shape, eps, dtype, "normalized_shape")

    def __repr__(self) -> str:
        return f"LayerNorm({self.num_features}, dtype={self.dtype})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` (..., D) -> ``out`` (..., D)."""
        self._check(x, -1, "(..., D)")
        out, self._cache = F.layernorm(x, self.gamma.data, self.beta.data, {"eps": self.eps})
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` (..., D) -> ``dx`` (..., D); adds ``dgamma``, ``dbeta`` to the gradients."""
        dx, dgamma, dbeta = F.layernorm_backward(dout, self._forward_cache())
        self._add_grads(dgamma, dbeta)
        return dx

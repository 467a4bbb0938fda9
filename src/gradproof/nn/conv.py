"""Convolution and pooling modules: ``Conv2d``, ``Conv1d``, ``MaxPool2d``, ``AvgPool2d``,
``MaxPool1d``, ``AvgPool1d``.

Thin stateful wrappers around :mod:`gradproof.nn.functional.conv` and
:mod:`gradproof.nn.functional.pool`: ``forward(x)`` keeps the functional cache,
``backward(dout)`` returns ``dx`` and *adds* ``dw``, ``db`` to ``weight.grad``
and ``bias.grad``.

Shapes follow PyTorch: ``Conv2d.weight`` is (F, C, HH, WW) (``out_channels,
in_channels, kernel height, kernel width``), ``Conv1d.weight`` is (F, C, K);
inputs are (N, C, H, W) and (N, C, L). The outputs are views in channel-major
memory order (see :mod:`gradproof.nn.functional.conv`).
"""

from __future__ import annotations

import numpy as np

from .._validate import boolean, int_at_least
from ..errors import InputError, InputTypeError, describe
from .dtypes import check_float_input, check_memory, resolve_dtype
from .functional.conv import ConvCache, _conv_backward, _conv_forward
from .functional.pool import PoolCache, _pool_backward, _pool_forward, _pool_inputs
from .functional.windows import conv_inputs
from .init import initializer
from .module import Module, Parameter

__all__ = ["Conv2d", "Conv1d", "MaxPool2d", "AvgPool2d", "MaxPool1d", "AvgPool1d"]


def _pair(name: str, value: object) -> tuple[int, int]:
    """An int or a pair of ints (height, width), each >= 1."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise InputError(f"{name} must be an int or a pair (height, width), got {value!r}")
        return int_at_least(f"{name}[0]", value[0], 1), int_at_least(f"{name}[1]", value[1], 1)
    size = int_at_least(name, value, 1)
    return size, size


def _short(value: int | tuple[int, int], spatial: int) -> int | tuple[int, int]:
    """A (height, width) pair as one int when both are equal (or for 1-D layers)."""
    if isinstance(value, int):
        return value
    return value[1] if spatial == 1 or value[0] == value[1] else value


class _ConvNd(Module):
    """What Conv2d and Conv1d share; ``spatial`` is their number of spatial axes.

    One constructor for both (parameters documented on :class:`Conv2d`):
    ``kernel_size`` is an int or a pair (HH, WW) when ``spatial`` is 2, an int K when 1.
    """

    spatial = 2
    layout = "(N, C, H, W)"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int = 0,
        init: str | float = "he",
        rng: np.random.Generator | int | None = None,
        dtype=np.float64,
        input_grad: bool = True,
    ) -> None:
        if self.spatial == 2:
            kernel = _pair("kernel_size", kernel_size)
        else:
            kernel = (int_at_least("kernel_size", kernel_size, 1),)
        super().__init__()
        self.in_channels = int_at_least("in_channels", in_channels, 1)
        self.out_channels = int_at_least("out_channels", out_channels, 1)
        self.stride = int_at_least("stride", stride, 1)
        self.padding = int_at_least("padding", padding, 0)
        dtype = resolve_dtype(dtype)
        shape = (self.out_channels, self.in_channels, *kernel)
        check_memory(f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                     f"{kernel})", [shape], dtype)
        self.weight = Parameter(initializer(init)(shape, rng, dtype))
        self.bias = Parameter(np.zeros(self.out_channels, dtype))
        self.input_grad = boolean("input_grad", input_grad)
        self._cache: ConvCache | None = None

    @property
    def dtype(self) -> np.dtype:
        return self.weight.data.dtype

    def __repr__(self) -> str:
        kernel = self.weight.shape[2:]
        size = kernel[0] if len(set(kernel)) == 1 else kernel
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={size}, "
            f"stride={self.stride}, padding={self.padding}, dtype={self.dtype})"
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` (N, C, H, W) or (N, C, L) -> ``out`` (N, F, H', W') or (N, F, L')."""
        check_float_input(x, self, self.dtype)
        if x.ndim != self.spatial + 2 or x.shape[1] != self.in_channels:
            raise InputError(
                f"{self!r}: x must have shape {self.layout} with C = in_channels = "
                f"{self.in_channels}, got {x.shape}"
            )
        x4, w4, b, win = conv_inputs(
            x, self.weight.data, self.bias.data, self.stride, self.padding, self.spatial
        )
        out, self._cache = _conv_forward(x.shape, x4, w4, b, win)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """``dout`` shaped like the output -> ``dx`` shaped like ``x`` (None if not input_grad).

        Adds the filter and bias gradients to ``weight.grad`` and ``bias.grad``.
        """
        if self._cache is None:
            raise InputError(f"{self!r}: backward called before forward")
        dx, dw, db = _conv_backward(dout, self._cache, self.input_grad)
        self.weight.accumulate(dw)
        self.bias.accumulate(db)
        return dx


class Conv2d(_ConvNd):
    """2-D convolution layer (cross-correlation, zero padding), as ``torch.nn.Conv2d``.

    Parameters
    ----------
    in_channels, out_channels:
        ``C`` and ``F``.
    kernel_size:
        ``HH = WW = kernel_size``, or a pair ``(HH, WW)``.
    stride, padding:
        Step between windows and zeros added on each side (same in both directions).
    init:
        Filter initialiser (:mod:`gradproof.nn.init` name or float std); ``"he"``
        draws N(0, 2 / (C*HH*WW)). The bias starts at 0.
    rng:
        ``numpy.random.Generator`` or int seed for the initialiser.
    dtype:
        ``np.float32`` or ``np.float64``; inputs must have it.
    input_grad:
        False for a model's first layer: :meth:`backward` then skips ``dx``
        (the col2im half of the backward pass) and returns None.

    Shapes: ``x`` (N, C, H, W) -> ``out`` (N, F, H', W') with
    ``H' = 1 + (H + 2*padding - HH) // stride``; ``weight`` (F, C, HH, WW); ``bias`` (F,).
    """


class Conv1d(_ConvNd):
    """1-D convolution layer over signals, as ``torch.nn.Conv1d``.

    Same parameters as :class:`Conv2d` with an int ``kernel_size`` ``K``.
    Shapes: ``x`` (N, C, L) -> ``out`` (N, F, L') with
    ``L' = 1 + (L + 2*padding - K) // stride``; ``weight`` (F, C, K); ``bias`` (F,).
    """

    spatial = 1
    layout = "(N, C, L)"


class _PoolNd(Module):
    """What the pooling modules share: ``kind`` is "max" or "avg", ``spatial`` 2 or 1."""

    kind = "max"
    spatial = 2

    def __init__(self, kernel_size, stride=None) -> None:
        super().__init__()
        if self.spatial == 2:
            self.kernel_size = _pair("kernel_size", kernel_size)
        else:
            self.kernel_size = (1, int_at_least("kernel_size", kernel_size, 1))
        if stride is None:  # torch's default: one window after the other
            self.stride = self.kernel_size if self.spatial == 2 else self.kernel_size[1]
        else:
            self.stride = (
                _pair("stride", stride) if self.spatial == 2 else int_at_least("stride", stride, 1)
            )
        self._cache: PoolCache | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kernel_size={_short(self.kernel_size, self.spatial)}, "
            f"stride={_short(self.stride, self.spatial)})"
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` (N, C, H, W) or (N, C, L) -> the pooled ``out`` (N, C, H', W') or (N, C, L')."""
        if not isinstance(x, np.ndarray):
            raise InputTypeError(f"{self!r}: x must be a numpy array, got {describe(x)}")
        kh, kw = self.kernel_size
        x4, win = _pool_inputs(x, kh, kw, self.stride, self.spatial)
        out, self._cache = _pool_forward(x, x4, win, self.kind)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout`` shaped like the output -> ``dx`` shaped like ``x``."""
        if self._cache is None:
            raise InputError(f"{self!r}: backward called before forward")
        return _pool_backward(dout, self._cache, self.kind)


class MaxPool2d(_PoolNd):
    """Max pooling over ``kernel_size`` windows (int or (height, width)) every ``stride``
    pixels (int or pair; default ``kernel_size``), as ``torch.nn.MaxPool2d``; ties go to
    the first maximum in row-major order. (N, C, H, W) -> (N, C, H', W')."""


class AvgPool2d(_PoolNd):
    """Average pooling, as ``torch.nn.AvgPool2d``: same arguments as :class:`MaxPool2d`."""

    kind = "avg"


class MaxPool1d(_PoolNd):
    """Max pooling over signals (N, C, L) -> (N, C, L'), as ``torch.nn.MaxPool1d``."""

    spatial = 1


class AvgPool1d(_PoolNd):
    """Average pooling over signals (N, C, L) -> (N, C, L'), as ``torch.nn.AvgPool1d``."""

    kind = "avg"
    spatial = 1

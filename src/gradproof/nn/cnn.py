"""Convolutional models: ``SmallCNN`` for images and ``CNN1d`` for signals (MNIST-1D).

Both are :class:`~gradproof.nn.containers.Sequential` models that output class
scores (the loss is applied outside, see :mod:`gradproof.nn.models`), and both
accept their input either shaped ``(N, C, H, W)`` / ``(N, C, L)`` or flattened
to ``(N, C*H*W)`` / ``(N, C*L)`` as data sets store it (sklearn's 8x8 digits
are rows of 64, MNIST-1D rows of 40).

Each block is ``conv -> max-pool -> ReLU``. That is the same function as the
usual ``conv -> ReLU -> max-pool`` with the same gradients: max-pooling
commutes with the ReLU (both are monotone, and both send the gradient of a
window to its first maximum, where the ReLU's slope is that of the maximum),
and pooling first runs the ReLU on 4x fewer values
(``tests/nn/test_cnn.py`` checks both against PyTorch's conv-ReLU-pool).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._validate import boolean, fraction, positive_int
from ..errors import InputError
from .activation import ReLU
from .containers import Flatten, Sequential
from .conv import Conv1d, Conv2d, MaxPool1d, MaxPool2d
from .dropout import Dropout
from .dtypes import as_generator, check_float_input, resolve_dtype
from .linear import Linear
from .module import Module

__all__ = ["SmallCNN", "CNN1d"]


def _sizes(name: str, values: Sequence[int]) -> list[int]:
    return [positive_int(f"{name}[{i}]", v) for i, v in enumerate(values)]


def _odd_kernel_size(kernel_size: int) -> int:
    """A positive odd ``kernel_size``, so that padding ``kernel_size // 2`` keeps the size."""
    kernel_size = positive_int("kernel_size", kernel_size)
    if kernel_size % 2 == 0:
        raise InputError(f"kernel_size must be odd (same padding), got {kernel_size}")
    return kernel_size


def _head(features: int, num_classes: int, dropout: float, init, gen, dtype) -> list[Module]:
    """``Flatten -> [Dropout] -> Linear``: the classifier on top of the conv blocks."""
    dropout = fraction("dropout", dropout, below_one=True)
    drop = [Dropout(dropout, rng=gen)] if dropout > 0 else []
    return [Flatten(), *drop, Linear(features, num_classes, init=init, rng=gen, dtype=dtype)]


class _ShapedInput(Sequential):
    """A Sequential that also takes its input flattened and gives ``dx`` back in that shape."""

    input_shape: tuple[int, ...] = ()  # (C, H, W) or (C, L)

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(x, repr(self), self.dtype)
        self._x_shape = x.shape
        flat = int(np.prod(self.input_shape))
        if x.ndim == 2 and x.shape[1] == flat:
            x = x.reshape(x.shape[0], *self.input_shape)
        elif x.shape[1:] != self.input_shape:
            raise InputError(
                f"{self!r}: x must have shape (N, {', '.join(map(str, self.input_shape))}) "
                f"or (N, {flat}), got {x.shape}"
            )
        return super().forward(x)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        dx = super().backward(dout)
        return None if dx is None else dx.reshape(self._x_shape)

    @property
    def dtype(self) -> np.dtype:
        return self.layers[0].weight.data.dtype


class SmallCNN(_ShapedInput):
    """An image classifier: ``[conv 3x3 (same padding) -> max-pool 2 -> ReLU] * len(channels)
    -> Flatten -> [Dropout] -> Linear``.

    With the defaults, on 1x28x28 inputs: conv(1->16) - pool - ReLU - conv(16->32) -
    pool - ReLU - Linear(32*7*7 -> 10), the network of ``benchmarks/train_speed_cnn.py``.

    Parameters
    ----------
    in_channels:
        ``C`` of the images.
    image_size:
        ``H`` (square images) or ``(H, W)``; each pooling halves it (rounding down).
    num_classes:
        Number of scores per example.
    channels:
        Output channels of each conv block, e.g. ``(16, 32)``.
    kernel_size:
        Odd filter size; padding ``kernel_size // 2`` keeps the size before pooling.
    dropout:
        Drop probability before the final Linear (0: no Dropout layer).
    init, rng, dtype:
        As for :class:`~gradproof.nn.conv.Conv2d` and :class:`~gradproof.nn.linear.Linear`.
    input_grad:
        Whether :meth:`backward` computes ``dx`` (default False, like PyTorch for an
        input that needs no gradient; :func:`gradproof.check_model` turns it on).

    Shapes: ``x`` (N, C, H, W) or (N, C*H*W) -> scores (N, num_classes).
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int | tuple[int, int] = 28,
        num_classes: int = 10,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        dropout: float = 0.0,
        init: str | float = "he",
        rng: np.random.Generator | int | None = None,
        dtype=np.float64,
        input_grad: bool = False,
    ) -> None:
        in_channels = positive_int("in_channels", in_channels)
        num_classes = positive_int("num_classes", num_classes)
        hw = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
        H, W = _sizes("image_size", hw)
        widths = _sizes("channels", channels)
        kernel_size = _odd_kernel_size(kernel_size)
        if H >> len(widths) < 1 or W >> len(widths) < 1:
            raise InputError(
                f"image_size {(H, W)} is too small for {len(widths)} poolings by 2; "
                "use fewer channels entries or larger images"
            )
        dtype, gen = resolve_dtype(dtype), as_generator(rng)
        layers: list[Module] = []
        c = in_channels
        for width in widths:
            conv = Conv2d(
                c, width, kernel_size, padding=kernel_size // 2, init=init, rng=gen, dtype=dtype
            )
            layers += [conv, MaxPool2d(2), ReLU()]
            c, H, W = width, H // 2, W // 2
        layers += _head(c * H * W, num_classes, dropout, init, gen, dtype)
        layers[0].input_grad = boolean("input_grad", input_grad)
        super().__init__(*layers)
        self.input_shape = (in_channels, *hw)
        self.num_classes = num_classes

    def __repr__(self) -> str:
        widths = [m.out_channels for m in self.layers if isinstance(m, Conv2d)]
        return f"SmallCNN(input {self.input_shape}, channels {widths}, dtype={self.dtype})"


class CNN1d(_ShapedInput):
    """A signal classifier for MNIST-1D (length 40): ``conv -> ReLU``, then
    ``[conv -> max-pool 2 -> ReLU] * (len(channels) - 1) -> Flatten -> [Dropout] -> Linear``.

    The first conv (``kernel_size`` wide) sees the raw signal at full
    resolution; later convs are 3 wide and each pooling halves the length.

    Parameters
    ----------
    length:
        ``L`` of the signals (40 for MNIST-1D).
    in_channels, num_classes:
        ``C`` of the signals and the number of scores.
    channels:
        Output channels of each conv, e.g. ``(32, 64, 64)``.
    kernel_size:
        Odd width of the first conv (same padding).
    dropout:
        Drop probability before the final Linear (0: no Dropout layer).
    init, rng, dtype, input_grad:
        As for :class:`SmallCNN`.

    Shapes: ``x`` (N, C, L) or (N, C*L) -> scores (N, num_classes).
    """

    def __init__(
        self,
        length: int = 40,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64, 64),
        kernel_size: int = 5,
        dropout: float = 0.0,
        init: str | float = "he",
        rng: np.random.Generator | int | None = None,
        dtype=np.float64,
        input_grad: bool = False,
    ) -> None:
        L = positive_int("length", length)
        in_channels = positive_int("in_channels", in_channels)
        num_classes = positive_int("num_classes", num_classes)
        widths = _sizes("channels", channels)
        kernel_size = _odd_kernel_size(kernel_size)
        if L >> (len(widths) - 1) < 1:
            raise InputError(f"length {L} is too short for {len(widths) - 1} poolings by 2")
        dtype, gen = resolve_dtype(dtype), as_generator(rng)
        layers: list[Module] = []
        c, size = in_channels, L
        for i, width in enumerate(widths):
            k = kernel_size if i == 0 else 3
            layers.append(Conv1d(c, width, k, padding=k // 2, init=init, rng=gen, dtype=dtype))
            if i > 0:
                layers.append(MaxPool1d(2))
                size //= 2
            layers.append(ReLU())
            c = width
        layers += _head(c * size, num_classes, dropout, init, gen, dtype)
        layers[0].input_grad = boolean("input_grad", input_grad)
        super().__init__(*layers)
        self.input_shape = (in_channels, L)
        self.num_classes = num_classes

    def __repr__(self) -> str:
        widths = [m.out_channels for m in self.layers if isinstance(m, Conv1d)]
        return f"CNN1d(input {self.input_shape}, channels {widths}, dtype={self.dtype})"

"""A GRU that classifies sequences, e.g. the signals of MNIST-1D.

The signal x (N, T) (or (N, 1, T), or (N, T, D)) is read one step at a time by
a GRU; the classifier sees the last hidden state and the mean of all hidden
states, side by side (mean pooling hands the gradient to every step at once,
which trains faster than the last state alone)::

    h = GRU(x)                          # (N, T, H)
    scores = [h_T, mean_t h_t] @ W + b  # (N, C)

:func:`gradproof.recipes.gru.train_gru_mnist1d` is its documented recipe
(docs/nn_sequence.md).
"""

from __future__ import annotations

import numpy as np

from .._validate import positive_int
from ..errors import InputError
from .dtypes import check_float_input, resolve_dtype
from .linear import Linear
from .module import Module
from .sequence import GRU

__all__ = ["GRUClassifier"]


class GRUClassifier(Module):
    """GRU over the time axis, then a linear layer on ``[h_T, mean_t h_t]``.

    ``forward(x)``: x (N, T) or (N, 1, T) (a signal with one channel) or
    (N, T, D); returns class scores (N, num_classes). ``backward(dscores)``
    returns dx in x's shape.
    """

    def __init__(
        self,
        input_size: int = 1,
        hidden_size: int = 64,
        num_classes: int = 10,
        *,
        rng=None,
        dtype=np.float64,
    ):
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        H = positive_int("hidden_size", hidden_size)
        C = positive_int("num_classes", num_classes)
        dtype = resolve_dtype(dtype)
        gen = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        self.gru = GRU(self.input_size, H, rng=gen, dtype=dtype)
        self.head = Linear(2 * H, C, init="xavier", rng=gen, dtype=dtype)
        self._layout = "sequence"

    def _as_sequence(self, x: np.ndarray) -> np.ndarray:
        """x as (N, T, D); remembers the layout so that dx can be given back in x's."""
        check_float_input(x, repr(self), self.head.weight.dtype)
        if x.ndim == 2 and self.input_size == 1:
            self._layout = "signal"  # (N, T)
            return x[:, :, None]
        if x.ndim == 3 and x.shape[1] == 1 and self.input_size == 1:
            self._layout = "channel_first"  # (N, 1, T), as for 1-D convolutions
            return x.transpose(0, 2, 1)
        if x.ndim == 3 and x.shape[2] == self.input_size:
            self._layout = "sequence"  # (N, T, D)
            return x
        raise InputError(
            f"{self!r}: x must have shape (N, T) or (N, 1, T) for one input channel, or "
            f"(N, T, {self.input_size}), got {x.shape}"
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, T), (N, 1, T) or (N, T, D) -> scores (N, num_classes)."""
        h = self.gru.forward(self._as_sequence(x))
        features = np.concatenate([h[:, -1], h.mean(axis=1)], axis=1)
        return self.head.forward(features)

    def backward(self, dscores: np.ndarray) -> np.ndarray:
        """dscores (N, num_classes) -> dx in x's layout; accumulates the parameters' grads."""
        dfeatures = self.head.backward(dscores)
        H = self.gru.hidden_size
        T = self.gru._take_cache().hs.shape[1]
        dh = np.repeat(dfeatures[:, None, H:] / T, T, axis=1)  # the mean over time
        dh[:, -1] += dfeatures[:, :H]  # the last state
        dx = self.gru.backward(dh)
        if self._layout == "signal":
            return dx[:, :, 0]
        if self._layout == "channel_first":
            return dx.transpose(0, 2, 1)
        return dx

    def __repr__(self) -> str:
        return (f"GRUClassifier(input_size={self.input_size}, hidden_size="
                f"{self.gru.hidden_size}, num_classes={self.head.out_features})")  # fmt: skip

"""Dropout as a module: inverted dropout in train mode, the identity in eval mode."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from . import functional as F
from .dtypes import as_generator, check_float_input
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Zero each unit with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    ``p`` is the probability of DROPPING a unit, as in ``torch.nn.Dropout``
    (CS231n's ``p`` is the keep probability). In eval mode the module is the
    identity. Masks come from the module's own generator, seeded by ``rng``
    (a Generator or an int seed): the same seed gives the same masks.

    Shapes: ``x``, ``out``, ``dx`` any shape, all of ``x``'s dtype.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not (
            0 <= p < 1
        ):
            raise InputError(f"p (probability of dropping a unit) must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = as_generator(rng)
        self._cache: Any = None

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(x, self)
        param = {"p_drop": self.p, "mode": "train" if self.training else "test", "rng": self.rng}
        out, self._cache = F.dropout(x, param)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise InputError(f"{self!r}: backward called before forward")
        return F.dropout_backward(dout, self._cache)

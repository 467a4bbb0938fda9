"""AdaGrad: per-coordinate step sizes from summed squared gradients (torch.optim.Adagrad)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import non_negative
from ._inplace import add_scaled_, state_buffer, with_weight_decay
from .optimizer import Optimizer, ParamsArg

__all__ = ["AdaGrad", "Adagrad"]


class AdaGrad(Optimizer):
    r"""AdaGrad, exactly ``torch.optim.Adagrad``.

    At step ``t`` (counted from 1), with ``g = dw + weight_decay * w``::

        s = s + g * g                      (s starts at initial_accumulator_value)
        w = w - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)

    Args:
        params: Parameters (a list or any iterable), or param groups.
        lr: learning rate, >= 0.
        lr_decay: >= 0; the learning rate is divided by ``1 + (t - 1) * lr_decay``.
        weight_decay: L2 penalty, >= 0, added to the gradient.
        initial_accumulator_value: >= 0, the starting value of ``s``.
        eps: >= 0, added to ``sqrt(s)``.

    State per parameter: ``sum`` (``s``; shape and dtype of the parameter).
    """

    options = {
        "lr": non_negative,
        "lr_decay": non_negative,
        "weight_decay": non_negative,
        "initial_accumulator_value": non_negative,
        "eps": non_negative,
    }
    state_names = ("sum",)
    nonnegative_state = ("sum",)

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        on_nonfinite: str = "raise",
        **unknown: Any,
    ):
        defaults = dict(
            lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, eps=eps,
        )
        super().__init__(params, defaults, unknown, on_nonfinite)

    def _update(self, w, dw, state, scratch, group) -> None:
        decayed, tmp = scratch
        g = with_weight_decay(w, dw, group["weight_decay"], out=decayed)
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        total = state_buffer(state, "sum", w, fill=group["initial_accumulator_value"])
        np.multiply(g, g, out=tmp)
        total += tmp
        np.sqrt(total, out=tmp)
        tmp += group["eps"]
        np.divide(g, tmp, out=tmp)
        add_scaled_(w, tmp, -clr, out=tmp)


Adagrad = AdaGrad  # PyTorch's spelling

"""SGD with momentum, dampening, Nesterov momentum and L2 weight decay (torch.optim.SGD)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import boolean, fraction, non_negative
from ..errors import InputError
from ._inplace import add_scaled_, with_weight_decay
from .optimizer import Optimizer, ParamsArg

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, exactly ``torch.optim.SGD``.

    With ``g = dw + weight_decay * w``::

        b = g                                  on the first step (momentum > 0)
        b = momentum * b + (1 - dampening) * g on later steps
        g = g + momentum * b   if nesterov else   b
        w = w - lr * g

    Args:
        params: Parameters (a list or any iterable), or param groups
            ``[{"params": [...], "lr": ...}, ...]``.
        lr: learning rate, >= 0.
        momentum: momentum factor, >= 0 (0 disables the buffer).
        dampening: in [0, 1]; scales the gradient added to the buffer.
        weight_decay: L2 penalty, >= 0, added to the gradient.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening == 0).

    State per parameter: ``momentum_buffer`` (shape and dtype of the parameter).
    """

    options = {
        "lr": non_negative,
        "momentum": non_negative,
        "dampening": fraction,
        "weight_decay": non_negative,
        "nesterov": boolean,
    }
    state_names = ("momentum_buffer",)

    def _state_needed(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        on_nonfinite: str = "raise",
        **unknown: Any,
    ):
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov,
        )
        super().__init__(params, defaults, unknown, on_nonfinite)

    def _check_combination(self, hyper: dict[str, Any], owner: str) -> None:
        if hyper["nesterov"] and (hyper["momentum"] <= 0 or hyper["dampening"] != 0):
            raise InputError(
                f"{owner}: nesterov=True needs momentum > 0 and dampening == 0, got "
                f"momentum={hyper['momentum']} and dampening={hyper['dampening']}"
            )

    def _update(self, w, dw, state, scratch, group) -> None:
        decayed, tmp = scratch
        g = with_weight_decay(w, dw, group["weight_decay"], out=decayed)
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                state["momentum_buffer"] = buf = np.array(g, dtype=w.dtype, copy=True)
            else:
                buf *= momentum
                add_scaled_(buf, g, 1.0 - group["dampening"], out=tmp)
            if group["nesterov"]:
                np.multiply(buf, momentum, out=tmp)
                tmp += g
                g = tmp
            else:
                g = buf
        add_scaled_(w, g, -group["lr"], out=tmp)

"""RMSProp, plain or centered, with optional momentum (torch.optim.RMSprop)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import boolean, fraction, non_negative
from ._inplace import add_scaled_, ema_, state_buffer, with_weight_decay
from .optimizer import Optimizer, ParamsArg

__all__ = ["RMSProp", "RMSprop"]


class RMSProp(Optimizer):
    r"""RMSProp, exactly ``torch.optim.RMSprop``.

    With ``g = dw + weight_decay * w``::

        v = alpha * v + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g          (centered only)
        d = sqrt(v - a * a) + eps   if centered   else   sqrt(v) + eps
        b = momentum * b + g / d;  w = w - lr * b    if momentum > 0
        w = w - lr * g / d                           otherwise

    Args:
        params: Parameters (a list or any iterable), or param groups.
        lr: learning rate, >= 0.
        alpha: smoothing constant in [0, 1].
        eps: >= 0, added to the root mean square.
        weight_decay: L2 penalty, >= 0, added to the gradient.
        momentum: >= 0.
        centered: divide by an estimate of the gradient's variance rather than
            its second moment.

    State per parameter: ``square_avg`` (v), ``grad_avg`` (a, centered only),
    ``momentum_buffer`` (b, momentum > 0 only).
    """

    options = {
        "lr": non_negative,
        "alpha": fraction,
        "eps": non_negative,
        "weight_decay": non_negative,
        "momentum": non_negative,
        "centered": boolean,
    }
    state_names = ("square_avg", "grad_avg", "momentum_buffer")
    nonnegative_state = ("square_avg",)

    def _state_needed(self, group: dict[str, Any]) -> tuple[str, ...]:
        return (("square_avg",) + (("grad_avg",) if group["centered"] else ())
                + (("momentum_buffer",) if group["momentum"] > 0 else ()))

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        on_nonfinite: str = "raise",
        **unknown: Any,
    ):
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
            centered=centered,
        )
        super().__init__(params, defaults, unknown, on_nonfinite)

    def _update(self, w, dw, state, scratch, group) -> None:
        decayed, tmp = scratch
        g = with_weight_decay(w, dw, group["weight_decay"], out=decayed)
        alpha = group["alpha"]
        square_avg = state_buffer(state, "square_avg", w)
        np.multiply(g, g, out=tmp)
        ema_(square_avg, tmp, alpha, out=tmp)
        if group["centered"]:
            grad_avg = state_buffer(state, "grad_avg", w)
            ema_(grad_avg, g, alpha, out=tmp)
            np.multiply(grad_avg, grad_avg, out=tmp)
            np.subtract(square_avg, tmp, out=tmp)
            np.sqrt(tmp, out=tmp)
        else:
            np.sqrt(square_avg, out=tmp)
        tmp += group["eps"]
        np.divide(g, tmp, out=tmp)
        if group["momentum"] > 0:
            buf = state_buffer(state, "momentum_buffer", w)
            buf *= group["momentum"]
            buf += tmp
            add_scaled_(w, buf, -group["lr"], out=tmp)
        else:
            add_scaled_(w, tmp, -group["lr"], out=tmp)


RMSprop = RMSProp  # PyTorch's spelling

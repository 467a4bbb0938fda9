"""Adam (with optional AMSGrad) and AdamW, its decoupled-weight-decay variant."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .._validate import boolean, fraction, non_negative
from ..errors import InputError, InputTypeError, describe
from ._inplace import ema_, state_buffer, with_weight_decay
from .optimizer import Optimizer, ParamsArg

__all__ = ["Adam", "AdamW"]


def betas(name: str, value: Any, *, owner: object = None) -> tuple[float, float]:
    """Two floats, each in [0, 1): Adam's moment decay rates."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InputTypeError(
            f"{owner}: {name} must be a pair (beta1, beta2), got {describe(value)}"
        )
    pair = tuple(value)
    if len(pair) != 2:
        raise InputError(f"{owner}: {name} must be a pair (beta1, beta2), got {len(pair)} values")
    beta1, beta2 = (fraction(f"{name}[{i}]", beta, below_one=True, owner=owner)
                    for i, beta in enumerate(pair))
    return beta1, beta2


class Adam(Optimizer):
    r"""Adam, exactly ``torch.optim.Adam``.

    At step ``t`` (counted from 1), with ``g = dw + weight_decay * w`` (Adam) or
    ``w = (1 - lr * weight_decay) * w`` first and ``g = dw`` (AdamW)::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                       (amsgrad only; used instead of v)
        w = w - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Args:
        params: Parameters (a list or any iterable), or param groups.
        lr: learning rate, >= 0.
        betas: ``(beta1, beta2)``, each in [0, 1).
        eps: >= 0, added to the denominator.
        weight_decay: >= 0; an L2 penalty added to the gradient (Adam) or a
            decay of the weights themselves (AdamW).
        amsgrad: divide by the running maximum of ``v`` (Reddi et al., 2018).

    State per parameter: ``exp_avg`` (m), ``exp_avg_sq`` (v),
    ``max_exp_avg_sq`` (v_max, amsgrad only).
    """

    options = {
        "lr": non_negative,
        "betas": betas,
        "eps": non_negative,
        "weight_decay": non_negative,
        "amsgrad": boolean,
    }
    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    nonnegative_state = ("exp_avg_sq", "max_exp_avg_sq")
    decoupled_weight_decay = False

    def _state_needed(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        on_nonfinite: str = "raise",
        **unknown: Any,
    ):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults, unknown, on_nonfinite)

    def _update(self, w, dw, state, scratch, group) -> None:
        decayed, tmp = scratch
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        if self.decoupled_weight_decay:
            if weight_decay != 0:
                w *= 1.0 - lr * weight_decay
            g = dw
        else:
            g = with_weight_decay(w, dw, weight_decay, out=decayed)
        exp_avg = state_buffer(state, "exp_avg", w)
        exp_avg_sq = state_buffer(state, "exp_avg_sq", w)
        ema_(exp_avg, g, beta1, out=tmp)
        np.multiply(g, g, out=tmp)
        ema_(exp_avg_sq, tmp, beta2, out=tmp)
        if group["amsgrad"]:
            second = state_buffer(state, "max_exp_avg_sq", w)
            np.maximum(second, exp_avg_sq, out=second)
        else:
            second = exp_avg_sq
        t = state["step"]
        step_size = lr / (1 - beta1**t)
        np.sqrt(second, out=tmp)
        tmp /= (1 - beta2**t) ** 0.5
        tmp += group["eps"]
        np.divide(exp_avg, tmp, out=tmp)
        tmp *= step_size
        w -= tmp


class AdamW(Adam):
    r"""AdamW, exactly ``torch.optim.AdamW``: Adam whose weight decay shrinks the
    weights, ``w = (1 - lr * weight_decay) * w``, instead of adding to the gradient
    (Loshchilov & Hutter, 2019). Same options as :class:`Adam`; ``weight_decay``
    defaults to 1e-2 as in PyTorch.
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        on_nonfinite: str = "raise",
        **unknown: Any,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, on_nonfinite, **unknown)

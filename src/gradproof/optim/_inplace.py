"""In-place array updates shared by the optimizers' rules.

Every function writes into arrays it is given and allocates nothing: ``out`` is
a scratch array of the parameter's shape and dtype that the optimizer keeps
between steps. Scalars are Python floats, so float32 arrays stay float32.
"""

from __future__ import annotations

import numpy as np

__all__ = ["add_scaled_", "ema_", "with_weight_decay", "state_buffer"]


def add_scaled_(y: np.ndarray, x: np.ndarray, alpha: float, out: np.ndarray) -> None:
    """``y += alpha * x`` using ``out`` for ``alpha * x`` (``out`` may be ``x``, never ``y``)."""
    np.multiply(x, alpha, out=out)
    np.add(y, out, out=y)


def ema_(avg: np.ndarray, x: np.ndarray, decay: float, out: np.ndarray) -> None:
    """Exponential moving average ``avg = decay * avg + (1 - decay) * x``, in place.

    ``out`` may be ``x`` (it is overwritten), never ``avg``.
    """
    avg *= decay
    add_scaled_(avg, x, 1.0 - decay, out)


def with_weight_decay(
    w: np.ndarray, dw: np.ndarray, weight_decay: float, out: np.ndarray
) -> np.ndarray:
    """The L2-regularised gradient ``dw + weight_decay * w``, written to ``out``.

    Returns ``dw`` itself when ``weight_decay == 0``; never modifies ``dw``
    (it is the user's ``p.grad``).
    """
    if weight_decay == 0:
        return dw
    np.multiply(w, weight_decay, out=out)
    out += dw
    return out


def state_buffer(state: dict, name: str, like: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """``state[name]``, created on first use as an array like ``like`` filled with ``fill``."""
    buffer = state.get(name)
    if buffer is None:
        buffer = state[name] = np.full_like(like, fill)
    return buffer

"""Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .._validate import non_negative, real
from ..errors import InputError
from ..nn.module import Parameter
from .optimizer import as_parameter_list

__all__ = ["clip_grad_norm"]

# torch.nn.utils.clip_grad_norm_ adds this to the norm before dividing, so that
# a zero gradient gives a finite scale.
CLIP_EPS = 1e-6


def clip_grad_norm(
    parameters: Parameter | Iterable[Parameter],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    r"""Scale all gradients together, in place, so that their global norm is at most ``max_norm``.

    ``total = || (||g_1||_p, ..., ||g_k||_p) ||_p``, the ``p``-norm of all
    gradients concatenated (``p = norm_type``, ``inf`` for the max-norm). When
    ``scale = max_norm / (total + 1e-6) < 1`` every gradient is multiplied by
    ``scale``, exactly as ``torch.nn.utils.clip_grad_norm_`` does (non-finite
    norms propagate the same way: gradients become NaN unless
    ``error_if_nonfinite``). Parameters whose ``grad`` is None are skipped.

    Args:
        parameters: a Parameter or an iterable of them (not empty).
        max_norm: >= 0.
        norm_type: ``p`` > 0, or ``float("inf")``.
        error_if_nonfinite: raise :class:`~gradproof.errors.InputError` when the
            total norm is NaN or infinite instead of scaling.

    Returns:
        The total norm of the gradients *before* clipping, a Python float.
    """
    params = as_parameter_list(parameters, "parameters", "clip_grad_norm")
    max_norm = non_negative("max_norm", max_norm, owner="clip_grad_norm")
    p = _norm_order(norm_type)
    grads = [param.grad for param in params if param.grad is not None]
    total = _global_norm(grads, p)
    if error_if_nonfinite and not math.isfinite(total):
        raise InputError(
            f"clip_grad_norm: the total {norm_type}-norm of the gradients is {total}; "
            "set error_if_nonfinite=False to clip anyway"
        )
    scale = max_norm / (total + CLIP_EPS)
    if not scale >= 1.0:  # NaN scales too, as in PyTorch
        for grad in grads:
            grad *= scale
    return total


def _norm_order(norm_type: float) -> float:
    if norm_type == math.inf:
        return math.inf
    p = real("norm_type", norm_type, owner="clip_grad_norm")
    if p <= 0:
        raise InputError(f"clip_grad_norm: norm_type must be > 0 or inf, got {norm_type}")
    return p


def _global_norm(grads: list[np.ndarray], p: float) -> float:
    if not grads:
        return 0.0
    if p == math.inf:
        return max(float(np.max(np.abs(g), initial=0.0)) for g in grads)
    if p == 2.0:
        return math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    return sum(float(np.sum(np.abs(g) ** p)) for g in grads) ** (1.0 / p)

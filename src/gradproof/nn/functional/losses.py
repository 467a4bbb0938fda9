"""Losses: each returns ``(loss, dx)``, the mean loss (a Python float) and d loss / d x.

``dx`` has x's shape and dtype. All are the mean over the batch (classification
losses) or over every element (regression losses), like torch's default
``reduction="mean"`` -- with one documented exception: :func:`svm_loss` is
CS231n's multiclass hinge loss, which sums over classes, whereas
``torch.nn.functional.multi_margin_loss`` also divides by the number of
classes C (``svm_loss == C * multi_margin_loss``).

Every loss is finite and exact for logits in the thousands: softmax uses
log-sum-exp with the row maximum subtracted, the logistic loss uses
``max(x, 0) - x y + log1p(exp(-|x|))``. A NaN or infinity in x (or y) raises
:class:`~gradproof.errors.InputError` saying where -- it usually means the
forward pass diverged.

Kinks: the hinge loss takes slope 0 at a margin of exactly 0 (as CS231n and
torch); the Huber loss is differentiable everywhere (its slope is clipped at
``+-delta``).

To prove a loss with the checker, make the gradient the backward::

    gradproof.check_vjp(lambda x: softmax_loss(x, y), lambda dloss, dx: dloss * dx, x)

:data:`LOSSES` names them (``"softmax"``, ``"svm"``, ...) and :func:`loss_function`
finds one by name, for models, the trainer and ``gradproof.check_model``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..._validate import check_finite, check_shape, float_array
from ...errors import InputError, InputTypeError, describe
from .activations import logistic

__all__ = [
    "softmax_loss",
    "svm_loss",
    "mse_loss",
    "bce_with_logits_loss",
    "huber_loss",
    "LOSSES",
    "loss_function",
]

LossFunction = Callable[[np.ndarray, Any], tuple[float, np.ndarray]]

_DIVERGED = "a NaN or infinity in the scores usually means the forward pass diverged"


def _scores(x: object) -> np.ndarray:
    """Class scores for a classification loss: a finite float array of shape (N, C)."""
    x = float_array("x", x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(
            f"x must have shape (N, C) with N >= 1 examples and C >= 1 classes, got {x.shape}"
        )
    check_finite("x", x, _DIVERGED)
    return x


def _labels(y: object, x: np.ndarray) -> np.ndarray:
    """Integer class labels of shape (N,), each in [0, C)."""
    N, C = x.shape
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise InputTypeError(
            f"y must hold integer class labels in [0, {C}), got {describe(y)}; "
            "convert them with y.astype(np.int64)"
        )
    check_shape("y", y, (N,), "(N,) with N = x.shape[0]")
    if y.min() < 0 or y.max() >= C:
        i = int(np.argmax((y < 0) | (y >= C)))
        raise InputError(
            f"y must hold class labels in [0, C) = [0, {C}) for x of shape {x.shape}, "
            f"got y[{i}] = {int(y[i])}"
        )
    return y


def _targets(y: object, x: np.ndarray) -> np.ndarray:
    """Regression targets: a finite float array of x's shape."""
    y = float_array("y", y)
    check_shape("y", y, x.shape, "x.shape")
    check_finite("y", y)
    return y


def _elementwise_inputs(x: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    x = float_array("x", x)
    if x.size == 0:
        raise InputError(f"x must not be empty, got shape {x.shape}")
    check_finite("x", x, _DIVERGED)
    return x, _targets(y, x)


def _mean_loss(values: np.ndarray) -> float:
    return float(values.sum() / values.size)


# --- classification -------------------------------------------------------------
def softmax_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy: ``mean_i (log sum_j exp(x_ij) - x_{i, y_i})``.

    Args:
        x: scores (logits), shape (N, C), float.
        y: integer labels, shape (N,), each in [0, C).

    Returns:
        loss: Python float, the mean over the N examples.
        dx: shape (N, C), x's dtype: ``(softmax(x) - onehot(y)) / N``.
    """
    x = _scores(x)
    y = _labels(y, x)
    N = x.shape[0]
    rows = np.arange(N)
    shifted = x - x.max(axis=1, keepdims=True)  # log-sum-exp trick: exp never overflows
    dx = np.exp(shifted)
    total = dx.sum(axis=1, keepdims=True)  # in [1, C]: its log and reciprocal are safe
    loss = _mean_loss(np.log(total[:, 0]) - shifted[rows, y])
    dx *= 1 / (N * total)  # softmax / N
    dx[rows, y] -= x.dtype.type(1 / N)
    return loss, dx


def svm_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Multiclass hinge (SVM) loss with margin 1, as in CS231n.

    ``loss = mean_i sum_{j != y_i} max(0, x_ij - x_iy_i + 1)``.

    Equals ``C * torch.nn.functional.multi_margin_loss(x, y)`` (torch also
    divides by the number of classes). Slope 0 at a margin of exactly 0.

    Args:
        x: scores, shape (N, C), float.
        y: integer labels, shape (N,), each in [0, C).

    Returns:
        loss: Python float.
        dx: shape (N, C), x's dtype.
    """
    x = _scores(x)
    y = _labels(y, x)
    N = x.shape[0]
    rows = np.arange(N)
    margins = np.maximum(0, x - x[rows, y][:, None] + 1)
    margins[rows, y] = 0
    loss = float(margins.sum() / N)
    dx = (margins > 0).astype(x.dtype)
    dx[rows, y] = -dx.sum(axis=1)  # the correct class loses once per violating class
    dx /= N
    return loss, dx


# --- regression and binary ------------------------------------------------------
def mse_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error ``mean((x - y)**2)`` over all elements (torch's ``mse_loss``).

    x: predictions, any shape, float; y: targets, x's shape. dx: ``2 (x - y) / x.size``.
    """
    x, y = _elementwise_inputs(x, y)
    diff = x - y
    return _mean_loss(diff * diff), (2 * diff / x.size).astype(x.dtype, copy=False)


def bce_with_logits_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Binary cross-entropy on logits, mean over all elements.

    Like torch's ``binary_cross_entropy_with_logits``, computed as
    ``mean(max(x, 0) - x y + log1p(exp(-|x|)))``: exact for |x| in the thousands.

    x: logits, any shape, float; y: targets (probabilities) in [0, 1], x's shape.
    dx: ``(sigmoid(x) - y) / x.size``, x's shape and dtype.
    """
    x, y = _elementwise_inputs(x, y)
    if ((y < 0) | (y > 1)).any():
        raise InputError(
            f"y must hold target probabilities in [0, 1], got values from {y.min()} to {y.max()}"
        )
    values = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    dx = (logistic(x) - y) / x.size
    return _mean_loss(values), dx.astype(x.dtype, copy=False)


def huber_loss(x: np.ndarray, y: np.ndarray, delta: float = 1.0) -> tuple[float, np.ndarray]:
    """Huber loss, mean over all elements (torch's ``huber_loss``).

    With ``d = x - y``: ``0.5 d**2`` where ``|d| < delta``, else
    ``delta (|d| - 0.5 delta)``. dx: ``clip(d, -delta, delta) / x.size``.
    x: predictions, any shape; y: targets, x's shape; delta > 0.
    """
    if (
        isinstance(delta, bool)
        or not isinstance(delta, (int, float, np.floating))
        or not (delta > 0 and np.isfinite(delta))
    ):
        raise InputError(f"delta must be a positive number, got {delta!r}")
    delta = float(delta)
    x, y = _elementwise_inputs(x, y)
    diff = x - y
    size = np.abs(diff)
    values = np.where(size < delta, 0.5 * diff * diff, delta * (size - 0.5 * delta))
    dx = np.clip(diff, -delta, delta) / x.size
    return _mean_loss(values), dx.astype(x.dtype, copy=False)


#: The losses by name: ``loss_function("svm")``, ``Trainer(loss="huber")``.
LOSSES: dict[str, LossFunction] = {
    "softmax": softmax_loss,
    "svm": svm_loss,
    "mse": mse_loss,
    "bce_with_logits": bce_with_logits_loss,
    "huber": huber_loss,
}


def loss_function(loss: str | LossFunction, name: str = "loss") -> LossFunction:
    """A loss ``(scores, y) -> (loss, dscores)`` from a name of :data:`LOSSES` or a function.

    ``name`` is the argument's name in the error message.
    """
    if callable(loss):
        return loss
    known = sorted(LOSSES)
    if not isinstance(loss, str):
        raise InputTypeError(f"{name} must be one of {known} or a function, got {describe(loss)}")
    if loss not in known:
        raise InputError(f"{name} must be one of {known} or a function, got {loss!r}")
    return LOSSES[loss]

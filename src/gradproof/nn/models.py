"""Models built from the modules, and the loss-head convention.

Convention: a model outputs *scores* (logits), never probabilities or a loss.
The loss is applied outside the model by a functional loss
``loss, dscores = softmax_loss(scores, y)``
(:func:`gradproof.nn.functional.losses.loss_function` finds one by name), and
``dscores`` is what ``model.backward`` takes.
:func:`loss_and_backward` is that whole step (forward, loss, backward); an
optimizer step follows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validate import boolean, fraction, positive_int
from ..errors import InputError, InputTypeError, describe
from .activation import activation as make_activation
from .containers import Sequential
from .dropout import Dropout
from .dtypes import as_generator, resolve_dtype
from .functional.losses import LossFunction, loss_function
from .linear import Linear
from .module import Module
from .norm import BatchNorm1d, LayerNorm

__all__ = ["MLP", "NORMS", "loss_and_backward"]

NORMS: dict[str, type[Module]] = {"batch": BatchNorm1d, "layer": LayerNorm}


class MLP(Sequential):
    """A multilayer perceptron of any depth that outputs class scores.

    Layers: for each hidden size ``H``: ``Linear -> [norm] -> activation ->
    [Dropout]``; then ``Linear(H_last, num_classes)``. Being a
    :class:`Sequential`, its layers are ``mlp[0]``, ``mlp[1]``, ... and its
    parameter names match the same ``torch.nn.Sequential`` (``"0.weight"``).

    Parameters
    ----------
    in_features:
        ``D``: inputs have shape (N, D).
    hidden_sizes:
        Widths of the hidden layers, e.g. ``[256, 256]``; ``[]`` gives a
        linear classifier.
    num_classes:
        ``C``: scores have shape (N, C).
    activation:
        An activation name of :mod:`gradproof.nn.activation` (``"relu"``,
        ``"gelu"``, ...) or a Module class.
    norm:
        None, ``"batch"`` (BatchNorm1d) or ``"layer"`` (LayerNorm), after each
        hidden Linear. With ``"batch"`` the hidden Linears have no bias: batch
        norm subtracts it (its gradient is zero) and ``beta`` plays its part.
    dropout:
        Drop probability after each hidden activation (0 for none).
    init:
        Weight initialiser of every Linear (see :mod:`gradproof.nn.init`).
    rng:
        A Generator or int seed: initial weights and dropout masks.
    dtype:
        float32 or float64 for all parameters; inputs must have it.
    input_grad:
        Whether :meth:`backward` computes and returns ``dx`` (default False:
        like PyTorch for an input that does not require a gradient, the first
        layer skips that matrix product and :meth:`backward` returns None).
        :func:`gradproof.check_model` turns it on in its copy.
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        num_classes: int,
        activation: str | type[Module] = "relu",
        norm: str | None = None,
        dropout: float = 0.0,
        init: str | float = "he",
        rng: np.random.Generator | int | None = None,
        dtype=np.float64,
        input_grad: bool = False,
    ) -> None:
        in_features = positive_int("in_features", in_features)
        num_classes = positive_int("num_classes", num_classes)
        if isinstance(hidden_sizes, (int, np.integer, str)) or not hasattr(
            hidden_sizes, "__iter__"
        ):
            raise InputTypeError(
                f"hidden_sizes must be a sequence of ints like [256, 256], got "
                f"{describe(hidden_sizes)}"
            )
        sizes = [positive_int(f"hidden_sizes[{i}]", h) for i, h in enumerate(hidden_sizes)]
        if norm is not None and norm not in NORMS:
            raise InputError(f"norm must be None or one of {sorted(NORMS)}, got {norm!r}")
        dropout = fraction("dropout", dropout, below_one=True)
        dtype = resolve_dtype(dtype)
        gen = as_generator(rng)

        layers: list[Module] = []
        widths = [in_features, *sizes]
        for fan_in, width in zip(widths[:-1], widths[1:]):
            # batch norm subtracts any bias (its gradient is exactly zero): beta replaces it
            has_bias = norm != "batch"
            layers.append(Linear(fan_in, width, init=init, rng=gen, dtype=dtype, bias=has_bias))
            if norm is not None:
                layers.append(NORMS[norm](width, dtype=dtype))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(Dropout(dropout, rng=gen))
        layers.append(Linear(widths[-1], num_classes, init=init, rng=gen, dtype=dtype))
        layers[0].input_grad = boolean("input_grad", input_grad)
        super().__init__(*layers)
        self.in_features, self.hidden_sizes, self.num_classes = in_features, sizes, num_classes

    @property
    def dtype(self) -> np.dtype:
        return self.layers[0].weight.data.dtype

    def __repr__(self) -> str:
        return (
            f"MLP({self.in_features}, {self.hidden_sizes}, {self.num_classes}, "
            f"dtype={self.dtype})"
        )


def loss_and_backward(model: Module, x: np.ndarray, y: Any, loss: str | LossFunction = "softmax"
                      ) -> float:
    """One gradient computation: ``scores = model(x)``, the loss, ``model.backward(dscores)``.

    Gradients are *added* to the parameters' ``grad`` (zero them first, or let
    the optimizer do it). Returns the loss value (a float).
    """
    scores = model.forward(x)
    value, dscores = loss_function(loss)(scores, y)
    model.backward(dscores)
    return value

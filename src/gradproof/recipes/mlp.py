"""``gradproof train mlp``: the multilayer perceptron as a model kind, with measured defaults."""

from __future__ import annotations

import argparse

from ..data.dataset import Dataset
from ..errors import InputError
from ..nn.models import MLP
from ..nn.module import Module
from .kind import ModelKind, parse_sizes

__all__ = ["MLP_KIND"]


def _mlp_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hidden", type=parse_sizes, default=None,
                        help="hidden layer widths, comma-separated (e.g. 256,256); none: no "
                             "hidden layer (logistic regression)")
    parser.add_argument("--norm", choices=["none", "batch", "layer"], default=None,
                        help="normalisation after each hidden Linear")
    parser.add_argument("--dropout", type=float, default=None,
                        help="drop probability after each hidden activation")
    parser.add_argument("--activation", default=None, help="activation name (relu, gelu, ...)")


def _build_mlp(args: argparse.Namespace, data: Dataset) -> Module:
    if len(data.feature_shape) != 1:
        raise InputError(f"mlp needs flat inputs (N, D), got examples of shape "
                         f"{data.feature_shape}")
    return MLP(data.num_features, args.hidden, data.num_classes, activation=args.activation,
               norm=None if args.norm == "none" else args.norm, dropout=args.dropout,
               rng=args.seed, dtype=args.dtype)


MLP_KIND = ModelKind(
    name="mlp",
    help="a multilayer perceptron on flat inputs",
    add_arguments=_mlp_arguments,
    build=_build_mlp,
    defaults={
        "*": {"hidden": [256, 256], "norm": "batch", "dropout": 0.1, "activation": "relu"},
        # measured choices, see docs/train.md
        "digits": {"norm": "layer", "epochs": 30, "lr": 2e-3, "batch_size": 64},
        "mnist1d": {"epochs": 60, "lr": 3e-3, "batch_size": 32},
        "spiral": {"hidden": [100], "norm": "none", "dropout": 0.0, "epochs": 200,
                   "lr": 1e-2, "batch_size": 32},
    },
    data_options={"flatten": True},
)

"""``gradproof train gru``: the GRU classifier as a model kind of the train command.

Importing this module registers the kind (list it in
``gradproof.train.cli.KIND_MODULES``). The MNIST-1D defaults are the recipe
measured in docs/nn_sequence.md (``gradproof train gru --data mnist1d``).
"""

from __future__ import annotations

import argparse

from ..data.dataset import Dataset
from ..errors import InputError
from ..train.kinds import ModelKind, register_kind
from .gru_classifier import MNIST1D_GRU_RECIPE, GRUClassifier
from .module import Module

__all__ = ["GRU_KIND"]


def _gru_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hidden-size", type=int, default=None, help="GRU hidden units")


def _build_gru(args: argparse.Namespace, data: Dataset) -> Module:
    shape = data.feature_shape
    if len(shape) == 1:  # a signal (N, T)
        input_size = 1
    elif len(shape) == 2:  # (N, 1, T) channel-first signals or (N, T, D) sequences
        input_size = 1 if shape[0] == 1 else shape[1]
    else:
        raise InputError(f"gru needs sequences (N, T) or (N, T, D), got examples of shape {shape}")
    return GRUClassifier(input_size, args.hidden_size, data.num_classes, rng=args.seed,
                         dtype=args.dtype)  # fmt: skip


_RECIPE = {k: MNIST1D_GRU_RECIPE[k] for k in ("epochs", "batch_size", "lr", "clip_norm")}

GRU_KIND = register_kind(ModelKind(
    name="gru",
    help="a GRU over the time axis, then a linear layer on [last state, mean state]",
    add_arguments=_gru_arguments,
    build=_build_gru,
    defaults={
        "*": {"hidden_size": MNIST1D_GRU_RECIPE["hidden_size"], "clip_norm": 1.0},
        "mnist1d": _RECIPE,
    },
    data_options={"flatten": True},
))  # fmt: skip

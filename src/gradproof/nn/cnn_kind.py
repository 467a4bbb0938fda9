"""``gradproof train cnn``: the CNN models as a model kind of the ``gradproof train`` command.

Importing this module registers the kind (see :mod:`gradproof.train.kinds`); the
command imports it when it is listed in ``gradproof.train.cli.KIND_MODULES``.
Signals (MNIST-1D, examples of shape (C, L)) get a :class:`~gradproof.nn.cnn.CNN1d`,
images (digits, (C, H, W)) a :class:`~gradproof.nn.cnn.SmallCNN`::

    gradproof train cnn --data mnist1d          # the recipe of train_cnn_mnist1d
    gradproof train cnn --data digits --channels 16,32 --epochs 15
"""

from __future__ import annotations

import argparse

from ..data.dataset import Dataset
from ..errors import InputError
from ..train.kinds import ModelKind, parse_sizes, register_kind
from .cnn import MNIST1D_RECIPE, CNN1d, SmallCNN
from .module import Module

__all__ = ["CNN_KIND"]


def _cnn_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--channels",
        type=parse_sizes,
        default=None,
        help="output channels of each conv, comma-separated (e.g. 32,64,64)",
    )
    parser.add_argument(
        "--kernel-size", type=int, default=None, help="odd width of the (first) conv filters"
    )
    parser.add_argument(
        "--dropout", type=float, default=None, help="drop probability before the final Linear"
    )


def _build_cnn(args: argparse.Namespace, data: Dataset) -> Module:
    shape = data.feature_shape
    options = dict(
        channels=args.channels,
        kernel_size=args.kernel_size,
        dropout=args.dropout,
        rng=args.seed,
        dtype=args.dtype,
    )
    if len(shape) == 2:
        return CNN1d(shape[1], shape[0], data.num_classes, **options)
    if len(shape) == 3:
        return SmallCNN(shape[0], shape[1:], data.num_classes, **options)
    raise InputError(
        f"cnn needs signals (N, C, L) or images (N, C, H, W), got examples of shape {shape}"
    )


_MNIST1D = {key: MNIST1D_RECIPE[key] for key in ("epochs", "lr", "batch_size", "weight_decay")}

CNN_KIND = register_kind(
    ModelKind(
        name="cnn",
        help="a convolutional network: CNN1d on signals (mnist1d), SmallCNN on images (digits)",
        add_arguments=_cnn_arguments,
        build=_build_cnn,
        defaults={
            "*": {"channels": [16, 32], "kernel_size": 3, "dropout": 0.0, "optimizer": "adam"},
            "mnist1d": {
                **_MNIST1D,
                "channels": list(MNIST1D_RECIPE["channels"]),
                "kernel_size": MNIST1D_RECIPE["kernel_size"],
                "dropout": MNIST1D_RECIPE["dropout"],
                "optimizer": "adamw",
            },
            "digits": {"epochs": 15, "lr": 3e-3, "batch_size": 32},
        },
        data_options={"flatten": False},
    )
)

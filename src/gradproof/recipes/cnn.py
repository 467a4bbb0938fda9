"""The CNN recipes: :func:`train_cnn_mnist1d`, and ``gradproof train cnn``.

:func:`train_cnn_mnist1d` trains :class:`~gradproof.nn.cnn.CNN1d` on MNIST-1D
with the measured :data:`MNIST1D_RECIPE` (docs/nn_conv.md). :data:`CNN_KIND`
is the ``cnn`` kind of ``gradproof train``: signals (MNIST-1D, examples of
shape (C, L)) get a :class:`~gradproof.nn.cnn.CNN1d`, images (digits,
(C, H, W)) a :class:`~gradproof.nn.cnn.SmallCNN`::

    gradproof train cnn --data mnist1d          # the recipe of train_cnn_mnist1d
    gradproof train cnn --data digits --channels 16,32 --epochs 15
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

from ..data import load_mnist1d
from ..data.dataset import Dataset
from ..errors import InputError
from ..nn.cnn import CNN1d, SmallCNN
from ..nn.module import Module
from ..optim import AdamW, CosineAnnealingLR
from ..train import Trainer
from .kind import ModelKind, parse_sizes

__all__ = ["MNIST1D_RECIPE", "train_cnn_mnist1d", "CNN_KIND"]


MNIST1D_RECIPE: dict = {
    "channels": (32, 64, 64),
    "kernel_size": 5,
    "dropout": 0.3,
    "epochs": 40,
    "lr": 3e-3,
    "batch_size": 64,
    "weight_decay": 0.05,
}
"""Defaults of :func:`train_cnn_mnist1d` and of ``gradproof train cnn --data mnist1d``."""


def train_cnn_mnist1d(
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    weight_decay: float | None = None,
    channels: Sequence[int] | None = None,
    kernel_size: int | None = None,
    dropout: float | None = None,
    seed: int = 0,
    dtype=np.float32,
    num_train: int = 4000,
    num_test: int = 1000,
    progress: bool = False,
    hooks: Sequence = (),
) -> dict:
    """Train :class:`~gradproof.nn.cnn.CNN1d` on MNIST-1D with gradproof's own trainer; returns
    the results.

    The data are generated locally by the ``mnist1d`` package (the paper's
    4000 train / 1000 test examples; 10% of train held out for validation).
    AdamW (decoupled weight decay) with a cosine learning-rate decay per step;
    the parameters of the epoch with the best validation accuracy are kept.
    Arguments left at None take :data:`MNIST1D_RECIPE`; ``seed`` seeds the
    weights, the dropout masks and the shuffling (the data are always the
    paper's, generated with seed 42).

    Returns a dict: ``test_acc``, ``test_loss``, ``seconds``, ``epochs``,
    ``history`` (a :class:`gradproof.train.History`) and ``model``.
    """
    given = {
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "weight_decay": weight_decay,
        "channels": channels,
        "kernel_size": kernel_size,
        "dropout": dropout,
    }
    recipe = {**MNIST1D_RECIPE, **{k: v for k, v in given.items() if v is not None}}
    start = time.perf_counter()
    data = load_mnist1d(num_train, num_test, flatten=False, dtype=dtype)
    model = CNN1d(
        data.x_train.shape[-1],
        1,
        data.num_classes,
        recipe["channels"],
        recipe["kernel_size"],
        recipe["dropout"],
        rng=seed,
        dtype=dtype,
    )
    optimizer = AdamW(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    steps = -(-len(data.y_train) // recipe["batch_size"]) * recipe["epochs"]
    trainer = Trainer(
        model,
        optimizer,
        batch_size=recipe["batch_size"],
        epochs=recipe["epochs"],
        seed=seed,
        scheduler=CosineAnnealingLR(optimizer, T_max=steps),
        scheduler_interval="step",
        hooks=hooks,
        progress=progress,
    )
    history = trainer.fit(data)
    test_loss, test_acc = trainer.evaluate(data.x_test, data.y_test)
    return {
        "test_acc": test_acc,
        "test_loss": test_loss,
        "seconds": time.perf_counter() - start,
        "epochs": recipe["epochs"],
        "history": history,
        "model": model,
    }


# --- gradproof train cnn ----------------------------------------------------------------
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

CNN_KIND = ModelKind(
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

"""The GRU recipes: :func:`train_gru_mnist1d`, and ``gradproof train gru``.

:func:`train_gru_mnist1d` trains :class:`~gradproof.nn.gru_classifier.GRUClassifier`
on MNIST-1D with the measured :data:`MNIST1D_GRU_RECIPE` (docs/nn_sequence.md);
:data:`GRU_KIND` is the ``gru`` kind of ``gradproof train``, whose MNIST-1D
defaults are that recipe (``gradproof train gru --data mnist1d``).
"""

from __future__ import annotations

import argparse

from ..data import load_dataset
from ..data.dataset import Dataset
from ..errors import InputError
from ..nn.dtypes import resolve_dtype
from ..nn.gru_classifier import GRUClassifier
from ..nn.module import Module
from ..optim import Adam, CosineAnnealingLR
from ..train import EpochLogger, Trainer
from .kind import ModelKind

__all__ = ["MNIST1D_GRU_RECIPE", "train_gru_mnist1d", "GRU_KIND"]

#: The recipe measured in docs/nn_sequence.md (every value can be overridden).
MNIST1D_GRU_RECIPE = {
    "hidden_size": 64,
    "epochs": 60,
    "batch_size": 64,
    "lr": 1e-2,
    "clip_norm": 1.0,
    "seed": 0,
    "dtype": "float32",
}


def train_gru_mnist1d(verbose: bool = True, **overrides):
    """Train :class:`~gradproof.nn.gru_classifier.GRUClassifier` on MNIST-1D (4000 train /
    1000 test, generated locally).

    Adam with a cosine schedule, gradient clipping, the parameters of the best
    validation epoch restored at the end (:class:`gradproof.train.Trainer`).
    Returns ``(model, history, test_accuracy)``.
    """
    unknown = set(overrides) - set(MNIST1D_GRU_RECIPE)
    if unknown:
        raise InputError(f"unknown options {sorted(unknown)}; known: {sorted(MNIST1D_GRU_RECIPE)}")
    cfg = {**MNIST1D_GRU_RECIPE, **overrides}
    dtype = resolve_dtype(cfg["dtype"])
    data = load_dataset("mnist1d", dtype=dtype)
    model = GRUClassifier(1, cfg["hidden_size"], data.num_classes, rng=cfg["seed"], dtype=dtype)
    optimizer = Adam(model.parameters(), lr=cfg["lr"])
    scheduler = CosineAnnealingLR(optimizer, T_max=cfg["epochs"])
    trainer = Trainer(model, optimizer, batch_size=cfg["batch_size"], epochs=cfg["epochs"],
                      seed=cfg["seed"], scheduler=scheduler, clip_norm=cfg["clip_norm"],
                      progress=False, hooks=[EpochLogger()] if verbose else [])  # fmt: skip
    history = trainer.fit(data)
    _, test_accuracy = trainer.evaluate(data.x_test, data.y_test)
    return model, history, test_accuracy


# --- gradproof train gru ----------------------------------------------------------------
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

GRU_KIND = ModelKind(
    name="gru",
    help="a GRU over the time axis, then a linear layer on [last state, mean state]",
    add_arguments=_gru_arguments,
    build=_build_gru,
    defaults={
        "*": {"hidden_size": MNIST1D_GRU_RECIPE["hidden_size"], "clip_norm": 1.0},
        "mnist1d": _RECIPE,
    },
    data_options={"flatten": True},
)  # fmt: skip

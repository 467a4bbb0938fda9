"""Model kinds of ``gradproof train KIND``: a registry, and the MLP.

A :class:`ModelKind` says how to add its own options to the command line, how
to build the model for a data set, which data layout it wants and which
defaults it uses per data set. ``gradproof train`` lists every registered kind
as a sub-choice; another model (a CNN, a GRU) is added by calling
:func:`register_kind` in a module named in ``gradproof.train.cli.KIND_MODULES``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..data.dataset import Dataset
from ..errors import InputError
from ..nn.module import Module

__all__ = ["ModelKind", "KINDS", "register_kind", "parse_sizes", "MLP_KIND"]


@dataclass(frozen=True)
class ModelKind:
    """One ``gradproof train`` sub-choice.

    ``add_arguments(parser)`` adds the kind's options, with ``default=None``
    so that ``defaults`` can fill them; ``build(args, data)`` returns the
    model; ``data_options`` go to the data loader (e.g. ``{"flatten": False}``
    for a CNN); ``defaults[data_name]`` (or ``defaults["*"]``) gives the
    default of any option, common ones included (``epochs``, ``lr``, ...).
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    build: Callable[[argparse.Namespace, Dataset], Module]
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_options: dict[str, Any] = field(default_factory=dict)

    def defaults_for(self, data_name: str) -> dict[str, Any]:
        """The kind's defaults for ``data_name`` (data-specific over ``"*"``)."""
        return {**self.defaults.get("*", {}), **self.defaults.get(data_name, {})}


KINDS: dict[str, ModelKind] = {}


def register_kind(kind: ModelKind) -> ModelKind:
    """Add ``kind`` to the registry (a later registration of the same name replaces it)."""
    KINDS[kind.name] = kind
    return kind


def parse_sizes(text: str) -> list[int]:
    """``"256,256"`` -> ``[256, 256]``; ``""`` or ``"none"`` -> ``[]`` (a linear classifier)."""
    if text.strip().lower() in ("", "none"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer widths like 256,256, got {text!r}"
        ) from exc
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"layer widths must be positive, got {text!r}")
    return sizes


# --- the MLP -------------------------------------------------------------------
def _mlp_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hidden", type=parse_sizes, default=None,
                        help="hidden layer widths, comma-separated (e.g. 256,256)")
    parser.add_argument("--norm", choices=["none", "batch", "layer"], default=None,
                        help="normalisation after each hidden Linear")
    parser.add_argument("--dropout", type=float, default=None,
                        help="drop probability after each hidden activation")
    parser.add_argument("--activation", default=None, help="activation name (relu, gelu, ...)")


def _build_mlp(args: argparse.Namespace, data: Dataset) -> Module:
    from ..nn.models import MLP

    if len(data.feature_shape) != 1:
        raise InputError(f"mlp needs flat inputs (N, D), got examples of shape "
                         f"{data.feature_shape}")
    return MLP(data.num_features, args.hidden, data.num_classes, activation=args.activation,
               norm=None if args.norm == "none" else args.norm, dropout=args.dropout,
               rng=args.seed, dtype=args.dtype)


MLP_KIND = register_kind(ModelKind(
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
))

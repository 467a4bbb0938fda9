"""What a model kind of ``gradproof train KIND`` is: :class:`ModelKind`.

A kind says how to add its own options to the command line, how to build the
model for a data set, which data layout it wants and which defaults it uses
per data set. Each recipe module defines one (``mlp.MLP_KIND``,
``cnn.CNN_KIND``, ``gru.GRU_KIND``) and :mod:`gradproof.recipes.cli` lists them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..data.dataset import Dataset
from ..nn.module import Module

__all__ = ["ModelKind", "parse_sizes"]


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

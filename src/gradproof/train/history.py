"""The record of a training run, and its curves as a PNG."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import InputError

__all__ = ["History", "plot_history"]


@dataclass
class History:
    """Per-epoch metrics as plain lists (index ``e`` is epoch ``e``, from 0).

    ``val_loss``/``val_acc`` hold None for epochs without validation.
    ``lr`` is the learning rate of each epoch's first step (None when the
    optimizer exposes none), ``seconds`` the wall time of each epoch.
    ``best_epoch`` (from 0) has the best validation accuracy ``best_val_acc``
    (ties: the lowest validation loss, ``best_val_loss``);
    ``stopped_early`` says whether early stopping ended the run.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    val_acc: list[float | None] = field(default_factory=list)
    lr: list[float | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_acc: float | None = None
    best_val_loss: float | None = None
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        """Number of epochs recorded."""
        return len(self.train_loss)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> History:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(state) - known)
        if unknown:
            raise InputError(f"history has unknown fields {unknown}; expected {sorted(known)}")
        return cls(**{k: list(v) if isinstance(v, (list, tuple)) else v
                      for k, v in state.items()})


def plot_history(history: History, path: str | os.PathLike, title: str | None = None) -> str:
    """Save loss and accuracy curves (train and validation per epoch) to a PNG; return the path.

    Needs matplotlib (``pip install 'gradproof[plot]'``); it is imported here
    and only here, with the non-interactive Agg canvas (no window, no pyplot
    global state).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "plotting training curves needs matplotlib: pip install 'gradproof[plot]'"
        ) from exc
    if history.epochs == 0:
        raise InputError("history has no epochs to plot")
    path = os.fspath(path)
    epochs = list(range(1, history.epochs + 1))
    figure = Figure(figsize=(9, 3.6))
    FigureCanvasAgg(figure)
    for column, (metric, label) in enumerate((("loss", "loss"), ("acc", "accuracy"))):
        axes = figure.add_subplot(1, 2, column + 1)
        axes.plot(epochs, getattr(history, f"train_{metric}"), label="train")
        val = getattr(history, f"val_{metric}")
        points = [(e, v) for e, v in zip(epochs, val) if v is not None]
        if points:
            axes.plot(*zip(*points), label="validation")
        if history.best_epoch is not None:
            axes.axvline(history.best_epoch + 1, color="gray", linestyle=":", label="best")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path

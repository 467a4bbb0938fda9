"""The trainer's callback protocol, and the hooks that come with it.

A hook is any object with some of these methods (all optional; the trainer
calls the ones it finds, in the order the hooks were given)::

    on_fit_start(trainer)                     before the first epoch (also on resume)
    on_after_backward(trainer, step: StepInfo) gradients are fresh, parameters not yet updated
    on_step(trainer, step: StepInfo)          after the optimizer step (gradients still there)
    on_epoch_end(trainer, epoch: EpochInfo)   after validation, the scheduler and the checkpoint
    on_fit_end(trainer, history)              after the best parameters are restored

``trainer.model``, ``trainer.optimizer``, ``trainer.scheduler`` and
``trainer.history`` are there to read; a hook stops training by setting
``trainer.stop_training = True``. A hook with ``state_dict()`` and
``load_state_dict(state)`` is checkpointed with the run (its state must be a
tree of dicts, lists, numbers, strings and arrays). An exception raised by a
hook propagates out of :meth:`Trainer.fit`: the last checkpoint is intact.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

__all__ = ["StepInfo", "EpochInfo", "Hook", "EpochLogger", "call_hooks", "check_hooks",
           "HOOK_METHODS"]

HOOK_METHODS = ("on_fit_start", "on_after_backward", "on_step", "on_epoch_end", "on_fit_end")


@dataclass
class StepInfo:
    """One optimizer step.

    ``step`` counts optimizer steps from 0 over the whole run (it is the index
    of this step); ``epoch`` counts from 0; ``batch_index`` in [0,
    ``num_batches``). ``x`` (B, ...) and ``y`` (B,) are the batch, ``scores``
    (B, C) the model's output on it, ``loss`` the mean loss (a float).
    ``grad_norm`` is the global gradient norm before clipping when the trainer
    clips (else None); ``lr`` is the learning rate used by this step, if the
    optimizer exposes one.
    """

    step: int
    epoch: int
    batch_index: int
    num_batches: int
    loss: float
    x: np.ndarray
    y: np.ndarray
    scores: np.ndarray
    grad_norm: float | None = None
    lr: float | None = None


@dataclass
class EpochInfo:
    """One finished epoch (``epoch`` counts from 0): its metrics, as in the history.

    ``val_loss`` and ``val_acc`` are None when there is no validation split.
    ``is_best``: this epoch has the best validation accuracy so far.
    """

    epoch: int
    epochs: int
    step: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    seconds: float
    is_best: bool
    lr: float | None = None


class Hook:
    """A base class with every method a no-op; subclassing it is optional."""

    def on_fit_start(self, trainer: Any) -> None:
        pass

    def on_after_backward(self, trainer: Any, step: StepInfo) -> None:
        pass

    def on_step(self, trainer: Any, step: StepInfo) -> None:
        pass

    def on_epoch_end(self, trainer: Any, epoch: EpochInfo) -> None:
        pass

    def on_fit_end(self, trainer: Any, history: Any) -> None:
        pass


def check_hooks(hooks: Any) -> list:
    """``hooks`` as a list, each with at least one of :data:`HOOK_METHODS`; otherwise an
    error naming the entry (a hook that has none would silently never run)."""
    from ..errors import InputTypeError, describe

    if any(callable(getattr(hooks, m, None)) for m in HOOK_METHODS):
        raise InputTypeError(f"hooks must be a list of hooks, got the single hook "
                             f"{describe(hooks)}; pass hooks=[hook]")
    if isinstance(hooks, (str, bytes, dict)) or not hasattr(hooks, "__iter__"):
        raise InputTypeError(f"hooks must be a list of hook objects, got {describe(hooks)}")
    hooks = list(hooks)
    for i, hook in enumerate(hooks):
        if not any(callable(getattr(hook, m, None)) for m in HOOK_METHODS):
            raise InputTypeError(
                f"hooks[{i}] must be a hook, an object with at least one of "
                f"{', '.join(HOOK_METHODS)} (e.g. a gradproof.train.Hook subclass), got "
                f"{describe(hook)}")
    return hooks


def call_hooks(hooks, method: str, *args) -> None:
    """Call ``hook.method(*args)`` for each hook that has the method."""
    for hook in hooks:
        fn = getattr(hook, method, None)
        if fn is not None:
            fn(*args)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


class EpochLogger(Hook):
    """Print one line per epoch: losses, accuracies, time (to ``stream``, stdout by default)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def on_epoch_end(self, trainer: Any, epoch: EpochInfo) -> None:
        stream = self.stream or sys.stdout
        width = len(str(epoch.epochs))
        best = " *" if epoch.is_best else ""
        lr = "" if epoch.lr is None else f"  lr {epoch.lr:.2e}"
        print(
            f"epoch {epoch.epoch + 1:>{width}}/{epoch.epochs}  "
            f"train loss {epoch.train_loss:.4f} acc {epoch.train_acc:.4f}  "
            f"val loss {_fmt(epoch.val_loss, '.4f')} acc {_fmt(epoch.val_acc, '.4f')}  "
            f"{epoch.seconds:.2f}s{lr}{best}",
            file=stream,
            flush=True,
        )

"""The training loop: minibatches, validation, early stopping, best parameters, checkpoints.

One :class:`Trainer` owns a run: it shuffles with its own seeded Generator,
steps the optimizer (and the scheduler), validates after every epoch, keeps the
parameters of the epoch with the best validation accuracy and restores them at
the end, and checkpoints everything a run depends on, so that a run resumed
from a checkpoint continues bit for bit as if it had never stopped::

    trainer = Trainer(model, Adam(model.parameters(), lr=1e-3), batch_size=64,
                      epochs=20, seed=0, checkpoint_dir="runs/a")
    history = trainer.fit(data)              # data: a gradproof.data.Dataset
    test_loss, test_acc = trainer.evaluate(data.x_test, data.y_test)

After a crash, a new Trainer built the same way continues with
``trainer.fit(data, resume=True)``.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._validate import boolean, choice, int_at_least, optional_positive
from ..data.dataset import Dataset, check_data, minibatches
from ..errors import InputError, InputTypeError, describe
from ..nn.functional.losses import loss_function
from ..nn.module import Module
from . import checkpoint as ckpt
from .history import History
from .hooks import EpochInfo, StepInfo, call_hooks, check_hooks
from .progress import ProgressBar
from .rngs import generator_states, restore_generator_states, set_generator_state

__all__ = ["Trainer", "accuracy"]

SCHEDULER_INTERVALS = ("epoch", "step")


def accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows of ``scores`` (N, C) whose argmax is the label ``y`` (N,); NaN otherwise.

    Losses whose targets are not class labels (mse on real targets) have no
    accuracy: NaN says so without failing the run.
    """
    if scores.ndim != 2 or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        return math.nan
    return float(np.mean(scores.argmax(axis=1) == y))


def _current_lr(optimizer: Any) -> float | None:
    """The optimizer's (first) learning rate, if it exposes one as ``lr`` or param groups."""
    lr = getattr(optimizer, "lr", None)
    if lr is None:
        groups = getattr(optimizer, "param_groups", None)
        if groups:
            lr = groups[0].get("lr") if isinstance(groups[0], dict) else None
    return float(lr) if isinstance(lr, (int, float, np.number)) else None


class Trainer:
    """Train a classifier ``model`` (outputs scores (N, C)) with ``optimizer``.

    Parameters
    ----------
    model, optimizer:
        A :class:`~gradproof.nn.module.Module` and an optimizer over its
        parameters (``step()``, ``state_dict()``, ``load_state_dict()``).
    loss:
        A loss name of :func:`gradproof.nn.functional.losses.loss_function` or a function
        ``(scores, y) -> (loss, dscores)``.
    batch_size, epochs, seed:
        Minibatch size; number of epochs of :meth:`fit`; the seed of the
        trainer's own shuffling Generator (the model's dropout Generator is
        the model's).
    drop_last:
        Skip each epoch's last batch when it is smaller than ``batch_size``
        (batch norm cannot train on a batch of one example).
    scheduler, scheduler_interval:
        An optional learning-rate schedule with ``step()`` (and
        ``state_dict()``/``load_state_dict()`` to be checkpointed), stepped
        after every ``"epoch"`` (default) or every optimizer ``"step"``.
    clip_norm:
        Clip the global gradient norm to this value before each step.
    early_stopping_patience:
        Stop after this many epochs without a better validation accuracy.
    restore_best:
        At the end of :meth:`fit`, load the parameters (and buffers) of the
        epoch with the best validation accuracy, ties going to the lower
        validation loss (default True).
    hooks:
        Callback objects, see :mod:`gradproof.train.hooks`.
    progress:
        Draw a progress bar on stderr during each epoch (only on a terminal).
    checkpoint_dir, checkpoint_every, keep_checkpoints:
        Save a checkpoint there every ``checkpoint_every`` epochs and after
        the last one, keeping the newest ``keep_checkpoints``.
    eval_batch_size:
        Batch size of :meth:`evaluate` (memory only; results do not depend on it
        beyond float rounding).
    """

    def __init__(
        self,
        model: Module,
        optimizer: Any,
        loss: str | Callable = "softmax",
        batch_size: int = 64,
        epochs: int = 10,
        seed: int = 0,
        drop_last: bool = False,
        scheduler: Any = None,
        scheduler_interval: str = "epoch",
        clip_norm: float | None = None,
        early_stopping_patience: int | None = None,
        restore_best: bool = True,
        hooks: Sequence[Any] = (),
        progress: bool = True,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
        keep_checkpoints: int | None = 2,
        eval_batch_size: int = 1024,
    ) -> None:
        if not isinstance(model, Module):
            raise InputTypeError(f"model must be a gradproof.nn.Module, got {describe(model)}")
        for method in ("step", "state_dict", "load_state_dict"):
            if not callable(getattr(optimizer, method, None)):
                raise InputTypeError(
                    f"optimizer must have a {method}() method (a gradproof.optim optimizer), "
                    f"got {describe(optimizer)}"
                )
        if scheduler is not None and not callable(getattr(scheduler, "step", None)):
            raise InputTypeError(f"scheduler must have a step() method, got {describe(scheduler)}")
        choice("scheduler_interval", scheduler_interval, SCHEDULER_INTERVALS)
        seed = int_at_least("seed", seed, 0)
        _check_optimizer_owns(optimizer, model)
        for name, value in (("drop_last", drop_last), ("restore_best", restore_best),
                            ("progress", progress)):
            boolean(name, value)
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.loss_name = loss if isinstance(loss, str) else getattr(loss, "__name__", "custom")
        self.loss_fn = loss_function(loss)
        self.batch_size = optional_positive("batch_size", batch_size)
        self.epochs = optional_positive("epochs", epochs)
        if self.batch_size is None or self.epochs is None:
            raise InputError("batch_size and epochs must be positive ints, not None")
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.scheduler_interval = scheduler_interval
        self.clip_norm = optional_positive("clip_norm", clip_norm, float)
        self.patience = optional_positive("early_stopping_patience", early_stopping_patience)
        self.restore_best = bool(restore_best)
        self.hooks = check_hooks(hooks)
        self.progress = bool(progress)
        self.checkpoint_dir = None if checkpoint_dir is None else os.fspath(checkpoint_dir)
        self.checkpoint_every = optional_positive("checkpoint_every", checkpoint_every)
        self.keep_checkpoints = optional_positive("keep_checkpoints", keep_checkpoints)
        self.eval_batch_size = optional_positive("eval_batch_size", eval_batch_size)

        self.rng = np.random.default_rng(self.seed)
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps completed
        self.history = History()
        self.best_state: dict[str, np.ndarray] | None = None
        self.epochs_since_best = 0
        self.stop_training = False
        self.resume_point: ckpt.ResumePoint | None = None  # what fit(resume=True) found

    # --- evaluation ----------------------------------------------------------
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """``(mean loss, accuracy)`` of the model on ``x`` (N, ...) and ``y`` (N,), in eval mode.

        The model's train/eval mode is restored afterwards.
        """
        x, y = check_data(x, y, "evaluate")
        if len(y) == 0:
            raise InputError("evaluate: x and y are empty")
        was_training = self.model.training
        self.model.eval()
        try:
            total_loss, correct = 0.0, 0.0
            for xb, yb in minibatches(x, y, self.eval_batch_size, shuffle=False):
                scores = self.model.forward(xb)
                value, _ = self.loss_fn(scores, yb)
                total_loss += float(value) * len(yb)
                correct += accuracy(scores, yb) * len(yb)
        finally:
            self.model.train(was_training)
        return total_loss / len(y), correct / len(y)

    # --- training ------------------------------------------------------------
    def fit(self, data: Dataset, resume: bool = False, allow_fresh: bool = False) -> History:
        """Train for the remaining epochs on ``data``; return the :class:`History`.

        With ``resume`` the newest checkpoint in ``checkpoint_dir`` that loads
        is loaded first, and training continues from it exactly. Newer ones
        that are damaged are moved aside (``*.damaged``, never deleted) with a
        :class:`~gradproof.train.checkpoint.CheckpointWarning`. When there is
        no usable checkpoint (none yet, a missing directory, all damaged) it is
        a :class:`~gradproof.train.checkpoint.CheckpointError` unless
        ``allow_fresh``, which starts from epoch 1. ``self.resume_point`` says
        what was found and used (``.describe()``).
        """
        boolean("resume", resume)
        boolean("allow_fresh", allow_fresh)
        if not isinstance(data, Dataset):
            raise InputTypeError(
                f"data must be a gradproof.data.Dataset (see gradproof.data.load_dataset), "
                f"got {describe(data)}"
            )
        if resume:
            if self.checkpoint_dir is None:
                raise InputError("resume=True needs checkpoint_dir")
            with warnings.catch_warnings():  # said once, in the message below
                warnings.simplefilter("ignore", ckpt.CheckpointWarning)
                found = ckpt.find_resumable(self.checkpoint_dir)
            self.resume_point = found
            if found.damaged:
                warnings.warn(found.describe(), ckpt.CheckpointWarning, stacklevel=2)
            if found.path is not None:
                self.load_state_dict(found.state, source=found.path)
            elif not allow_fresh:
                raise ckpt.CheckpointError(
                    f"resume=True, but {found.describe().splitlines()[-1]}; pass "
                    "allow_fresh=True (gradproof train: --allow-fresh) to start from epoch 1")
        has_val = len(data.y_val) > 0
        if self.patience is not None and not has_val:
            raise InputError("early_stopping_patience needs a validation split (x_val is empty)")
        call_hooks(self.hooks, "on_fit_start", self)
        while self.epoch < self.epochs and not self.stop_training:
            self._run_epoch(data, has_val)
        if self.restore_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        call_hooks(self.hooks, "on_fit_end", self, self.history)
        return self.history

    def _run_epoch(self, data: Dataset, has_val: bool) -> None:
        start = time.perf_counter()
        lr = _current_lr(self.optimizer)  # the lr of the epoch's first step
        train_loss, train_acc = self._train_one_epoch(data.x_train, data.y_train)
        val_loss, val_acc = self.evaluate(data.x_val, data.y_val) if has_val else (None, None)
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            self.scheduler.step()
        is_best = has_val and self._improves(val_acc, val_loss)
        if is_best:
            self.history.best_epoch = self.epoch
            self.history.best_val_acc, self.history.best_val_loss = val_acc, val_loss
            self.best_state = self.model.state_dict()
            self.epochs_since_best = 0
        elif has_val:
            self.epochs_since_best += 1
            if self.patience is not None and self.epochs_since_best >= self.patience:
                self.history.stopped_early = self.stop_training = True
        seconds = time.perf_counter() - start
        for name, value in (("train_loss", train_loss), ("train_acc", train_acc),
                            ("val_loss", val_loss), ("val_acc", val_acc), ("lr", lr),
                            ("seconds", seconds)):
            getattr(self.history, name).append(value)
        info = EpochInfo(self.epoch, self.epochs, self.step, train_loss, train_acc, val_loss,
                         val_acc, seconds, bool(is_best), lr)
        self.epoch += 1
        # hooks first, so that the checkpoint holds their state after this epoch and their
        # request to stop; an exception here leaves the previous checkpoint as the latest
        call_hooks(self.hooks, "on_epoch_end", self, info)
        last = self.epoch == self.epochs or self.stop_training
        if self.checkpoint_dir is not None and (last or self.epoch % self.checkpoint_every == 0):
            self.save_checkpoint()

    def _improves(self, val_acc: float, val_loss: float) -> bool:
        """A better validation accuracy, or the same with a lower loss (small validation sets
        tie often, and the loss then tells the better model)."""
        best_acc, best_loss = self.history.best_val_acc, self.history.best_val_loss
        return best_acc is None or val_acc > best_acc or (val_acc == best_acc
                                                          and val_loss < best_loss)

    def _train_one_epoch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """One pass over shuffled minibatches; returns the epoch's mean loss and accuracy.

        Both are averaged over the batches as they were trained (train mode,
        parameters changing), weighted by batch size.
        """
        self.model.train()
        num_batches = (len(y) // self.batch_size if self.drop_last
                       else -(-len(y) // self.batch_size))
        if num_batches == 0:
            raise InputError(f"drop_last with batch_size {self.batch_size} leaves no batch of "
                             f"the {len(y)} training examples")
        bar = ProgressBar(num_batches, f"epoch {self.epoch + 1}/{self.epochs}",
                          enabled=self.progress)
        total_loss, correct, seen = 0.0, 0.0, 0
        params = self.model.parameters()
        batches = minibatches(x, y, self.batch_size, self.rng, drop_last=self.drop_last)
        try:
            for index, (xb, yb) in enumerate(batches):
                self.model.zero_grad()
                scores = self.model.forward(xb)
                value, dscores = self.loss_fn(scores, yb)
                self.model.backward(dscores)
                info = StepInfo(self.step, self.epoch, index, num_batches, float(value), xb, yb,
                                scores, lr=_current_lr(self.optimizer))
                call_hooks(self.hooks, "on_after_backward", self, info)
                if self.clip_norm is not None:
                    from ..optim import clip_grad_norm

                    info.grad_norm = float(clip_grad_norm(params, self.clip_norm))
                self.optimizer.step()
                self.step += 1
                if self.scheduler is not None and self.scheduler_interval == "step":
                    self.scheduler.step()
                call_hooks(self.hooks, "on_step", self, info)
                total_loss += float(value) * len(yb)
                correct += accuracy(scores, yb) * len(yb)
                seen += len(yb)
                bar.update(index + 1, float(value))
        finally:
            bar.close()
        return total_loss / seen, correct / seen

    # --- checkpoints ---------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything the rest of the run depends on, as a tree of plain values and arrays."""
        hooks = {str(i): h.state_dict() for i, h in enumerate(self.hooks)
                 if callable(getattr(h, "state_dict", None))}
        return {
            "config": {"seed": self.seed, "batch_size": self.batch_size, "loss": self.loss_name,
                       "scheduler_interval": self.scheduler_interval,
                       "drop_last": self.drop_last},
            "epoch": self.epoch,
            "step": self.step,
            "epochs_since_best": self.epochs_since_best,
            "stop_training": self.stop_training,
            "history": self.history.to_dict(),
            "rng": self.rng.bit_generator.state,
            "model": self.model.state_dict(),
            "model_rngs": generator_states(self.model),
            "best": self.best_state,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "hooks": hooks,
        }

    def load_state_dict(self, state: dict[str, Any], source: str = "the state") -> None:
        """Restore a :meth:`state_dict`; the run must be configured the same way.

        All or nothing: the counters, the RNG state and the structure are
        checked first; if restoring a part (model, optimizer, scheduler, hooks)
        still fails, everything restored so far is rolled back. Raises
        :class:`~gradproof.train.checkpoint.CheckpointError` naming ``source``.
        """
        _check_run_state(state, source)
        before = self.state_dict()
        try:
            self._restore(state)
        except Exception as exc:
            self._restore(before)
            if isinstance(exc, ckpt.CheckpointError):
                raise
            raise ckpt.CheckpointError(
                f"{source} does not fit this run ({type(exc).__name__}: {exc}); nothing was "
                "changed") from exc

    def _restore(self, state: dict[str, Any]) -> None:
        config = state["config"]
        mine = self.state_dict()["config"]
        differ = {k: (config.get(k), v) for k, v in mine.items() if config.get(k) != v}
        if differ:
            raise ckpt.CheckpointError(
                "the checkpoint was made by a differently configured run; "
                + ", ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in differ.items())
            )
        if (self.scheduler is None) != (state["scheduler"] is None):
            raise ckpt.CheckpointError("the checkpoint and this run differ in having a scheduler")
        restore_generator_states(self.model, state["model_rngs"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        for index, hook_state in state["hooks"].items():
            self.hooks[int(index)].load_state_dict(hook_state)
        set_generator_state(self.rng, state["rng"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.epochs_since_best = int(state["epochs_since_best"])
        self.stop_training = bool(state["stop_training"])
        self.history = History.from_dict(state["history"])
        self.best_state = state["best"]

    def save_checkpoint(self) -> str:
        """Write a checkpoint of the run now into ``checkpoint_dir``; return its JSON path."""
        if self.checkpoint_dir is None:
            raise InputError("save_checkpoint needs checkpoint_dir")
        return ckpt.save_checkpoint(self.checkpoint_dir, self.epoch, self.state_dict(),
                                    keep_last=self.keep_checkpoints)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore the run from a checkpoint's JSON path (see :mod:`gradproof.train.checkpoint`);
        all or nothing."""
        self.load_state_dict(ckpt.load_checkpoint(path), source=f"checkpoint {os.fspath(path)!r}")


_RUN_STATE_KEYS = ("config", "epoch", "step", "epochs_since_best", "stop_training", "history",
                   "rng", "model", "model_rngs", "best", "optimizer", "scheduler", "hooks")


def _check_run_state(state: Any, source: str) -> None:
    """The plain parts of a :meth:`Trainer.state_dict`, checked before anything is restored."""
    if not isinstance(state, dict):
        raise ckpt.CheckpointError(f"{source} must be a dict (Trainer.state_dict()), got "
                                   f"{describe(state)}")
    missing = [k for k in _RUN_STATE_KEYS if k not in state]
    if missing:
        raise ckpt.CheckpointError(f"{source} lacks {', '.join(missing)}")
    for key in ("epoch", "step", "epochs_since_best"):
        value = state[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ckpt.CheckpointError(f"{source}: {key} must be an int >= 0, got "
                                       f"{describe(value)}")
    if not isinstance(state["stop_training"], (bool, np.bool_)):
        raise ckpt.CheckpointError(f"{source}: stop_training must be a bool, got "
                                   f"{describe(state['stop_training'])}")
    rng = state["rng"]
    if not (isinstance(rng, dict) and isinstance(rng.get("bit_generator"), str)
            and "state" in rng):
        raise ckpt.CheckpointError(f"{source}: rng must be a bit generator's state (a dict with "
                                   f"'bit_generator' and 'state'), got {describe(rng)}")
    for key in ("config", "history", "model", "model_rngs", "hooks"):
        if not isinstance(state[key], dict):
            raise ckpt.CheckpointError(f"{source}: {key} must be a dict, got "
                                       f"{describe(state[key])}")


def _check_optimizer_owns(optimizer: Any, model: Module) -> None:
    """Every parameter the optimizer updates must be one of the model's: an optimizer
    built over another model would train nothing while the loss is computed."""
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list):
        return
    own = {id(p) for p in model.parameters()}
    index = 0
    for group in groups:
        for p in (group.get("params", []) if isinstance(group, dict) else []):
            if id(p) not in own:
                raise InputError(
                    f"optimizer parameter {index} ({describe(getattr(p, 'data', p))}) is not a "
                    "parameter of model: build the optimizer from this model, e.g. "
                    "SGD(model.parameters(), lr=...)")
            index += 1

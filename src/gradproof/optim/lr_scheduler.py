"""Learning-rate schedules that match ``torch.optim.lr_scheduler`` step for step.

A scheduler owns an epoch counter. Building it sets every group's ``lr`` to its
value at epoch 0; each :meth:`LRScheduler.step` (call it after
``optimizer.step()``) advances the counter and sets the next value. Each
schedule is a closed-form function of ``(base_lr, epoch)``, so a schedule can be
plotted with :meth:`LRScheduler.lr_at` and resumed from :meth:`state_dict`
(two JSON-able entries) bit for bit. PyTorch computes most of these
recursively (``lr * gamma`` each step); the values agree to rounding.

``base_lr`` is the group's lr when the first scheduler was attached, kept in
``group["initial_lr"]`` as PyTorch does, so that several schedulers built on one
optimizer (for :class:`SequentialLR`) share it.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from .._validate import check_options, non_negative, positive_int, real
from ..errors import InputError, InputTypeError, describe
from .optimizer import Optimizer

__all__ = [
    "LRScheduler",
    "StepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "LinearLR",
    "SequentialLR",
    "warmup_cosine",
]


class LRScheduler:
    """Base class: a subclass writes ``_lr(base_lr, epoch)``, its closed form."""

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise InputTypeError(
                f"{type(self).__name__}: optimizer must be a gradproof.optim optimizer, "
                f"got {describe(optimizer)}"
            )
        self.optimizer = optimizer
        self.base_lrs = [group.setdefault("initial_lr", group["lr"]) for group in
                         optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def _lr(self, base_lr: float, epoch: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def lr_at(self, epoch: int) -> list[float]:
        """The learning rate of each group at ``epoch`` (0 is the value before any step)."""
        return [self._lr(base_lr, epoch) for base_lr in self.base_lrs]

    def step(self) -> None:
        """Advance one epoch (or iteration) and set each group's ``lr``."""
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The learning rates this scheduler set last, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """``{"scheduler": name, "last_epoch": int, "base_lrs": [float, ...]}``, JSON-able."""
        return {
            "scheduler": type(self).__name__,
            "last_epoch": self.last_epoch,
            "base_lrs": list(self.base_lrs),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the epoch and base learning rates, and set each group's ``lr`` from them."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict) or state.get("scheduler") != type(self).__name__:
            raise InputError(
                f"{owner}: state must be the state_dict() of a {type(self).__name__}, "
                f"got {describe(state)}"
            )
        check_options(owner, state, ["scheduler", "last_epoch", "base_lrs"], kind="key",
                      error=InputTypeError)
        epoch, base_lrs = state.get("last_epoch"), state.get("base_lrs")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise InputError(f"{owner}: last_epoch must be an integer >= 0, got {epoch!r}")
        if not isinstance(base_lrs, list) or len(base_lrs) != len(self.base_lrs):
            raise InputError(
                f"{owner}: base_lrs must be a list of {len(self.base_lrs)} learning rates, "
                f"got {describe(base_lrs)}"
            )
        self.base_lrs = [non_negative(f"base_lrs[{i}]", lr, owner=owner)
                         for i, lr in enumerate(base_lrs)]
        self.last_epoch = epoch
        self._apply()

    def _apply(self) -> None:
        self._last_lr = self.lr_at(self.last_epoch)
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr})"


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (epoch // step_size)`` (torch's StepLR)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = positive_int("step_size", step_size, owner="StepLR")
        self.gamma = non_negative("gamma", gamma, owner="StepLR")
        super().__init__(optimizer)

    def _lr(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """``lr = base_lr * gamma ** epoch`` (torch's ExponentialLR)."""

    def __init__(self, optimizer: Optimizer, gamma: float):
        self.gamma = non_negative("gamma", gamma, owner="ExponentialLR")
        super().__init__(optimizer)

    def _lr(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma**epoch


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``.

    torch's CosineAnnealingLR (without restarts): lr reaches ``eta_min`` at
    ``epoch == T_max`` and, as in PyTorch, climbs back along the cosine after.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):  # noqa: N803
        self.T_max = positive_int("T_max", T_max, owner="CosineAnnealingLR")
        self.eta_min = non_negative("eta_min", eta_min, owner="CosineAnnealingLR")
        super().__init__(optimizer)

    def _lr(self, base_lr: float, epoch: int) -> float:
        cosine = 1 + math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (base_lr - self.eta_min) * cosine / 2


class LinearLR(LRScheduler):
    """Linear warm-up (or decay): the factor goes from ``start_factor`` to ``end_factor``.

    ``lr = base_lr * (start + (end - start) * min(epoch, total_iters) / total_iters)``
    (torch's LinearLR): with ``start_factor < 1 == end_factor`` it is the usual
    linear warm-up, reaching ``base_lr`` at ``epoch == total_iters``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
    ):
        self.start_factor = real("start_factor", start_factor, owner="LinearLR")
        if not 0 < self.start_factor <= 1:
            raise InputError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        self.end_factor = real("end_factor", end_factor, owner="LinearLR")
        if not 0 <= self.end_factor <= 1:
            raise InputError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        self.total_iters = positive_int("total_iters", total_iters, owner="LinearLR")
        super().__init__(optimizer)

    def _lr(self, base_lr: float, epoch: int) -> float:
        progress = min(self.total_iters, epoch) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class SequentialLR(LRScheduler):
    """One schedule after another: ``schedulers[i]`` runs from ``milestones[i-1]`` on.

    Each schedule restarts its epoch count at its milestone, as in torch's
    SequentialLR. Step only the SequentialLR, not the schedules it holds.
    """

    def __init__(
        self, optimizer: Optimizer, schedulers: list[LRScheduler], milestones: list[int]
    ):
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise InputError("SequentialLR: schedulers is empty; give at least one scheduler")
        for i, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler) or scheduler.optimizer is not optimizer:
                raise InputError(
                    f"SequentialLR: schedulers[{i}] must be a scheduler of this optimizer, "
                    f"got {describe(scheduler)}"
                )
        if len(milestones) != len(schedulers) - 1:
            raise InputError(
                f"SequentialLR: milestones must have len(schedulers) - 1 == "
                f"{len(schedulers) - 1} entries, got {len(milestones)}"
            )
        milestones = [positive_int(f"milestones[{i}]", m, owner="SequentialLR")
                      for i, m in enumerate(milestones)]
        if any(a >= b for a, b in zip(milestones, milestones[1:])):
            raise InputError(f"SequentialLR: milestones must increase, got {milestones}")
        self.schedulers, self.milestones = schedulers, milestones
        super().__init__(optimizer)

    def _lr(self, base_lr: float, epoch: int) -> float:
        index = bisect.bisect_right(self.milestones, epoch)
        start = self.milestones[index - 1] if index else 0
        return self.schedulers[index]._lr(base_lr, epoch - start)


def warmup_cosine(
    optimizer: Optimizer,
    warmup_steps: int,
    total_steps: int,
    start_factor: float | None = None,
    eta_min: float = 0.0,
) -> SequentialLR:
    """Linear warm-up for ``warmup_steps``, then cosine annealing to ``eta_min``.

    The same values as torch's ``SequentialLR([LinearLR(opt, start_factor, 1.0,
    warmup_steps), CosineAnnealingLR(opt, total_steps - warmup_steps, eta_min)],
    milestones=[warmup_steps])``. ``start_factor`` defaults to ``1 / warmup_steps``
    (the first step uses ``base_lr / warmup_steps``). The lr is ``base_lr`` at
    ``warmup_steps`` and ``eta_min`` at ``total_steps``.
    """
    warmup_steps = positive_int("warmup_steps", warmup_steps, owner="warmup_cosine")
    total_steps = positive_int("total_steps", total_steps, owner="warmup_cosine")
    if total_steps <= warmup_steps:
        raise InputError(
            f"warmup_cosine: total_steps must be > warmup_steps == {warmup_steps}, "
            f"got {total_steps}"
        )
    if start_factor is None:
        start_factor = 1.0 / warmup_steps
    warmup = LinearLR(optimizer, start_factor, 1.0, warmup_steps)
    cosine = CosineAnnealingLR(optimizer, total_steps - warmup_steps, eta_min)
    return SequentialLR(optimizer, [warmup, cosine], [warmup_steps])

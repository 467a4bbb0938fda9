"""A small, fully stateful training run shared by the trainer tests and their subprocesses.

Every kind of state a checkpoint must carry is in play: batch norm running
statistics (buffers), dropout masks (the model's Generator), Adam moments, a
per-step cosine schedule, gradient clipping, the trainer's shuffling Generator.
"""

from __future__ import annotations

import functools
import os
import signal
import sys

import numpy as np

from gradproof.data import Dataset, load_digits
from gradproof.nn.models import MLP
from gradproof.optim import Adam, CosineAnnealingLR
from gradproof.train import Hook, Trainer

EPOCHS = 4
BATCH = 64


@functools.cache
def digits() -> Dataset:
    return load_digits(seed=0)


def make_trainer(seed: int = 0, epochs: int = EPOCHS, lr: float = 3e-3, hooks=(),
                 checkpoint_dir=None, dropout: float = 0.2, norm: str | None = "batch",
                 hidden: int = 32, **options) -> Trainer:
    data = digits()
    model = MLP(data.num_features, [hidden], data.num_classes, norm=norm, dropout=dropout,
                rng=seed)
    optimizer = Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(data.y_train) // BATCH)
    scheduler = CosineAnnealingLR(optimizer, T_max=steps)
    options.setdefault("clip_norm", 5.0)
    return Trainer(model, optimizer, batch_size=BATCH, epochs=epochs, seed=seed,
                   scheduler=scheduler, scheduler_interval="step", hooks=list(hooks),
                   progress=False, checkpoint_dir=checkpoint_dir, **options)


class FailAtStep(Hook):
    """Raise (or SIGKILL the process) when the optimizer has taken ``step`` steps."""

    def __init__(self, step: int, kill: bool = False) -> None:
        self.step, self.kill = step, kill

    def on_step(self, trainer, info) -> None:
        if info.step == self.step:
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"interrupted at step {info.step}")


def main() -> None:  # pragma: no cover - runs in a subprocess
    """``python -m tests.train.runs CHECKPOINT_DIR KILL_STEP``: train until killed."""
    directory, kill_step = sys.argv[1], int(sys.argv[2])
    make_trainer(hooks=[FailAtStep(kill_step, kill=True)], checkpoint_dir=directory).fit(digits())
    raise SystemExit("the run was not killed")


def final_state(trainer: Trainer) -> dict[str, np.ndarray]:
    """Model parameters and buffers, optimizer arrays, and the shuffling Generator's state."""
    state = {f"model/{k}": v for k, v in trainer.model.state_dict().items()}
    state.update({f"optim/{k}": v for k, v in trainer.optimizer.state_dict()["arrays"].items()})
    return state


if __name__ == "__main__":  # pragma: no cover
    main()

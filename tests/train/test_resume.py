"""A run killed and resumed from its checkpoint ends bit for bit like the uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradproof.train import latest_checkpoint
from gradproof.train.checkpoint import CheckpointError

from .runs import EPOCHS, FailAtStep, digits, final_state, make_trainer

ROOT = Path(__file__).resolve().parents[2]
STEPS_PER_EPOCH = -(-len(digits().y_train) // 64)


def assert_bitwise_equal(resumed: dict, reference: dict) -> None:
    assert sorted(resumed) == sorted(reference)
    for name, value in reference.items():
        assert resumed[name].dtype == value.dtype, name
        assert np.array_equal(resumed[name], value), f"{name} differs after resuming"


def assert_same_history(resumed, reference) -> None:
    for field in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "best_epoch",
                  "best_val_acc", "best_val_loss", "stopped_early"):
        assert getattr(resumed, field) == getattr(reference, field), field


@pytest.fixture(scope="module")
def uninterrupted():
    trainer = make_trainer()
    history = trainer.fit(digits())
    return final_state(trainer), history


def test_resume_after_an_exception_mid_epoch_is_bit_for_bit(tmp_path, uninterrupted):
    crash_step = 2 * STEPS_PER_EPOCH + 5  # in the third epoch, after the epoch-2 checkpoint
    crashing = make_trainer(hooks=[FailAtStep(crash_step)], checkpoint_dir=tmp_path)
    with pytest.raises(RuntimeError, match="interrupted"):
        crashing.fit(digits())
    assert os.path.basename(latest_checkpoint(tmp_path)) == "epoch-0002.json"

    resumed = make_trainer(checkpoint_dir=tmp_path)  # a fresh model, optimizer and schedule
    history = resumed.fit(digits(), resume=True)
    reference_state, reference_history = uninterrupted
    assert_bitwise_equal(final_state(resumed), reference_state)
    assert_same_history(history, reference_history)
    assert resumed.step == EPOCHS * STEPS_PER_EPOCH


def test_resume_after_sigkill_of_the_training_process_is_bit_for_bit(tmp_path, uninterrupted):
    kill_step = 3 * STEPS_PER_EPOCH - 2  # near the end of the third epoch
    process = subprocess.run(
        [sys.executable, "-m", "tests.train.runs", str(tmp_path), str(kill_step)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert process.returncode == -signal.SIGKILL, process.stderr
    assert os.path.basename(latest_checkpoint(tmp_path)) == "epoch-0002.json"

    resumed = make_trainer(checkpoint_dir=tmp_path)
    history = resumed.fit(digits(), resume=True)
    reference_state, reference_history = uninterrupted
    assert_bitwise_equal(final_state(resumed), reference_state)
    assert_same_history(history, reference_history)


def test_resuming_a_finished_run_trains_no_further(tmp_path, uninterrupted):
    make_trainer(checkpoint_dir=tmp_path).fit(digits())
    again = make_trainer(checkpoint_dir=tmp_path)
    history = again.fit(digits(), resume=True)
    assert history.epochs == EPOCHS
    assert_bitwise_equal(final_state(again), uninterrupted[0])


def test_without_a_checkpoint_resume_is_an_error_unless_a_fresh_start_is_allowed(
        tmp_path, uninterrupted):
    with pytest.raises(CheckpointError, match="does not exist.*allow_fresh=True"):
        make_trainer(checkpoint_dir=tmp_path / "empty").fit(digits(), resume=True)
    trainer = make_trainer(checkpoint_dir=tmp_path / "empty")
    trainer.fit(digits(), resume=True, allow_fresh=True)
    assert_bitwise_equal(final_state(trainer), uninterrupted[0])


def test_a_checkpoint_of_a_differently_configured_run_is_refused(tmp_path):
    make_trainer(epochs=1, checkpoint_dir=tmp_path).fit(digits())
    other = make_trainer(seed=1, epochs=1, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="seed: checkpoint 0, now 1"):
        other.fit(digits(), resume=True)
    no_dropout = make_trainer(epochs=1, dropout=0.0, checkpoint_dir=tmp_path)
    with pytest.raises((CheckpointError, KeyError)):
        no_dropout.fit(digits(), resume=True)

"""Nothing lost, nothing silent: resuming past damaged checkpoints, and all-or-nothing loads.

A run is interrupted (an exception mid-epoch, or SIGKILL), then its checkpoints
are damaged the ways issue 14 found: the newest truncated, both damaged, the
directory missing, the JSON edited. Resuming must say what it found and what it
uses, move damaged files aside (never delete them), refuse to start over unless
asked, and still end bit for bit like the uninterrupted run. Loads that fail
must leave the module, optimizer or trainer exactly as they were.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradproof.nn as nn
from gradproof import optim
from gradproof.cli import main
from gradproof.errors import InputError
from gradproof.recipes.charlm import train_charlm
from gradproof.train.checkpoint import (
    CheckpointError,
    CheckpointWarning,
    find_resumable,
    load_checkpoint,
    save_checkpoint,
)

from .runs import FailAtStep, digits, final_state, make_trainer

ROOT = Path(__file__).resolve().parents[2]
STEPS_PER_EPOCH = -(-len(digits().y_train) // 64)


@pytest.fixture(scope="module")
def uninterrupted():
    trainer = make_trainer()
    trainer.fit(digits())
    return final_state(trainer)


def assert_bitwise_equal(resumed: dict, reference: dict) -> None:
    assert sorted(resumed) == sorted(reference)
    for name, value in reference.items():
        assert np.array_equal(resumed[name], value), f"{name} differs after resuming"


def crashed_in_epoch_3(directory) -> None:
    """A run that dies in its third epoch: epoch-0001 and epoch-0002 are on disk."""
    crashing = make_trainer(hooks=[FailAtStep(2 * STEPS_PER_EPOCH + 3)], checkpoint_dir=directory)
    with pytest.raises(RuntimeError, match="interrupted"):
        crashing.fit(digits())
    assert sorted(os.listdir(directory)) == ["epoch-0001.json", "epoch-0001.npz",
                                             "epoch-0002.json", "epoch-0002.npz"]


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def edit_epoch(json_path: Path, epoch: int) -> None:
    record = json.loads(json_path.read_text())
    record["state"]["epoch"] = epoch
    json_path.write_text(json.dumps(record))


def test_a_damaged_newest_checkpoint_is_moved_aside_and_the_older_one_used(tmp_path,
                                                                            uninterrupted):
    crashed_in_epoch_3(tmp_path)
    truncate(tmp_path / "epoch-0002.npz")
    resumed = make_trainer(checkpoint_dir=tmp_path)
    with pytest.warns(CheckpointWarning, match=r"moved aside to .*epoch-0002\.json\.damaged"):
        resumed.fit(digits(), resume=True)
    assert resumed.resume_point.path.endswith("epoch-0001.json")
    assert "resumed from epoch 1" in resumed.resume_point.describe()
    assert_bitwise_equal(final_state(resumed), uninterrupted)
    # moved aside, never deleted, and left alone by the rotation of later checkpoints
    assert (tmp_path / "epoch-0002.json.damaged").exists()
    assert (tmp_path / "epoch-0002.npz.damaged").exists()


def test_an_edited_json_is_refused_by_its_hash_and_moved_aside(tmp_path, uninterrupted):
    crashed_in_epoch_3(tmp_path)
    edit_epoch(tmp_path / "epoch-0002.json", 3)  # as if two epochs had been trained
    with pytest.raises(CheckpointError, match="record_sha256"):
        load_checkpoint(tmp_path / "epoch-0002.json")
    resumed = make_trainer(checkpoint_dir=tmp_path)
    with pytest.warns(CheckpointWarning, match="the JSON was edited"):
        resumed.fit(digits(), resume=True)
    assert resumed.resume_point.epoch == 1
    assert_bitwise_equal(final_state(resumed), uninterrupted)


def test_with_both_checkpoints_damaged_resume_is_an_error_unless_a_fresh_start_is_allowed(
        tmp_path, uninterrupted):
    crashed_in_epoch_3(tmp_path)
    truncate(tmp_path / "epoch-0002.npz")
    (tmp_path / "epoch-0001.json").write_text("{not json")
    with pytest.warns(CheckpointWarning), pytest.raises(CheckpointError,
                                                        match="no usable checkpoint"):
        make_trainer(checkpoint_dir=tmp_path).fit(digits(), resume=True)
    damaged = sorted(p.name for p in tmp_path.iterdir())
    assert damaged == ["epoch-0001.json.damaged", "epoch-0001.npz.damaged",
                       "epoch-0002.json.damaged", "epoch-0002.npz.damaged"]
    fresh = make_trainer(checkpoint_dir=tmp_path)
    fresh.fit(digits(), resume=True, allow_fresh=True)
    assert_bitwise_equal(final_state(fresh), uninterrupted)
    assert set(damaged) <= {p.name for p in tmp_path.iterdir()}  # still there


def test_a_missing_directory_is_an_error_unless_a_fresh_start_is_allowed(tmp_path,
                                                                         uninterrupted):
    missing = tmp_path / "never-made"
    with pytest.raises(CheckpointError, match="does not exist.*allow_fresh=True"):
        make_trainer(checkpoint_dir=missing).fit(digits(), resume=True)
    fresh = make_trainer(checkpoint_dir=missing)
    fresh.fit(digits(), resume=True, allow_fresh=True)
    assert_bitwise_equal(final_state(fresh), uninterrupted)


def test_sigkill_then_an_edited_newest_checkpoint_still_resumes_bit_for_bit(tmp_path,
                                                                          uninterrupted):
    process = subprocess.run(
        [sys.executable, "-m", "tests.train.runs", str(tmp_path), str(3 * STEPS_PER_EPOCH - 2)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert process.returncode == -signal.SIGKILL, process.stderr
    edit_epoch(tmp_path / "epoch-0002.json", 0)
    resumed = make_trainer(checkpoint_dir=tmp_path)
    with pytest.warns(CheckpointWarning):
        resumed.fit(digits(), resume=True)
    assert resumed.resume_point.epoch == 1
    assert_bitwise_equal(final_state(resumed), uninterrupted)


def test_the_cli_says_what_it_found_and_refuses_to_start_over_silently(tmp_path, capsys):
    run = ["train", "mlp", "--data", "spiral", "--epochs", "3", "--no-progress",
           "--checkpoint-dir", str(tmp_path / "ckpt")]
    assert main(run) == 0
    truncate(tmp_path / "ckpt" / "epoch-0003.npz")
    capsys.readouterr()
    with pytest.warns(CheckpointWarning):
        assert main([*run, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "damaged checkpoint moved aside" in out and "resumed from epoch 2" in out
    other = ["train", "mlp", "--data", "spiral", "--epochs", "3", "--no-progress",
             "--checkpoint-dir", str(tmp_path / "missing"), "--resume"]
    assert main(other) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*other, "--allow-fresh"]) == 0
    assert "starting from epoch 1 (--allow-fresh)" in capsys.readouterr().out


def test_charlm_resumes_bit_for_bit_past_a_damaged_checkpoint(tmp_path):
    options = dict(hidden_size=16, embed_dim=8, seq_len=16, batch_size=4, steps=6,
                   sample_chars=0, modules=("textwrap",), verbose=False, checkpoint_every=2,
                   log_every=1)
    reference = train_charlm(**options)
    train_charlm(checkpoint_dir=tmp_path, **options)
    assert sorted(os.listdir(tmp_path)) == ["epoch-0004.json", "epoch-0004.npz",
                                            "epoch-0006.json", "epoch-0006.npz"]
    truncate(tmp_path / "epoch-0006.npz")
    with pytest.warns(CheckpointWarning, match="moved aside"):
        resumed = train_charlm(checkpoint_dir=tmp_path, resume=True, **options)
    ours, theirs = resumed.model.state_dict(), reference.model.state_dict()
    assert all(np.array_equal(ours[k], theirs[k]) for k in theirs)
    assert resumed.train_losses == reference.train_losses
    with pytest.raises(CheckpointError, match="does not exist"):
        train_charlm(checkpoint_dir=tmp_path / "none", resume=True, **options)


# --- all or nothing -----------------------------------------------------------------------------
def snapshot(trainer) -> dict:
    state = final_state(trainer)
    state["epoch/step"] = np.array([trainer.epoch, trainer.step])
    state["rng"] = np.array(trainer.rng.bit_generator.state["state"]["state"])
    return state


@pytest.mark.parametrize("damage", ["epoch='abc'", "rng={}", "model weight shape",
                                    "optimizer array", "model buffer missing"])
def test_a_failed_trainer_load_changes_nothing(tmp_path, damage):
    source = make_trainer(epochs=1, checkpoint_dir=tmp_path)
    source.fit(digits())
    state = source.state_dict()
    if damage == "epoch='abc'":
        state["epoch"] = "abc"
    elif damage == "rng={}":
        state["rng"] = {}
    elif damage == "model weight shape":
        state["model"]["2.weight"] = np.zeros((3, 3))
    elif damage == "optimizer array":
        state["optimizer"]["arrays"]["1.exp_avg_sq"] = -np.ones_like(
            state["optimizer"]["arrays"]["1.exp_avg_sq"])
    else:
        state["model"] = {k: v for k, v in state["model"].items() if "running_var" not in k}
    path = save_checkpoint(tmp_path / "bad", 1, state)  # a valid file holding a bad state
    target = make_trainer(epochs=1)
    target.fit(digits())  # some state of its own, to be kept
    before = snapshot(target)
    with pytest.raises(CheckpointError):
        target.load_checkpoint(path)
    assert_bitwise_equal(snapshot(target), before)


def test_a_failed_module_load_changes_nothing():
    model = nn.MLP(4, [3], 2, rng=0)
    before = model.state_dict()
    state = nn.MLP(4, [3], 2, rng=1).state_dict()
    state["2.bias"] = np.zeros(5)  # the last entry wrong: the first ones must not be copied
    with pytest.raises(InputError, match=r"state\['2.bias'\] must have shape \(2,\)"):
        model.load_state_dict(state)
    assert_bitwise_equal(model.state_dict(), before)


def test_a_failed_optimizer_load_changes_nothing():
    model = nn.Linear(3, 4, rng=0)
    adam = optim.Adam(model.parameters())
    for p in model.parameters():
        p.grad[...] = 1.0
    adam.step()
    before = adam.state_dict()
    state = optim.Adam(model.parameters(), lr=0.5).state_dict()
    state["hyper"]["steps"] = [3, 3]  # steps taken, but no moments: refused
    with pytest.raises(InputError, match="lacks"):
        adam.load_state_dict(state)
    after = adam.state_dict()
    assert after["hyper"] == before["hyper"]
    assert_bitwise_equal(after["arrays"], before["arrays"])


def test_find_resumable_on_an_empty_directory_finds_nothing_and_moves_nothing(tmp_path):
    found = find_resumable(tmp_path)
    assert found.path is None and found.damaged == [] and found.exists
    assert "no usable checkpoint" in found.describe()

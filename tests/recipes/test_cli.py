"""``gradproof train KIND --data ...``: output, defaults, checkpoints, errors, extension."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest

from gradproof.cli import build_parser, main
from gradproof.recipes import cli as train_cli
from gradproof.recipes.kind import ModelKind
from gradproof.recipes.mlp import MLP_KIND

FAST = ["--data", "spiral", "--epochs", "3", "--no-progress"]


def run_json(capsys, *argv: str) -> dict:
    assert main(["train", "mlp", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def test_train_prints_each_epoch_and_the_test_accuracy(capsys):
    assert main(["train", "mlp", *FAST]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 3
    assert "Dataset('spiral'" in out and lines[-1].startswith("test loss ")
    assert "test accuracy" in lines[-1]


def test_json_summary_goes_to_stdout_and_epoch_lines_to_stderr(capsys):
    assert main(["train", "mlp", *FAST, "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["kind"] == "mlp" and summary["data"] == "spiral"
    assert summary["epochs_run"] == 3 and len(summary["history"]["val_acc"]) == 3
    assert 0 <= summary["test_acc"] <= 1
    assert captured.err.count("\nepoch ") + captured.err.startswith("epoch ") == 3


def test_the_best_epoch_is_counted_from_1_in_the_text_and_the_json_alike(capsys):
    assert main(["train", "mlp", *FAST, "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    text = captured.err.splitlines()[-1]  # "test loss ... (best epoch N, ...)"
    assert f"(best epoch {summary['best_epoch']}," in text
    assert summary["history"]["best_epoch"] == summary["best_epoch"]
    starred = [line for line in captured.err.splitlines() if line.endswith(" *")]
    assert starred[-1].startswith(f"epoch {summary['best_epoch']}/")


def test_left_out_options_take_the_kinds_defaults_for_the_data_set():
    args = build_parser().parse_args(["train", "mlp", "--data", "digits"])
    train_cli._fill_defaults(args, MLP_KIND)
    for name, value in MLP_KIND.defaults_for("digits").items():
        assert getattr(args, name) == value, name
    assert args.optimizer == train_cli.COMMON_DEFAULTS["optimizer"]


def test_given_options_override_the_defaults(capsys):
    summary = run_json(capsys, *FAST, "--hidden", "16,8", "--norm", "layer", "--dropout",
                       "0.2", "--optimizer", "sgd", "--lr", "0.05", "--batch-size", "16",
                       "--dtype", "float64", "--schedule", "none", "--clip-norm", "1")
    options = summary["options"]
    assert options["hidden"] == [16, 8] and options["norm"] == "layer"
    assert options["optimizer"] == "sgd" and options["batch_size"] == 16
    assert summary["history"]["lr"] == [0.05] * 3  # no schedule


def test_resume_from_the_cli_continues_exactly(capsys, tmp_path):
    reference = run_json(capsys, *FAST)
    ckpt = str(tmp_path / "ckpt")
    run_json(capsys, *FAST, "--checkpoint-dir", ckpt)
    os.unlink(os.path.join(ckpt, "epoch-0003.json"))  # as if killed during epoch 3
    resumed = run_json(capsys, *FAST, "--checkpoint-dir", ckpt, "--resume")
    assert resumed["test_loss"] == reference["test_loss"]
    for key in ("train_loss", "val_loss", "val_acc"):
        assert resumed["history"][key] == reference["history"][key]


def test_plot_option_writes_a_png(capsys, tmp_path):
    path = tmp_path / "curves.png"
    assert main(["train", "mlp", *FAST, "--plot", str(path)]) == 0
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "cifar"], "expected one of ['digits', 'mnist1d', 'spiral']"),
        (["--data", "digits", "--hidden", "256,x"], "comma-separated layer widths"),
        (["--data", "digits", "--norm", "group"], "invalid choice: 'group'"),
    ],
)
def test_bad_options_exit_with_status_2_and_say_why(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "mlp", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_resume_needs_a_checkpoint_dir():
    with pytest.raises(SystemExit, match="--resume needs --checkpoint-dir"):
        main(["train", "mlp", *FAST, "--resume"])


def test_a_model_kind_added_to_the_kinds_is_a_new_sub_choice(capsys, monkeypatch):
    built = []

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--width", type=int, default=None)

    def build(args, data):
        from gradproof.nn.models import MLP

        built.append(args.width)
        return MLP(data.num_features, [args.width], data.num_classes, rng=args.seed,
                   dtype=args.dtype)

    monkeypatch.setitem(train_cli.KINDS, "toy", ModelKind(
        "toy", "a test kind", add_arguments, build, defaults={"*": {"width": 7, "epochs": 2}}))
    assert main(["train", "toy", "--data", "spiral", "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert built == [7] and summary["kind"] == "toy" and summary["epochs_run"] == 2
    assert np.isfinite(summary["test_loss"])


def test_every_kind_and_charlm_are_sub_choices_of_train():
    parser = build_parser()
    for kind in (*train_cli.KINDS, "charlm"):
        extra = [] if kind == "charlm" else ["--data", "spiral"]
        assert parser.parse_args(["train", kind, *extra]).kind == kind


@pytest.mark.parametrize("kind", [*train_cli.KINDS, "charlm"])
def test_every_kind_and_charlm_take_threads_default_one(kind, capsys):
    parser = build_parser()
    extra = [] if kind == "charlm" else ["--data", "spiral"]
    assert parser.parse_args(["train", kind, *extra]).threads == 1
    assert parser.parse_args(["train", kind, *extra, "--threads", "0"]).threads == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["train", kind, *extra, "--threads", "-1"])
    assert "expected an integer >= 0, got '-1'" in capsys.readouterr().err


def test_charlm_reports_progress_from_the_first_step(capsys):
    argv = ["train", "charlm", "--steps", "5", "--hidden", "8", "--embed", "4",
            "--seq-len", "8", "--batch-size", "2", "--log-every", "2", "--sample-chars", "0",
            "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("charlm: gru, 1 layer(s) of 8")
    steps = [line.split()[1] for line in lines if line.startswith("step ")]
    assert steps == ["1/5", "2/5", "4/5", "5/5"]
    assert lines[-1].startswith("held-out loss: ")

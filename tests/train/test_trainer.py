"""The Trainer: it learns, evaluates right, stops early, keeps the best parameters, is seeded."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from gradproof.data import Dataset, load_spiral
from gradproof.errors import InputError, InputTypeError
from gradproof.nn.models import MLP
from gradproof.optim import SGD, Adam
from gradproof.train import History, Hook, Trainer, plot_history
from gradproof.train.progress import ProgressBar

from .runs import digits, final_state, make_trainer


def test_an_mlp_learns_digits_to_90_percent_in_a_few_epochs():
    trainer = make_trainer(epochs=5, dropout=0.0, hidden=128, lr=1e-2)
    history = trainer.fit(digits())
    _, test_acc = trainer.evaluate(digits().x_test, digits().y_test)
    assert test_acc >= 0.9
    assert history.train_loss[-1] < history.train_loss[0] / 3


def test_history_holds_one_plain_float_per_epoch():
    history = make_trainer(epochs=3).fit(digits())
    assert history.epochs == 3
    for name in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"):
        values = getattr(history, name)
        assert len(values) == 3 and all(type(v) is float for v in values), name
    assert 0 <= history.best_epoch < 3
    assert history.best_val_acc == max(history.val_acc)
    assert History.from_dict(history.to_dict()) == history


def test_evaluate_matches_torch_cross_entropy_and_argmax_accuracy():
    trainer = make_trainer(epochs=1)
    trainer.fit(digits())
    data = digits()
    trainer.model.eval()
    scores = trainer.model.forward(data.x_test)
    trainer.model.train()
    expected_loss = torch.nn.functional.cross_entropy(
        torch.from_numpy(scores), torch.from_numpy(data.y_test)).item()
    expected_acc = float((scores.argmax(1) == data.y_test).mean())
    trainer.eval_batch_size = 100  # batches of another size give the same mean
    loss, acc = trainer.evaluate(data.x_test, data.y_test)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    assert acc == expected_acc
    assert trainer.model.training  # the mode is restored


def test_the_same_seed_gives_the_same_run_and_another_seed_another():
    a, b = make_trainer(epochs=2), make_trainer(epochs=2)
    a.fit(digits())
    b.fit(digits())
    state_a, state_b = final_state(a), final_state(b)
    assert all(np.array_equal(state_a[k], state_b[k]) for k in state_a)
    c = make_trainer(epochs=2)
    c.rng = np.random.default_rng(1)  # only the shuffling differs
    c.fit(digits())
    assert not np.array_equal(final_state(c)["model/0.weight"], state_a["model/0.weight"])


class RecordStates(Hook):
    def __init__(self) -> None:
        self.states: list[dict] = []

    def on_epoch_end(self, trainer, info) -> None:
        self.states.append(trainer.model.state_dict())


def test_the_best_epochs_parameters_are_restored_at_the_end():
    recorder = RecordStates()
    trainer = make_trainer(epochs=6, lr=3e-2, hooks=[recorder])  # a large lr: val acc wobbles
    history = trainer.fit(digits())
    best = history.best_epoch
    ranked = sorted(range(6), key=lambda e: (-history.val_acc[e], history.val_loss[e], e))
    assert best == ranked[0]  # the best accuracy; among ties, the lowest loss
    final = trainer.model.state_dict()
    assert all(np.array_equal(final[k], recorder.states[best][k]) for k in final)
    _, val_acc = trainer.evaluate(digits().x_val, digits().y_val)
    assert val_acc == history.best_val_acc


def test_restore_best_false_keeps_the_last_parameters():
    recorder = RecordStates()
    trainer = make_trainer(epochs=3, hooks=[recorder], restore_best=False)
    trainer.fit(digits())
    final = trainer.model.state_dict()
    assert all(np.array_equal(final[k], recorder.states[-1][k]) for k in final)


def test_early_stopping_after_patience_epochs_without_improvement():
    # lr 0 and no batch norm (whose running statistics would still move): no progress at all
    trainer = make_trainer(epochs=10, lr=0.0, norm=None, early_stopping_patience=2)
    history = trainer.fit(digits())
    assert history.epochs == 3 and history.stopped_early
    assert history.best_epoch == 0


def test_no_validation_split_means_no_best_and_no_early_stopping():
    data = digits()
    no_val = Dataset(data.x_train, data.y_train, data.x_val[:0], data.y_val[:0], data.x_test,
                     data.y_test, 10, "digits")
    history = make_trainer(epochs=2).fit(no_val)
    assert history.val_acc == [None, None] and history.best_epoch is None
    with pytest.raises(InputError, match="needs a validation split"):
        make_trainer(epochs=2, early_stopping_patience=1).fit(no_val)


def test_other_losses_train_too():
    data = load_spiral(seed=0)
    model = MLP(2, [32], 3, rng=0)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1, momentum=0.9), loss="svm",
                      batch_size=32, epochs=30, progress=False)
    history = trainer.fit(data)
    assert history.train_acc[-1] > 0.8  # the spiral is not linearly separable: ~0.5 if not learnt


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"model": "mlp"}, InputTypeError, "model must be a gradproof.nn.Module"),
        ({"optimizer": object()}, InputTypeError, "optimizer must have a step"),
        ({"scheduler": 3}, InputTypeError, "scheduler must have a step"),
        ({"scheduler_interval": "batch"}, InputError,
         "scheduler_interval must be 'epoch' or 'step'"),
        ({"batch_size": 0}, InputError, "batch_size must be None or a positive int"),
        ({"clip_norm": -1.0}, InputError, "clip_norm"),
        ({"loss": "hinge"}, InputError, "loss must be one of"),
        ({"seed": 1.5}, InputTypeError, "seed must be an int"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, message):
    model = MLP(4, [3], 2, rng=0)
    arguments = {"model": model, "optimizer": Adam(model.parameters())} | kwargs
    with pytest.raises(error, match=message):
        Trainer(**arguments)


def test_fit_needs_a_dataset_and_resume_needs_a_directory():
    trainer = make_trainer(epochs=1)
    with pytest.raises(InputTypeError, match="data must be a gradproof.data.Dataset"):
        trainer.fit((digits().x_train, digits().y_train))
    with pytest.raises(InputError, match="resume=True needs checkpoint_dir"):
        trainer.fit(digits(), resume=True)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_on_a_terminal_and_erases_itself():
    stream = FakeTerminal()
    bar = ProgressBar(4, "epoch 1/2", stream=stream, min_interval=0.0)
    for done in range(1, 5):
        bar.update(done, loss=0.5)
    drawn = stream.getvalue()
    assert "epoch 1/2 [" in drawn and "4/4 loss 0.5000" in drawn and "#" * 30 in drawn
    bar.close()
    assert stream.getvalue().endswith("\r")


def test_progress_bar_is_silent_off_a_terminal_or_when_disabled():
    for stream, enabled in ((io.StringIO(), True), (FakeTerminal(), False)):
        bar = ProgressBar(3, "x", stream=stream, enabled=enabled)
        bar.update(3, 1.0)
        bar.close()
        assert stream.getvalue() == ""


def test_training_curves_are_saved_as_png(tmp_path):
    history = make_trainer(epochs=2).fit(digits())
    path = plot_history(history, tmp_path / "curves.png", title="digits")
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match="no epochs"):
        plot_history(History(), tmp_path / "empty.png")


def test_drop_last_skips_a_batch_of_one_that_batch_norm_cannot_train_on():
    data = digits()
    n = 64 * 3 + 1
    small = Dataset(data.x_train[:n], data.y_train[:n], data.x_val, data.y_val, data.x_test,
                    data.y_test, 10, "digits")
    with pytest.raises(InputError, match="at least 2 examples per batch"):
        make_trainer(epochs=1).fit(small)
    trainer = make_trainer(epochs=2, drop_last=True)
    trainer.fit(small)
    assert trainer.step == 2 * 3

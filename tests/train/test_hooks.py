"""The hook protocol: what hooks see, when, and what they can do to the run."""

from __future__ import annotations

import io

import numpy as np
import pytest

import gradproof
from gradproof.train import EpochLogger, Hook, StepInfo

from .runs import EPOCHS, digits, make_trainer

STEPS_PER_EPOCH = -(-len(digits().y_train) // 64)


class Recorder(Hook):
    """Records every call, and the model's first weight before and after each step."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.steps: list[StepInfo] = []
        self.epochs = []
        self.weight_changed: list[bool] = []

    def on_fit_start(self, trainer) -> None:
        self.calls.append("fit_start")

    def on_after_backward(self, trainer, info) -> None:
        self.calls.append("after_backward")
        self._before = trainer.model[0].weight.data.copy()
        self._grad = trainer.model[0].weight.grad.copy()

    def on_step(self, trainer, info) -> None:
        self.calls.append("step")
        self.steps.append(info)
        self.weight_changed.append(not np.array_equal(self._before, trainer.model[0].weight.data))

    def on_epoch_end(self, trainer, info) -> None:
        self.calls.append("epoch_end")
        self.epochs.append(info)

    def on_fit_end(self, trainer, history) -> None:
        self.calls.append("fit_end")


def test_hooks_are_called_in_order_with_consistent_step_information():
    recorder = Recorder()
    trainer = make_trainer(hooks=[recorder])
    trainer.fit(digits())
    per_epoch = ["after_backward", "step"] * STEPS_PER_EPOCH + ["epoch_end"]
    assert recorder.calls == ["fit_start", *per_epoch * EPOCHS, "fit_end"]
    assert [s.step for s in recorder.steps] == list(range(EPOCHS * STEPS_PER_EPOCH))
    assert [s.batch_index for s in recorder.steps[:STEPS_PER_EPOCH]] == list(
        range(STEPS_PER_EPOCH))
    assert sum(len(s.y) for s in recorder.steps[:STEPS_PER_EPOCH]) == len(digits().y_train)
    first = recorder.steps[0]
    assert first.x.shape == (64, 64) and first.scores.shape == (64, 10)
    assert first.num_batches == STEPS_PER_EPOCH and first.epoch == 0
    assert all(s.grad_norm is not None and s.grad_norm > 0 for s in recorder.steps)
    # the cosine schedule: each step reports the lr it used, decreasing to 0
    lrs = [s.lr for s in recorder.steps]
    assert lrs[0] == 3e-3 and all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert all(recorder.weight_changed)
    assert [e.epoch for e in recorder.epochs] == list(range(EPOCHS))
    assert [e.val_acc for e in recorder.epochs] == trainer.history.val_acc
    assert trainer.history.lr == [lrs[e * STEPS_PER_EPOCH] for e in range(EPOCHS)]


def test_loss_in_step_info_is_the_batch_loss_of_the_model_before_the_step():
    class CheckLoss(Hook):
        def on_after_backward(self, trainer, info):
            loss, _ = gradproof.nn.functional.softmax_loss(info.scores, info.y)
            assert loss == info.loss

    make_trainer(epochs=1, hooks=[CheckLoss()]).fit(digits())


def test_gradients_handed_to_the_optimizer_are_the_true_batch_gradients():
    """check_vjp proves the gradient the trainer computed, at a late step (stale gradients
    that were not zeroed between steps would fail)."""
    reports = []

    class ProveGradient(Hook):
        def on_after_backward(self, trainer, info):
            if info.step != 7:
                return
            weight = trainer.model[0].weight
            w0, analytic = weight.data.copy(), weight.grad.copy()

            def batch_loss(w):
                weight.data[...] = w
                loss, _ = gradproof.nn.functional.softmax_loss(
                    trainer.model.forward(info.x), info.y)
                weight.data[...] = w0
                return np.float64(loss), None

            reports.append(gradproof.check_vjp(batch_loss, lambda dout, _: dout * analytic, w0))

    trainer = make_trainer(epochs=1, dropout=0.0, norm=None, hooks=[ProveGradient()])
    trainer.fit(digits())
    assert len(reports) == 1
    reports[0].raise_if_failed()


def test_the_checker_catches_gradients_that_accumulate_across_steps():
    """The same proof fails when the gradient is not zeroed: the test above can fail."""
    reports = []

    class ProveAccumulated(Hook):
        def on_after_backward(self, trainer, info):
            weight = trainer.model[0].weight
            if info.step == 6:
                self.previous = weight.grad.copy()
            if info.step != 7:
                return
            w0, stale = weight.data.copy(), weight.grad + self.previous

            def batch_loss(w):
                weight.data[...] = w
                loss, _ = gradproof.nn.functional.softmax_loss(
                    trainer.model.forward(info.x), info.y)
                weight.data[...] = w0
                return np.float64(loss), None

            reports.append(gradproof.check_vjp(batch_loss, lambda dout, _: dout * stale, w0))

    make_trainer(epochs=1, dropout=0.0, norm=None, hooks=[ProveAccumulated()]).fit(digits())
    assert not reports[0].ok


def test_a_hook_can_stop_training_and_the_stop_is_checkpointed(tmp_path):
    class StopAfterTwo(Hook):
        def on_epoch_end(self, trainer, info):
            if info.epoch == 1:
                trainer.stop_training = True

    history = make_trainer(hooks=[StopAfterTwo()], checkpoint_dir=tmp_path).fit(digits())
    assert history.epochs == 2 and not history.stopped_early
    resumed = make_trainer(checkpoint_dir=tmp_path)
    assert resumed.fit(digits(), resume=True).epochs == 2


class Counter(Hook):
    """A hook with state: it is checkpointed with the run."""

    def __init__(self) -> None:
        self.steps = 0

    def on_step(self, trainer, info) -> None:
        self.steps += 1

    def state_dict(self) -> dict:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.steps = state["steps"]


def test_hook_state_is_saved_and_restored_with_the_checkpoint(tmp_path):
    make_trainer(epochs=2, hooks=[Counter()], checkpoint_dir=tmp_path).fit(digits())
    counter = Counter()
    make_trainer(epochs=3, hooks=[counter], checkpoint_dir=tmp_path).fit(digits(), resume=True)
    assert counter.steps == 3 * STEPS_PER_EPOCH


def test_hooks_without_some_methods_are_fine_and_errors_propagate():
    class OnlyFitEnd:
        def on_fit_end(self, trainer, history):
            raise KeyError("from the hook")

    with pytest.raises(KeyError, match="from the hook"):
        make_trainer(epochs=1, hooks=[OnlyFitEnd()]).fit(digits())


def test_epoch_logger_prints_one_line_per_epoch():
    stream = io.StringIO()
    make_trainer(epochs=2, hooks=[EpochLogger(stream)]).fit(digits())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2  train loss ") and " val loss " in lines[0]
    assert lines[0].endswith("*")  # the first epoch is the best so far

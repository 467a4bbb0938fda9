"""Each detector fires on a record that shows its leak, stays quiet otherwise, and says where."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradproof.diagnose import RunRecord, Thresholds, check_overfit, detect
from gradproof.errors import InputError
from gradproof.nn import MLP, Linear
from gradproof.optim import SGD


def _record(steps=10, **fields) -> RunRecord:
    rec = RunRecord(steps=list(range(steps)), loss_steps=list(range(steps)),
                    loss=[2.3] * steps, num_classes=10, loss_name="softmax",
                    global_grad_norm=[1.0] * steps)
    for name, value in fields.items():
        setattr(rec, name, value)
    return rec


def _kinds(rec, **kwargs):
    return [f.kind for f in detect(rec, **kwargs)]


def test_a_healthy_record_gives_no_warning():
    rec = _record(param_shapes={"0.weight": (4, 4), "2.weight": (4, 2)},
                  grad_norm={"0.weight": [0.5] * 10, "2.weight": [1.0] * 10},
                  update_ratio={"0.weight": [1e-3] * 10, "2.weight": [2e-3] * 10})
    assert detect(rec) == []


def test_nan_loss_is_exploding_and_names_the_step_where_the_norm_took_off():
    norms = [1.0] * 5 + [80.0, 1e4, math.nan, math.nan, math.nan]
    loss = [2.3] * 7 + [math.nan] * 3
    [finding] = detect(_record(global_grad_norm=norms, loss=loss), only=["exploding"])
    assert finding.kind == "exploding" and finding.step == 5
    assert "NaN" in finding.message and "clip" in finding.fix


def test_a_spike_over_the_factor_times_the_median_is_exploding_and_below_is_not():
    norms = [1.0] * 9 + [29.0]
    assert _kinds(_record(global_grad_norm=norms)) == []
    norms[-1] = 31.0
    [finding] = detect(_record(global_grad_norm=norms))
    assert finding.kind == "exploding" and finding.step == 9


def test_vanishing_across_layers_compares_first_and_last_weight_gradients():
    shapes = {"0.weight": (4, 4), "0.bias": (4,), "2.weight": (4, 2)}
    grads = {"0.weight": [1e-4] * 10, "0.bias": [1e-9] * 10, "2.weight": [1.0] * 10}
    [finding] = detect(_record(param_shapes=shapes, grad_norm=grads), only=["vanishing"])
    assert finding.layer == "0.weight" and finding.value == pytest.approx(1e-4)
    grads["0.weight"] = [2e-3] * 10
    assert detect(_record(param_shapes=shapes, grad_norm=grads), only=["vanishing"]) == []


def test_vanishing_through_time_reads_the_per_step_input_gradients():
    profile = np.logspace(-8, 0, 20)  # step 1 gets 1e-8 of the last step's gradient
    rec = _record(layers={"rnn": "rnn"}, time_grad={"rnn": [profile] * 3})
    [finding] = detect(rec)
    assert finding.kind == "vanishing" and finding.layer == "rnn"
    assert finding.value == pytest.approx(1e-8)
    assert "LSTM" in finding.fix


def test_dead_relu_and_saturation_fire_over_their_thresholds_only():
    acts = {"1": {"dead": [math.nan, 0.1, 0.45], "saturated": [math.nan] * 3},
            "3": {"dead": [math.nan] * 3, "saturated": [0.6, 0.7, 0.2]},
            "5": {"dead": [math.nan] * 3, "saturated": [0.3, 0.2, 0.9]}}
    rec = _record(steps=3, layers={"1": "relu", "3": "sigmoid", "5": "tanh"}, activations=acts)
    found = {(f.kind, f.layer, f.step) for f in detect(rec)}
    assert found == {("dead_relu", "1", 2), ("saturation", "3", 0)}


@pytest.mark.parametrize("ratio, word", [(0.2, "divide"), (1e-7, "multiply")])
def test_update_ratios_far_from_1e_3_suggest_the_learning_rate_change(ratio, word):
    rec = _record(param_shapes={"w": (3, 3)}, update_ratio={"w": [ratio] * 10})
    [finding] = detect(rec)
    assert finding.kind == "update_ratio" and word in finding.fix


@pytest.mark.parametrize("loss, fires", [(2.3, False), (4.5, False), (4.7, True), (1.1, True),
                                         (math.inf, True)])
def test_initial_loss_is_compared_with_log_c(loss, fires):
    rec = _record(loss=[loss] + [2.3] * 9)
    assert ("initial_loss" in _kinds(rec)) == fires


def test_thresholds_are_adjustable_and_unknown_detectors_are_refused():
    rec = _record(param_shapes={"w": (3, 3)}, update_ratio={"w": [2e-2] * 10})
    assert _kinds(rec) == []
    assert _kinds(rec, thresholds=Thresholds(ratio_high=1e-2)) == ["update_ratio"]
    with pytest.raises(InputError, match="only"):
        detect(rec, only=["nope"])


def _tiny_batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((8, 6)), np.arange(8) % 4


def test_a_working_net_overfits_a_tiny_batch_and_is_left_unchanged():
    model = MLP(6, [32], 4, rng=0)
    before = model.state_dict()
    result = check_overfit(model, *_tiny_batch(), steps=150)
    assert result.ok and result.accuracy == 1.0 and result.finding is None
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


class _SignFlippedLinear(Linear):
    """A real backprop bug: the weight gradient comes out with the wrong sign."""

    def backward(self, dout):
        before = self.weight.grad.copy()
        dx = super().backward(dout)
        self.weight.grad[...] = before - (self.weight.grad - before)
        return dx


def test_a_net_with_a_backward_bug_cannot_overfit_and_says_so():
    model = MLP(6, [32], 4, rng=0)
    model.layers[-1] = _SignFlippedLinear(32, 4, rng=0)
    result = check_overfit(model, *_tiny_batch(), steps=150)
    assert not result.ok and result.finding.kind == "wrong_gradient"
    assert "check_model" in result.finding.fix


def test_a_sign_flipped_first_layer_is_caught_even_though_the_loss_falls():
    # the last layer learns around the bug: the loss on the tiny batch still falls
    model = MLP(6, [32], 4, rng=0)
    model.layers[0] = _SignFlippedLinear(6, 32, rng=0)
    result = check_overfit(model, *_tiny_batch(), steps=150)
    assert result.losses[-1] < 0.5 * result.losses[0]
    assert not result.ok and result.finding.kind == "wrong_gradient"
    assert result.finding.layer == "layers.0.weight" or "0.weight" in result.finding.layer
    assert "sign flipped" in result.finding.message
    norm, slope = result.slopes[result.finding.layer]
    assert slope == pytest.approx(-norm, rel=1e-4)
    healthy = check_overfit(MLP(6, [32], 4, rng=0), *_tiny_batch(), steps=150)
    assert all(s == pytest.approx(n, rel=1e-4) for n, s in healthy.slopes.values())


def test_a_net_that_cannot_move_cannot_overfit():
    result = check_overfit(MLP(6, [32], 4, rng=0), *_tiny_batch(), steps=20,
                           make_optimizer=lambda params: SGD(params, lr=0.0))
    assert not result.ok and result.losses[0] == pytest.approx(result.losses[-1])

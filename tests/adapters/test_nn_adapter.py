"""check_model: passes correct models, names the wrong layer of a buggy one, leaves the model be."""

from __future__ import annotations

import numpy as np
import pytest

import gradproof
from gradproof.adapters.nn import LayerCheck, ModelReport, check_model
from gradproof.errors import InputError, InputTypeError
from gradproof.nn.activation import ReLU, Tanh
from gradproof.nn.containers import Residual, Sequential
from gradproof.nn.linear import Linear
from gradproof.nn.models import MLP
from gradproof.nn.norm import BatchNorm1d


def batch(n=6, d=5, c=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, c, size=n)


# --- planted bugs ---------------------------------------------------------------------
class TransposedWeightGrad(Linear):
    """Adds the weight gradient of a square layer transposed: a classic slip."""

    def backward(self, dout):
        kept = self.weight.grad.copy()
        dx = super().backward(dout)
        self.weight.grad[...] = kept + (self.weight.grad - kept).T
        return dx


class ForgetsTheBias(Linear):
    def backward(self, dout):
        kept = self.bias.grad.copy()
        dx = super().backward(dout)
        self.bias.grad[...] = kept
        return dx


class LeakyMask(ReLU):
    """Lets gradient through where x < 0 too (the mask taken from the wrong array)."""

    def backward(self, dout):
        return dout.copy()


class NoSkipGradient(Residual):
    """Forgets the identity branch: dx = f'(x) dout instead of dout + f'(x) dout."""

    def backward(self, dout):
        return self.f.backward(dout)


def three_layer_mlp(seed=0, dtype=np.float64):
    return MLP(5, [4, 4], 3, rng=seed, dtype=dtype)


def plant(mlp: MLP, index: int, layer) -> MLP:
    mlp.layers[index] = layer
    return mlp


# --- correct models pass ----------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [lambda: three_layer_mlp(),
     lambda: MLP(5, [4, 4], 3, norm="batch", dropout=0.3, rng=1),
     lambda: MLP(5, [4], 3, norm="layer", activation="gelu", rng=2),
     lambda: Sequential(Linear(5, 4, rng=0), Residual(Sequential(Linear(4, 4, rng=1), Tanh())),
                        Linear(4, 3, rng=2))],
    ids=["mlp", "mlp-batchnorm-dropout", "mlp-layernorm-gelu", "residual"],
)
def test_correct_models_pass_every_check(make):
    x, y = batch()
    report = check_model(make(), x, y)
    assert report.ok, str(report)
    assert report.culprits == [] and report.failed == []
    assert report.raise_if_failed() is report
    assert all(c.report is not None and c.report.ok for c in report)


def test_there_is_one_check_per_module_then_the_loss():
    mlp = three_layer_mlp()
    report = check_model(mlp, *batch())
    assert [c.name for c in report] == ["0", "1", "2", "3", "4", "(model)", "loss"]
    assert report["0"].params == ["weight", "bias"]
    assert report["(model)"].children == ["0", "1", "2", "3", "4"]
    layer = report["2"].report
    assert [r.name for r in layer.inputs] == ["x", "weight", "bias"]
    assert all(r.checked and r.dtype == "float64" for r in layer.inputs)


def test_a_float32_model_is_checked_on_a_float64_copy():
    mlp = three_layer_mlp(dtype=np.float32)
    x, y = batch(dtype=np.float32)
    report = check_model(mlp, x, y)
    assert report.ok, str(report)
    assert {r.dtype for c in report for r in c.report.inputs if r.checked} == {"float64"}
    assert "float32 model was checked on a float64 copy" in str(report)


def test_the_model_is_left_untouched():
    mlp = MLP(5, [4], 3, norm="batch", dropout=0.5, rng=0)
    x, y = batch()
    before = mlp.state_dict()
    rng_state = mlp[3].rng.bit_generator.state
    check_model(mlp, x, y)
    for name, value in mlp.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    assert not any(p.grad.any() for p in mlp.parameters())
    assert mlp[3].rng.bit_generator.state == rng_state
    assert mlp[0].input_grad is False


# --- buggy models: the culprit is named ----------------------------------------------------
def test_a_planted_bug_in_one_layer_of_a_three_layer_mlp_is_named():
    mlp = plant(three_layer_mlp(), 2, TransposedWeightGrad(4, 4, rng=5))
    report = check_model(mlp, *batch())
    assert not report.ok
    assert report.culprits == ["2"]
    assert report.failed == ["2", "(model)"]
    assert report["2"].failed_inputs() == ["weight"]
    assert report["0"].ok and report["4"].ok and report["loss"].ok
    text = str(report)
    assert "wrong: '2' (TransposedWeightGrad)" in text
    assert "fails (through 2)" in text
    with pytest.raises(gradproof.GradientError, match="wrong: '2'") as info:
        report.raise_if_failed()
    assert info.value.report is report


@pytest.mark.parametrize("index", [0, 2, 4])
def test_a_forgotten_bias_gradient_is_found_in_whichever_layer(index):
    mlp = three_layer_mlp()
    old = mlp.layers[index]
    plant(mlp, index, ForgetsTheBias(old.in_features, old.out_features, rng=3))
    report = check_model(mlp, *batch())
    assert report.culprits == [str(index)]
    assert report[str(index)].failed_inputs() == ["bias"]


def test_a_wrong_activation_backward_is_named():
    mlp = plant(three_layer_mlp(), 3, LeakyMask())
    report = check_model(mlp, *batch())
    assert report.culprits == ["3"]
    assert report["3"].failed_inputs() == ["x"]


def test_a_container_that_combines_correct_children_wrongly_is_the_culprit():
    model = Sequential(Linear(5, 4, rng=0), NoSkipGradient(Sequential(Linear(4, 4, rng=1), Tanh())),
                       Linear(4, 3, rng=2))
    report = check_model(model, *batch())
    assert report.culprits == ["1"]
    assert report.failed == ["1", "(model)"]
    assert all(report[name].ok for name in ("1.f.0", "1.f.1", "1.f"))
    assert "the way this container combines them is wrong" in str(report)


def test_a_buggy_loss_is_named():
    def doubled_softmax(scores, y):
        loss, dscores = gradproof.nn.functional.softmax_loss(scores, y)
        return loss, 2 * dscores

    report = check_model(three_layer_mlp(), *batch(), loss=doubled_softmax)
    assert report.culprits == ["loss"]
    assert report["loss"].failed_inputs() == ["scores"]


def test_loss_none_checks_the_model_alone():
    report = check_model(three_layer_mlp(), batch()[0], loss=None)
    assert report.ok and [c.name for c in report][-1] == "(model)"


def test_options_reach_every_check():
    report = check_model(three_layer_mlp(), *batch(n=3), mode="full", seed=4)
    assert all(c.report.mode == "full" and c.report.seed == 4 for c in report)


# --- the report object and bad input -------------------------------------------------------
def test_report_lookup_by_name():
    report = ModelReport([LayerCheck("0", "Linear", ["weight"], None)])
    assert report["0"].name == "0"
    with pytest.raises(KeyError, match="no check named 'x'"):
        report["x"]


def test_bad_arguments_are_named():
    x, y = batch()
    with pytest.raises(InputTypeError, match="model must be a gradproof.nn.Module"):
        check_model(lambda v: v, x, y)
    with pytest.raises(InputError, match="y is required"):
        check_model(three_layer_mlp(), x)
    with pytest.raises(InputError, match="check_model sets 'wrt' itself"):
        check_model(three_layer_mlp(), x, y, wrt=0)
    with pytest.raises(InputError, match="loss must be one of"):
        check_model(three_layer_mlp(), x, y, loss="hinge2")


def test_batchnorm_in_eval_mode_is_checked_with_running_statistics():
    mlp = MLP(5, [4], 3, norm="batch", rng=0)
    mlp.forward(batch(seed=1)[0])  # move the running statistics away from 0 and 1
    mlp.eval()
    report = check_model(mlp, *batch())
    assert report.ok, str(report)
    assert isinstance(mlp[1], BatchNorm1d) and not mlp[1].training


def _report(verdict: str) -> gradproof.Report:
    from gradproof.check.report import InputResult

    status = {"ok": "ok", "failed": "FAIL", "inconclusive": "inconclusive"}[verdict]
    result = InputResult(0, "x", (2,), "float64", verdict=verdict, status=status)
    return gradproof.Report(verdict=verdict, n_evals=0, inputs=[result])


def test_an_unproven_layer_makes_the_model_inconclusive_not_failed():
    checks = [LayerCheck("0", "Linear", [], _report("ok")),
              LayerCheck("1", "Tanh", [], _report("inconclusive"))]
    report = ModelReport(checks)
    assert report.verdict == "inconclusive" and not report.ok
    assert report.culprits == [] and report.unproven == ["1"]
    assert "INCONCLUSIVE" in str(report)
    with pytest.raises(gradproof.InconclusiveError):
        report.raise_if_failed()
    checks.append(LayerCheck("2", "Linear", [], _report("failed")))
    failed = ModelReport(checks)
    assert failed.verdict == "failed" and failed.culprits == ["2"]
    with pytest.raises(gradproof.GradientError) as caught:
        failed.raise_if_failed()
    assert not isinstance(caught.value, gradproof.InconclusiveError)

"""Diagnostics records what it claims: each statistic recomputed independently."""

from __future__ import annotations

import numpy as np
import pytest

from gradproof.diagnose import Diagnostics
from gradproof.diagnose.demos import LastStepClassifier
from gradproof.diagnose.stats import leaf_modules
from gradproof.errors import InputError, InputTypeError
from gradproof.nn import MLP, Linear, ReLU, Sequential, Sigmoid, Tanh
from gradproof.nn.functional import softmax_loss
from gradproof.optim import SGD


def _step(model, diag, opt, x, y, step):
    model.zero_grad()
    scores = model.forward(x)
    loss, dscores = softmax_loss(scores, y)
    model.backward(dscores)
    diag.before_update(step, loss, scores_shape=scores.shape)
    opt.step()
    diag.after_update()
    return loss


def _batch(seed=0, n=16, d=5, c=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, c, n)


def test_gradient_norms_and_update_ratios_match_a_recomputation():
    model = MLP(5, [7], 3, rng=0)
    x, y = _batch()
    diag = Diagnostics().attach(model)
    opt = SGD(model.parameters(), lr=0.1)
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    _step(model, diag, opt, x, y, 0)
    for name, p in model.named_parameters():
        assert diag.record.grad_norm[name][0] == pytest.approx(np.linalg.norm(p.grad), rel=1e-12)
        w = np.linalg.norm(before[name])
        if w > 0:
            expected = np.linalg.norm(p.data - before[name]) / w
            assert diag.record.update_ratio[name][0] == pytest.approx(expected, rel=1e-12)
        else:  # the zero bias: a ratio to zero is undefined
            assert np.isnan(diag.record.update_ratio[name][0])


def test_activation_mean_std_and_histogram_are_those_of_the_layer_output():
    model = MLP(5, [7], 3, activation="tanh", rng=1)
    x, y = _batch(1)
    w, b = model[0].weight.data.copy(), model[0].bias.data.copy()
    diag = Diagnostics(bins=10).attach(model)
    _step(model, diag, SGD(model.parameters(), lr=0.0), x, y, 0)
    hidden = np.tanh(x @ w + b)
    act = diag.record.activations["1"]
    assert diag.record.layers["1"] == "tanh"
    assert act["mean"][0] == pytest.approx(hidden.mean(), rel=1e-12)
    assert act["std"][0] == pytest.approx(hidden.std(), rel=1e-12)
    counts, edges = act["hist"][0]
    np.testing.assert_array_equal(counts, np.histogram(hidden, bins=10, range=(-1, 1))[0])
    assert counts.sum() == hidden.size


def _saturated_after_one_step(activation, x) -> float:
    layer = Sequential(activation)
    diag = Diagnostics().attach(layer)
    layer.forward(x)
    diag.before_update(0, 1.0)
    diag.after_update()
    return diag.record.activations["0"]["saturated"][0]


def test_saturated_fraction_counts_units_with_a_tiny_derivative():
    x = np.array([[-10.0, -1.0, 0.0, 1.0, 4.5, 10.0]])  # sigmoid'(4.5) = 0.0105 < 0.0125
    assert _saturated_after_one_step(Sigmoid(), x) == pytest.approx(3 / 6)


def test_tanh_saturation_threshold_is_five_percent_of_the_maximum_derivative():
    x = np.array([[2.2, 2.1, -2.2, 0.3]])  # 1 - tanh(2.2)^2 = 0.048; tanh'(2.1) = 0.058
    assert _saturated_after_one_step(Tanh(), x) == pytest.approx(2 / 4)


def test_dead_relus_are_units_never_active_over_the_window():
    lin = Linear(4, 6, rng=0)
    lin.bias.data[:] = [-100, -100, 0, 0, 0, -100]  # units 0, 1, 5 can never fire
    lin.weight.data[...] = np.abs(lin.weight.data)  # positive inputs: the others always fire
    model = Sequential(lin, ReLU())
    diag = Diagnostics(window=3).attach(model)
    rng = np.random.default_rng(0)
    for step in range(4):
        model.forward(np.abs(rng.standard_normal((8, 4))) + 0.1)
        diag.before_update(step, 1.0)
        diag.after_update()
    dead = diag.record.activations["1"]["dead"]
    assert np.isnan(dead[0]) and np.isnan(dead[1])  # the window is not full yet
    assert dead[2] == pytest.approx(3 / 6) and dead[3] == pytest.approx(3 / 6)


def test_every_k_records_statistics_every_k_steps_and_the_loss_every_step():
    model = MLP(5, [7], 3, rng=0)
    x, y = _batch()
    diag = Diagnostics(every=3).attach(model)
    opt = SGD(model.parameters(), lr=0.01)
    losses = [_step(model, diag, opt, x, y, s) for s in range(7)]
    assert diag.record.steps == [0, 3, 6]
    assert diag.record.loss == pytest.approx(losses)
    assert len(diag.record.grad_norm["0.weight"]) == 3
    assert len(diag.record.out_grad["2"]) == 3


def test_recurrent_layers_record_the_input_gradient_norm_per_time_step():
    model = LastStepClassifier("rnn", hidden_size=6, rng=0)
    x = np.random.default_rng(0).standard_normal((4, 9, 1))
    diag = Diagnostics().attach(model)
    scores = model.forward(x)
    dx = model.backward(np.ones_like(scores))
    diag.before_update(0, 1.0)
    diag.after_update()
    np.testing.assert_allclose(diag.record.time_grad["rnn"][0],
                               np.sqrt((dx ** 2).sum(axis=(0, 2))), rtol=1e-12)


def test_detach_gives_back_the_modules_own_methods_and_the_trainer_detaches():
    from gradproof.data import load_spiral
    from gradproof.train.trainer import Trainer

    model = MLP(2, [8], 3, rng=0)
    diag = Diagnostics()
    Trainer(model, SGD(model.parameters(), lr=0.1), epochs=1, hooks=[diag],
            progress=False).fit(load_spiral())
    assert all("forward" not in vars(m) and "backward" not in vars(m)
               for _, m in leaf_modules(model))
    assert len(diag.record.loss) == len(diag.record.steps) > 0
    assert diag.record.num_classes == 3 and diag.record.loss_name == "softmax"


def test_bad_arguments_name_the_argument():
    with pytest.raises(InputError, match="every"):
        Diagnostics(every=0)
    with pytest.raises(InputTypeError, match="window"):
        Diagnostics(window=2.5)
    with pytest.raises(InputTypeError, match="model"):
        Diagnostics().attach("not a model")
    with pytest.raises(InputError, match="attach"):
        Diagnostics().before_update(0, 1.0)


def _assert_same_tree(a, b, where="record"):
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _assert_same_tree(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tree(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), where
    else:
        assert a == b and type(a) is type(b), f"{where}: {a!r} != {b!r}"


def test_a_record_saved_and_loaded_is_the_same_record(tmp_path):
    from dataclasses import fields

    from gradproof.diagnose import RunRecord, detect
    from gradproof.train.checkpoint import CheckpointError

    model = Sequential(Linear(5, 8, rng=0), Tanh(), Linear(8, 8, rng=1), ReLU(),
                       Linear(8, 3, rng=2))
    rnn = LastStepClassifier("rnn", hidden_size=4, rng=0)
    diag = Diagnostics(window=2).attach(model)
    opt = SGD(model.parameters(), lr=0.5)
    for step in range(4):
        _step(model, diag, opt, *_batch(step), step)
    diag.detach()
    rdiag = Diagnostics().attach(rnn)
    rnn.backward(np.ones_like(rnn.forward(np.ones((2, 5, 1)))))
    rdiag.before_update(0, 1.0)
    rdiag.after_update()
    for record in (diag.record, rdiag.record):
        path = record.save(tmp_path / "run.json")
        loaded = RunRecord.load(path)
        for f in fields(RunRecord):
            _assert_same_tree(getattr(record, f.name), getattr(loaded, f.name), f.name)
        assert [str(x) for x in detect(loaded)] == [str(x) for x in detect(record)]
    npz = tmp_path / "run.npz"
    npz.write_bytes(npz.read_bytes()[:-10])  # a truncated file is refused, not read
    with pytest.raises(CheckpointError, match="do not match the hash"):
        RunRecord.load(tmp_path / "run.json")

"""gradproof.nn.numeric_layer: a layer whose backward is numerical.

Checked three ways (check_vjp, torch autograd, a hand-computed case), plus what
it costs (calls of f counted), its fallbacks and warnings, and that a net with
a numeric activation trains like the analytic one.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_oracle import assert_close, random_like, torch_vjp

import gradproof
from gradproof.check.arrays import complex_step, default_step
from gradproof.errors import InputError, InputTypeError
from gradproof.nn import MLP
from gradproof.nn.numeric_layer import NotElementwiseWarning, NumericCostWarning, numeric

# name -> (numpy f, torch f): smooth elementwise functions that accept complex input
ELEMENTWISE = {
    "tanh": (np.tanh, torch.tanh),
    "softplus": (lambda x: np.log1p(np.exp(x)), torch.nn.functional.softplus),
    "sin_sq": (lambda x: np.sin(x) * x ** 2, lambda x: torch.sin(x) * x ** 2),
}
VARIANTS = [("central", False), ("central", True), ("complex", False)]


class Counted:
    """f, counting its calls (independently of the layer's own counter)."""

    def __init__(self, f):
        self.f, self.calls = f, 0

    def __call__(self, x):
        self.calls += 1
        return self.f(x)


@settings(max_examples=12, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
       name=st.sampled_from(sorted(ELEMENTWISE)), variant=st.sampled_from(VARIANTS),
       seed=st.integers(0, 2 ** 16))
def test_check_vjp_passes_on_elementwise_layers(shape, name, variant, seed):
    method, richardson = variant
    layer = numeric(ELEMENTWISE[name][0], method=method, richardson=richardson)
    x = np.random.default_rng(seed).standard_normal(shape) * 2
    gradproof.check_vjp(layer.forward, layer.backward, x).raise_if_failed()
    assert layer.elementwise is True


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@pytest.mark.parametrize("method, richardson, rtol", [("central", False, 1e-8),
                                                     ("central", True, 1e-10),
                                                     ("complex", False, 1e-13)])
def test_gradients_match_torch(name, method, richardson, rtol):
    f, torch_f = ELEMENTWISE[name]
    x = np.random.default_rng(1).standard_normal((7, 9)) * 2
    layer = numeric(f, method=method, richardson=richardson)
    out, cache = layer.forward(x)
    dout = random_like(out, seed=2)
    t_out, (t_dx,) = torch_vjp(torch_f, [x], dout)
    assert_close(out, t_out, rtol=1e-14, name="out")
    assert_close(layer.backward(dout, cache), t_dx, rtol=rtol, name=f"{name} {method} dx")


def test_a_hand_computed_case_x_cubed():
    x = np.array([-2.0, 0.5, 3.0])
    layer = numeric(lambda v: v ** 3, method="complex")
    out, cache = layer.forward(x)
    np.testing.assert_allclose(out, [-8.0, 0.125, 27.0])
    dx = layer.backward(np.array([1.0, 2.0, -1.0]), cache)
    np.testing.assert_allclose(dx, [12.0, 1.5, -27.0], rtol=1e-15)


@pytest.mark.parametrize("method, richardson, order", [("central", False, 2),
                                                       ("central", True, 4),
                                                       ("complex", False, None)])
def test_the_default_steps_are_the_checkers_for_float64(method, richardson, order):
    seen = []
    layer = numeric(lambda v: seen.append(v.copy()) or np.tanh(v), method=method,
                    richardson=richardson, elementwise=True)
    x = np.array([0.5, -3.0])
    _, cache = layer.forward(x)
    seen.clear()
    layer.backward(np.ones(2), cache)
    if method == "complex":  # every coordinate at once: Im x = t
        assert complex_step(np.float64) == 1e-20
        assert np.all(seen[0].imag == 1e-20)
    else:
        h = default_step(np.float64, order=order) * np.maximum(np.abs(x), 1.0)
        assert any(np.array_equal(v, x + h) for v in seen)  # x + h, h taken as representable


def test_the_warnings_are_exported_from_gradproof_nn():
    assert gradproof.nn.NotElementwiseWarning is NotElementwiseWarning
    assert gradproof.nn.NumericCostWarning is NumericCostWarning


@pytest.mark.parametrize("size", [10, 1000, 100_000])
@pytest.mark.parametrize("method, richardson, expected", [("central", False, 2),
                                                          ("central", True, 4),
                                                          ("complex", False, 1)])
def test_an_elementwise_backward_costs_at_most_4_calls_whatever_the_size(size, method,
                                                                          richardson, expected):
    f = Counted(np.tanh)
    layer = numeric(f, method=method, richardson=richardson)
    x = np.random.default_rng(0).standard_normal(size)
    probe = 1 + int(np.ceil(np.log2(size)))  # once per shape: 5, 11, 18 calls
    out, cache = layer.forward(x)
    assert f.calls == 1 + probe
    layer.backward(np.ones(size), cache)  # the first complex-step backward validates (+2)
    calls = f.calls
    layer.backward(np.ones(size), cache)
    assert f.calls - calls == expected <= 4
    assert calls - 1 - probe <= 4
    layer.forward(x)  # the same shape again: no probe
    assert f.calls - calls - expected == 1


def test_elementwise_true_is_verified_once_per_shape():
    f = Counted(np.tanh)
    layer = numeric(f, elementwise=True)
    layer.forward(np.ones(5))
    assert f.calls == 1 + 4  # f(x), then the probe: 1 + ceil(log2 5) calls
    layer.forward(np.ones(5))
    assert f.calls == 6
    assert layer.structure == {((5,), np.dtype(np.float64)): True}


def test_elementwise_false_skips_the_probe():
    f = Counted(np.tanh)
    layer = numeric(f, elementwise=False)
    layer.forward(np.ones(5))
    assert f.calls == 1 and layer.structure == {}


def test_complex_step_falls_back_to_central_with_a_note_when_f_is_not_analytic():
    layer = numeric(np.abs, method="complex")
    x = np.random.default_rng(3).standard_normal((4, 5)) + 0.5
    x[np.abs(x) < 0.1] = 0.3
    out, cache = layer.forward(x)
    with pytest.warns(UserWarning, match="complex step unavailable"):
        dx = layer.backward(np.ones_like(x), cache)
    assert layer.method == "central" and "central differences" in layer.notes[-1]
    np.testing.assert_allclose(dx, np.sign(x), rtol=1e-9)
    gradproof.check_vjp(layer.forward, layer.backward, x).raise_if_failed()


def test_complex_step_falls_back_when_f_rejects_complex_input():
    def real_only(x):
        if np.iscomplexobj(x):
            raise TypeError("real input only")
        return np.tanh(x)

    layer = numeric(real_only, method="complex", elementwise=True)
    x = np.linspace(-2, 2, 9)
    out, cache = layer.forward(x)
    with pytest.warns(UserWarning, match="TypeError"):
        dx = layer.backward(np.ones_like(x), cache)
    np.testing.assert_allclose(dx, 1 - np.tanh(x) ** 2, rtol=1e-9)


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True).real)
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("method", ["central", "complex"])
def test_a_general_function_gets_a_full_numerical_vjp_and_a_cost_warning(method):
    f = Counted(_softmax)
    layer = numeric(f, method=method)
    x = np.random.default_rng(4).standard_normal((3, 5))
    with pytest.warns(UserWarning, match="not elementwise"):
        out, cache = layer.forward(x)
    assert layer.elementwise is False
    dout = random_like(out, seed=5)
    with pytest.warns(NumericCostWarning, match=r"= (15|30) calls of f"):
        layer.backward(dout, cache)
    calls = f.calls
    dx = layer.backward(dout, cache)
    assert f.calls - calls == (1 if method == "complex" else 2) * x.size
    _, (t_dx,) = torch_vjp(lambda t: torch.softmax(t, dim=-1), [x], dout)
    assert_close(dx, t_dx, rtol=1e-13 if method == "complex" else 1e-8, name="softmax dx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gradproof.check_vjp(layer.forward, layer.backward, x).raise_if_failed()


def test_a_shape_changing_function_is_not_elementwise():
    layer = numeric(lambda x: (x ** 2).sum(axis=-1))
    with pytest.warns(UserWarning):
        out, cache = layer.forward(np.ones((2, 3)))
        dx = layer.backward(np.array([1.0, -1.0]), cache)
    np.testing.assert_allclose(dx, [[2.0] * 3, [-2.0] * 3], rtol=1e-8)


def test_float32_inputs_get_float32_gradients_of_float64_quality():
    layer = numeric(np.tanh)
    x = np.random.default_rng(6).standard_normal(50).astype(np.float32)
    out, cache = layer.forward(x)
    dx = layer.backward(np.ones(50, np.float32), cache)
    assert dx.dtype == np.float32
    np.testing.assert_allclose(dx, 1 - np.tanh(x.astype(np.float64)) ** 2, rtol=1e-6)


def test_bad_arguments_name_the_argument():
    with pytest.raises(InputTypeError, match="f must"):
        numeric(3)
    with pytest.raises(InputError, match="method"):
        numeric(np.tanh, method="forward")
    with pytest.raises(InputError, match="step"):
        numeric(np.tanh, step=2.0)
    layer = numeric(np.tanh)
    with pytest.raises(InputTypeError, match="x must be a float array"):
        layer.forward(np.arange(3))
    out, cache = layer.forward(np.ones(3))
    with pytest.raises(InputError, match="dout must have shape"):
        layer.backward(np.ones(4), cache)


def test_the_module_plugs_into_a_model_and_passes_check_model():
    layer = numeric(np.tanh, method="complex")
    model = MLP(6, [8], 3, activation=layer.module_class, rng=0)
    x = np.random.default_rng(7).standard_normal((5, 6))
    y = np.arange(5) % 3
    gradproof.check_model(model, x, y).raise_if_failed()


def test_a_net_with_a_numeric_activation_trains_like_the_analytic_one():
    """Same seed, same data: the numerical and analytic tanh nets agree within 1 point."""
    from gradproof.data import load_digits
    from gradproof.optim import Adam
    from gradproof.train.trainer import Trainer

    data = load_digits()
    accuracies = {}
    for name, act in (("analytic", "tanh"), ("numeric", numeric(np.tanh).module_class)):
        model = MLP(64, [64], 10, activation=act, init="xavier", rng=0)
        trainer = Trainer(model, Adam(model.parameters(), lr=3e-3), batch_size=64, epochs=4,
                          progress=False)
        trainer.fit(data)
        accuracies[name] = trainer.evaluate(data.x_test, data.y_test)[1]
    assert accuracies["analytic"] > 0.9
    assert abs(accuracies["numeric"] - accuracies["analytic"]) <= 0.01, accuracies

"""zero_grad marks gradients zero without writing them; every layer must still end exact.

A backward that finds the mark writes its gradient over the stale array instead of
adding (``Parameter.grad_to_overwrite`` / ``accumulate``). These tests dirty every
gradient with one step, zero them, run another step, and compare with a module that
never had a gradient; a layer that wrote only part of an array, or added to stale
contents, fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradproof.nn import (
    GRU,
    LSTM,
    MLP,
    RNN,
    BatchNorm1d,
    Conv1d,
    Conv2d,
    Embedding,
    LayerNorm,
    Linear,
    MultiHeadAttention,
    Parameter,
    SmallCNN,
    TransformerBlock,
)
from gradproof.optim import SGD


def normal(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def tokens(shape, seed):
    return np.random.default_rng(seed).integers(0, 7, size=shape)


# name -> (factory, input maker)
CASES = {
    "linear": (lambda: Linear(5, 3, rng=0), lambda s: normal((4, 5), s)),
    "linear_3d": (lambda: Linear(5, 3, rng=0), lambda s: normal((2, 4, 5), s)),
    "linear_first_layer": (lambda: Linear(5, 3, rng=0, input_grad=False),
                           lambda s: normal((4, 5), s)),
    "mlp": (lambda: MLP(6, [5, 4], 3, rng=0), lambda s: normal((4, 6), s)),
    "batchnorm": (lambda: BatchNorm1d(5), lambda s: normal((6, 5), s)),
    "layernorm": (lambda: LayerNorm(5), lambda s: normal((6, 5), s)),
    "conv2d": (lambda: Conv2d(2, 3, 3, rng=0), lambda s: normal((2, 2, 5, 5), s)),
    "conv1d": (lambda: Conv1d(2, 3, 3, rng=0), lambda s: normal((2, 2, 7), s)),
    "small_cnn": (lambda: SmallCNN(rng=0), lambda s: normal((2, 1, 28, 28), s)),
    "embedding": (lambda: Embedding(7, 4, rng=0), lambda s: tokens((3, 5), s)),
    "rnn": (lambda: RNN(3, 4, rng=0), lambda s: normal((2, 5, 3), s)),
    "lstm": (lambda: LSTM(3, 4, rng=0), lambda s: normal((2, 5, 3), s)),
    "gru": (lambda: GRU(3, 4, rng=0), lambda s: normal((2, 5, 3), s)),
    "attention": (lambda: MultiHeadAttention(4, 2, rng=0), lambda s: normal((2, 3, 4), s)),
    "transformer": (lambda: TransformerBlock(4, 2, rng=0), lambda s: normal((2, 3, 4), s)),
}


def grads_after(module, x, dout, repeat=1):
    for _ in range(repeat):
        module.forward(x)
        module.backward(dout)
    return {name: p.grad.copy() for name, p in module.named_parameters()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_after_a_lazy_zero_equal_a_fresh_module(name):
    make, inputs = CASES[name]
    x, x_dirty = inputs(1), inputs(2)
    fresh = make()
    out_shape = fresh.forward(x).shape
    dout = normal(out_shape, 3)
    expected = grads_after(fresh, x, dout)
    assert any(np.abs(g).sum() > 0 for g in expected.values())

    module = make()
    grads_after(module, x_dirty, normal(out_shape, 4))  # stale, non-zero gradients
    module.zero_grad()
    got = grads_after(module, x, dout)
    for key, g in expected.items():
        np.testing.assert_allclose(got[key], g, rtol=1e-12, atol=1e-14, err_msg=key)

    # a second backward without zero_grad adds to the first
    module.zero_grad()
    twice = grads_after(module, x, dout, repeat=2)
    for key, g in expected.items():
        np.testing.assert_allclose(twice[key], 2 * g, rtol=1e-12, atol=1e-14, err_msg=key)


def test_a_zeroed_gradient_reads_as_zeros_before_any_backward():
    layer = Linear(3, 2, rng=0)
    layer.forward(normal((4, 3), 0))
    layer.backward(normal((4, 2), 1))
    assert layer.weight.grad.any()
    layer.zero_grad()
    assert not layer.weight.grad.any() and not layer.bias.grad.any()
    # reading materialised the zeros: a backward now adds to them
    layer.backward(normal((4, 2), 1))
    once = layer.weight.grad.copy()
    layer.zero_grad()
    layer.backward(normal((4, 2), 1))
    np.testing.assert_array_equal(layer.weight.grad, once)


def test_a_parameter_no_backward_touched_steps_with_a_zero_gradient():
    # weight decay turns a zero gradient into an update: the stale gradient must not leak in
    used, unused = Linear(3, 2, rng=0), Linear(3, 2, rng=1)
    opt = SGD(used.parameters() + unused.parameters(), lr=0.1, weight_decay=0.5)
    for layer in (used, unused):
        layer.forward(normal((4, 3), 0))
        layer.backward(normal((4, 2), 1))
    opt.zero_grad()
    used.forward(normal((4, 3), 0))
    used.backward(normal((4, 2), 1))
    before = unused.weight.data.copy()
    opt.step()
    np.testing.assert_allclose(unused.weight.data, before * (1 - 0.1 * 0.5), rtol=1e-15)


def test_accumulate_copies_on_a_fresh_gradient_and_adds_otherwise():
    p = Parameter(np.zeros((2, 3), np.float32))
    p.grad[...] = 5
    p.zero_grad()
    g = np.arange(6.0).reshape(2, 3)  # float64 into float32, as grad += g would cast
    p.accumulate(g)
    np.testing.assert_array_equal(p.grad, g.astype(np.float32))
    assert p.grad.dtype == np.float32
    p.accumulate(g)
    np.testing.assert_array_equal(p.grad, 2 * g)


def test_a_grad_set_by_hand_is_not_overwritten():
    p = Parameter(np.zeros(3))
    p.zero_grad()
    p.grad = np.ones(3)  # the user's array replaces the zeroed one
    p.accumulate(np.ones(3))
    np.testing.assert_array_equal(p.grad, [2.0, 2.0, 2.0])


def test_the_non_finite_check_is_not_fooled_by_large_finite_gradients():
    # the fast check's sum of squares overflows float32 here; the exact check decides
    p = Parameter(np.zeros(4, np.float32))
    opt = SGD([p], lr=1e-40)
    p.grad[...] = np.float32(3e38)
    opt.step()  # finite: no error
    for bad in (np.nan, np.inf, -np.inf):
        p.grad[...] = 1.0
        p.grad[2] = bad
        with pytest.raises(Exception, match="NaN or an infinity"):
            opt.step()

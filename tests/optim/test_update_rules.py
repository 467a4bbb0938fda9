"""The update rules on hand-computed cases; in-place updates, zero_grad, missing grads."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import torch

from gradproof.nn import Parameter
from gradproof.optim import SGD, AdaGrad, Adagrad, Adam, AdamW, RMSProp, RMSprop

from .problem import SETTINGS, TORCH_OPTIMIZERS, setting_id


def param(value, grad):
    p = Parameter(np.array(value, dtype=np.float64))
    p.grad[...] = grad
    return p


def test_sgd_momentum_two_steps_by_hand():
    p = param([1.0], 0.5)
    opt = SGD([p], lr=0.1, momentum=0.9)
    opt.step()  # buffer = g = 0.5; w = 1 - 0.1 * 0.5
    assert p.data[0] == pytest.approx(0.95, abs=1e-15)
    opt.step()  # buffer = 0.9 * 0.5 + 0.5 = 0.95; w = 0.95 - 0.095
    assert p.data[0] == pytest.approx(0.855, abs=1e-15)


def test_sgd_nesterov_and_dampening_by_hand():
    p = param([0.0], 1.0)
    opt = SGD([p], lr=1.0, momentum=0.5, nesterov=True)
    opt.step()  # b = 1; step = g + 0.5 b = 1.5
    opt.step()  # b = 0.5 + 1 = 1.5; step = 1 + 0.75 = 1.75
    assert p.data[0] == pytest.approx(-3.25, abs=1e-15)
    q = param([0.0], 1.0)
    opt = SGD([q], lr=1.0, momentum=0.5, dampening=0.5)
    opt.step()  # b = 1 (first step: no dampening)
    opt.step()  # b = 0.5 + 0.5 * 1 = 1
    assert q.data[0] == pytest.approx(-2.0, abs=1e-15)


@pytest.mark.parametrize("cls", [Adam, AdamW, AdaGrad])
def test_first_step_moves_each_coordinate_by_lr_against_the_gradient_sign(cls):
    # Adam: m_hat = g, v_hat = g^2; AdaGrad: s = g^2. Both give lr * g / (|g| + eps).
    g = np.array([3.0, -0.02, 1e-3])
    p = param([1.0, 1.0, 1.0], g)
    kwargs = {"weight_decay": 0.0} if cls is AdamW else {}
    cls([p], lr=0.1, eps=1e-12, **kwargs).step()
    np.testing.assert_allclose(p.data, 1.0 - 0.1 * np.sign(g), rtol=0, atol=1e-9)


def test_rmsprop_first_step_by_hand():
    p = param([2.0], 4.0)
    RMSProp([p], lr=0.01, alpha=0.75, eps=0.0).step()  # v = 0.25 * 16 = 4; w = 2 - 0.01 * 4 / 2
    assert p.data[0] == pytest.approx(1.98, abs=1e-15)


def test_centered_rmsprop_first_step_by_hand():
    p = param([0.0], 2.0)
    RMSProp([p], lr=1.0, alpha=0.5, eps=0.0, centered=True).step()
    # v = 0.5 * 4 = 2, a = 0.5 * 2 = 1, d = sqrt(2 - 1) = 1
    assert p.data[0] == pytest.approx(-2.0, abs=1e-15)


def test_adamw_shrinks_weights_and_adam_adds_decay_to_the_gradient():
    p = param([2.0, -4.0], 0.0)
    AdamW([p], lr=0.1, weight_decay=0.5).step()  # zero gradient: only the decay acts
    np.testing.assert_array_equal(p.data, [2.0 * 0.95, -4.0 * 0.95])
    q = param([2.0, -4.0], 0.0)
    Adam([q], lr=0.1, weight_decay=0.5, eps=0.0).step()  # g = 0.5 * w: a sign step
    np.testing.assert_allclose(q.data, [1.9, -3.9], rtol=0, atol=1e-15)


def test_adagrad_lr_decay_by_hand():
    p = param([0.0], 1.0)
    opt = AdaGrad([p], lr=1.0, lr_decay=1.0, eps=0.0)
    opt.step()  # s = 1, step 1 / 1
    opt.step()  # s = 2, lr 1 / 2, step 0.5 / sqrt(2)
    assert p.data[0] == pytest.approx(-1.0 - 0.5 / math.sqrt(2), abs=1e-15)


def test_amsgrad_uses_the_largest_second_moment():
    p = param([0.0], 10.0)
    opt = Adam([p], lr=0.1, betas=(0.0, 0.5), amsgrad=True)
    opt.step()
    p.grad[...] = 0.1  # v shrinks but v_max keeps 0.5 * 100
    opt.step()
    assert opt.state[0]["max_exp_avg_sq"][0] == pytest.approx(50.0)
    assert opt.state[0]["exp_avg_sq"][0] == pytest.approx(25.005)


@pytest.mark.parametrize("setting", SETTINGS, ids=setting_id)
def test_parameters_without_grad_are_skipped_like_torch(setting):
    cls, kwargs = setting
    p, q = param([1.0, 2.0], [0.5, -0.5]), param([3.0], 1.0)
    q.grad = None
    opt = cls([p, q], **kwargs)
    opt.step()
    tp = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    tq = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    tp.grad = torch.tensor([0.5, -0.5], dtype=torch.float64)
    TORCH_OPTIMIZERS[cls]([tp, tq], **kwargs).step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-15)
    assert q.data[0] == 3.0 and opt.state[1] == {"step": 0}


def test_zero_grad_zeroes_in_place():
    p = param([1.0, 2.0], [3.0, 4.0])
    grad = p.grad
    Adam([p]).zero_grad()
    assert p.grad is grad and not np.any(grad)


def test_a_generator_of_parameters_is_accepted():
    ps = [param([1.0], 1.0), param([2.0], 1.0)]
    opt = SGD((p for p in ps), lr=0.5)
    opt.step()
    assert [p.data[0] for p in ps] == [0.5, 1.5]


def test_torch_spellings_are_the_same_classes():
    assert Adagrad is AdaGrad and RMSprop is RMSProp


def test_repr_shows_the_options():
    assert repr(SGD([param([1.0], 0.0)], lr=0.5)) == (
        "SGD(lr=0.5, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False; "
        "1 parameters in 1 group(s))"
    )


@pytest.mark.parametrize("setting", SETTINGS, ids=setting_id)
def test_a_step_allocates_no_arrays_after_the_first(setting):
    cls, kwargs = setting
    params = [param(np.ones((200, 100)), 0.5), param(np.ones(100), 0.5)]
    opt = cls(params, **kwargs)
    opt.step()  # creates the state and scratch arrays
    tracemalloc.start()
    try:
        opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10_000, f"a step allocated {peak} bytes (the parameters hold 160 800)"

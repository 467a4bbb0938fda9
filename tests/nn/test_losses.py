"""Losses: checker, PyTorch oracle, hand-computed values, huge logits, label validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_oracle import assert_close, torch_vjp

import gradproof
from gradproof.errors import InputError, InputTypeError
from gradproof.nn.functional import (
    bce_with_logits_loss,
    huber_loss,
    mse_loss,
    softmax_loss,
    svm_loss,
)

seeds = st.integers(0, 2**32 - 1)
scales = st.sampled_from([0.01, 1.0, 30.0, 3000.0])


def classification(seed: int, N: int, C: int, scale: float, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, C)) * scale).astype(dtype), rng.integers(0, C, N)


def regression(seed: int, shape: tuple, scale: float, binary: bool = False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale
    y = rng.random(shape) if binary else rng.standard_normal(shape) * scale
    return x, y


def loss_as_layer(loss, *targets):
    """``(forward, backward)`` for the checker: the loss of x, its gradient scaled by dloss."""
    return (lambda x: loss(x, *targets)), (lambda dloss, dx: (dloss * dx).astype(dx.dtype))


# name, our loss, torch's (None: svm, see torch_loss)
LOSSES = [
    ("softmax", softmax_loss, TF.cross_entropy),
    ("svm", svm_loss, None),
    ("mse", mse_loss, TF.mse_loss),
    ("bce", bce_with_logits_loss, TF.binary_cross_entropy_with_logits),
    ("huber", huber_loss, TF.huber_loss),
]
IDS = [name for name, *_ in LOSSES]
NAMED = pytest.mark.parametrize("name, loss", [(n, f) for n, f, _ in LOSSES], ids=IDS)


def inputs_for(name, seed, N, C, scale):
    if name in ("softmax", "svm"):
        return classification(seed, N, C, scale)
    return regression(seed, (N, C), scale, binary=name == "bce")


def torch_loss(name, C):
    if name == "svm":  # torch's multi_margin_loss also divides by C; CS231n sums over classes
        return lambda x, y: C * TF.multi_margin_loss(x, y)
    return next(t for n, _, t in LOSSES if n == name)


@NAMED
@settings(max_examples=12, deadline=None)
@given(seed=seeds, N=st.integers(1, 6), C=st.integers(1, 6), scale=st.sampled_from([0.1, 1, 10]))
def test_gradient_passes_the_checker(name, loss, seed, N, C, scale):
    x, y = inputs_for(name, seed, N, C, scale)
    forward, backward = loss_as_layer(loss, y)
    gradproof.check_vjp(forward, backward, x).raise_if_failed()


@NAMED
@settings(max_examples=15, deadline=None)
@given(seed=seeds, N=st.integers(1, 8), C=st.integers(1, 8), scale=scales)
def test_loss_and_gradient_match_torch(name, loss, seed, N, C, scale):
    x, y = inputs_for(name, seed, N, C, scale)
    value, dx = loss(x, y)
    t_value, (t_dx, _) = torch_vjp(torch_loss(name, C), [x, y])
    assert isinstance(value, float)
    assert_close(value, t_value, name=f"{name} loss", floor=1e-300)
    assert_close(dx, t_dx, name=f"{name} dx")


# --- hand-computed values -------------------------------------------------------------
def test_softmax_loss_of_equal_scores_is_log_C():
    loss, dx = softmax_loss(np.zeros((2, 4)), np.array([1, 3]))
    assert loss == pytest.approx(math.log(4), rel=1e-15)
    expected = np.full((2, 4), 0.25)
    expected[0, 1] = expected[1, 3] = -0.75
    np.testing.assert_allclose(dx, expected / 2, rtol=1e-15)


def test_svm_loss_hand_computed_case():
    # margins: 2 - 1 + 1 = 2 and 3 - 1 + 1 = 3; the correct class loses twice
    loss, dx = svm_loss(np.array([[1.0, 2.0, 3.0]]), np.array([0]))
    assert loss == 5.0
    np.testing.assert_array_equal(dx, [[-2.0, 1.0, 1.0]])


def test_svm_loss_takes_slope_zero_at_a_margin_of_exactly_zero():
    loss, dx = svm_loss(np.array([[0.0, -1.0]]), np.array([0]))
    assert loss == 0.0
    np.testing.assert_array_equal(dx, [[0.0, 0.0]])


def test_checker_accepts_the_hinge_at_its_kink():
    x = np.array([[0.0, -1.0, 0.5], [2.0, 1.0, -3.0]])  # margin exactly 0 at (0, 1) and (1, 1)
    forward, backward = loss_as_layer(svm_loss, np.array([0, 0]))
    gradproof.check_vjp(forward, backward, x).raise_if_failed()


def test_mse_loss_hand_computed_case():
    loss, dx = mse_loss(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    assert loss == 2.5
    np.testing.assert_array_equal(dx, [1.0, 2.0])


def test_bce_with_logits_hand_computed_case():
    loss, dx = bce_with_logits_loss(np.array([0.0, 0.0]), np.array([1.0, 0.0]))
    assert loss == pytest.approx(math.log(2), rel=1e-15)
    np.testing.assert_array_equal(dx, [-0.25, 0.25])


def test_huber_loss_hand_computed_case():
    # |d| = 0.5 < delta: 0.5 * 0.25; |d| = 3 >= delta: 1 * (3 - 0.5)
    loss, dx = huber_loss(np.array([0.5, -3.0]), np.zeros(2), delta=1.0)
    assert loss == (0.125 + 2.5) / 2
    np.testing.assert_array_equal(dx, [0.25, -0.5])


# --- huge logits ---------------------------------------------------------------------
def test_softmax_loss_is_exact_for_logits_in_the_thousands():
    loss, dx = softmax_loss(np.array([[1000.0, 0.0], [-5000.0, 5000.0]]), np.array([1, 1]))
    assert loss == 500.0  # (1000 + 0) / 2
    np.testing.assert_array_equal(dx, [[0.5, -0.5], [0.0, 0.0]])


def test_bce_with_logits_is_exact_for_logits_in_the_thousands():
    loss, dx = bce_with_logits_loss(np.array([3000.0, -3000.0]), np.array([0.0, 0.0]))
    assert loss == 1500.0
    np.testing.assert_array_equal(dx, [0.5, 0.0])


@NAMED
def test_float32_scores_give_a_float32_gradient(name, loss):
    x, y = inputs_for(name, 4, 5, 3, 2.0)
    y = y if name in ("softmax", "svm") else y.astype(np.float32)
    value, dx = loss(x.astype(np.float32), y)
    assert isinstance(value, float) and dx.dtype == np.float32 and dx.shape == x.shape


def test_float32_softmax_loss_passes_the_checker():
    x, y = classification(7, 6, 5, 3.0, np.float32)
    gradproof.check_vjp(*loss_as_layer(softmax_loss, y), x).raise_if_failed()


# --- validation --------------------------------------------------------------------------
@pytest.mark.parametrize("loss", [softmax_loss, svm_loss])
def test_float_labels_are_a_type_error_naming_y(loss):
    with pytest.raises(InputTypeError, match=r"y must hold integer class labels in \[0, 3\)"):
        loss(np.zeros((2, 3)), np.array([0.0, 1.0]))


@pytest.mark.parametrize("loss", [softmax_loss, svm_loss])
def test_out_of_range_label_is_reported_with_its_index(loss):
    with pytest.raises(InputError, match=r"y\[1\] = 3"):
        loss(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(InputError, match=r"y\[0\] = -1"):
        loss(np.zeros((2, 3)), np.array([-1, 0]))


@pytest.mark.parametrize("loss", [softmax_loss, svm_loss])
def test_labels_must_have_shape_N(loss):
    with pytest.raises(InputError, match=r"y must have shape \(N,\)"):
        loss(np.zeros((2, 3)), np.array([[0, 1]]))


@pytest.mark.parametrize("loss", [f for _, f, _ in LOSSES], ids=IDS)
@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "an infinity")])
def test_non_finite_scores_are_a_clear_error(loss, bad, word):
    x = np.zeros((2, 3))
    x[1, 2] = bad
    y = np.array([0, 1]) if loss in (softmax_loss, svm_loss) else np.zeros((2, 3))
    with pytest.raises(InputError, match=rf"x contains {word} at index \(1, 2\)"):
        loss(x, y)


def test_scores_must_be_two_dimensional():
    with pytest.raises(InputError, match=r"x must have shape \(N, C\)"):
        softmax_loss(np.zeros(3), np.array([0]))


def test_regression_targets_must_match_x():
    with pytest.raises(InputError, match=r"y must have shape x.shape = \(2, 3\)"):
        mse_loss(np.zeros((2, 3)), np.zeros((3, 2)))


def test_bce_targets_must_be_probabilities():
    with pytest.raises(InputError, match=r"y must hold target probabilities in \[0, 1\]"):
        bce_with_logits_loss(np.zeros(2), np.array([0.5, 1.5]))


@pytest.mark.parametrize("delta", [0.0, -1.0, float("nan"), "1"])
def test_huber_delta_must_be_positive(delta):
    with pytest.raises(InputError, match="delta must be a positive number"):
        huber_loss(np.zeros(2), np.zeros(2), delta=delta)

"""affine and the fused affine_relu: checker, PyTorch oracle, hand-computed cases, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_oracle import assert_close, random_like, torch_vjp

import gradproof
from gradproof.errors import InputError, InputTypeError
from gradproof.nn.functional import (
    affine,
    affine_backward,
    affine_forward,
    affine_relu,
    affine_relu_backward,
    affine_relu_forward,
)

LAYERS = [(affine, affine_backward), (affine_relu, affine_relu_backward)]
seeds = st.integers(0, 2**32 - 1)
feature_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


def make_inputs(seed: int, N: int, features: tuple, M: int, dtype=np.float64):
    rng = np.random.default_rng(seed)
    D = int(np.prod(features))
    x = rng.standard_normal((N, *features)).astype(dtype)
    w = rng.standard_normal((D, M)).astype(dtype)
    b = rng.standard_normal(M).astype(dtype)
    return x, w, b


def torch_affine(x, w, b):
    return x.reshape(x.shape[0], -1) @ w + b


def torch_affine_relu(x, w, b):
    return torch_affine(x, w, b).clamp_min(0)


@pytest.mark.parametrize("layer, backward", LAYERS, ids=["affine", "affine_relu"])
@settings(max_examples=15, deadline=None)
@given(seed=seeds, N=st.integers(1, 5), features=feature_shapes, M=st.integers(1, 5))
def test_backward_passes_the_checker(layer, backward, seed, N, features, M):
    x, w, b = make_inputs(seed, N, features, M)
    gradproof.check_vjp(layer, backward, x, w, b).raise_if_failed()


@pytest.mark.parametrize(
    "layer, backward, oracle",
    [
        (affine, affine_backward, torch_affine),
        (affine_relu, affine_relu_backward, torch_affine_relu),
    ],
    ids=["affine", "affine_relu"],
)
@settings(max_examples=15, deadline=None)
@given(seed=seeds, N=st.integers(1, 6), features=feature_shapes, M=st.integers(1, 6))
def test_forward_and_gradients_match_torch(layer, backward, oracle, seed, N, features, M):
    x, w, b = make_inputs(seed, N, features, M)
    out, cache = layer(x, w, b)
    dout = random_like(out, seed=seed)
    t_out, t_grads = torch_vjp(oracle, [x, w, b], dout)
    assert_close(out, t_out, name="out")
    for name, mine, theirs in zip("x w b".split(), backward(dout, cache), t_grads):
        assert_close(mine, theirs, name=f"d{name}")


def test_affine_hand_computed_case():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    w = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    b = np.array([0.5, -1.0, 2.0])
    out, cache = affine(x, w, b)
    np.testing.assert_array_equal(out, [[5.5, 1.0, 1.0], [11.5, 3.0, -1.0]])
    dx, dw, db = affine_backward(np.ones((2, 3)), cache)
    np.testing.assert_array_equal(dx, [[0.0, 3.0], [0.0, 3.0]])
    np.testing.assert_array_equal(dw, [[4.0, 4.0, 4.0], [6.0, 6.0, 6.0]])
    np.testing.assert_array_equal(db, [2.0, 2.0, 2.0])


def test_affine_relu_hand_computed_case():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    w = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    b = np.array([0.5, -1.0, 2.0])
    out, cache = affine_relu(x, w, b)
    np.testing.assert_array_equal(out, [[5.5, 1.0, 1.0], [11.5, 3.0, 0.0]])
    dx, dw, db = affine_relu_backward(np.ones((2, 3)), cache)
    np.testing.assert_array_equal(dx, [[0.0, 3.0], [1.0, 3.0]])
    np.testing.assert_array_equal(dw, [[4.0, 4.0, 1.0], [6.0, 6.0, 2.0]])
    np.testing.assert_array_equal(db, [2.0, 2.0, 1.0])


def test_affine_relu_gradient_is_zero_at_a_pre_activation_of_exactly_zero():
    out, cache = affine_relu(np.array([[1.0]]), np.array([[1.0]]), np.array([-1.0]))
    assert out[0, 0] == 0.0
    dx, dw, db = affine_relu_backward(np.array([[5.0]]), cache)
    assert dx[0, 0] == 0.0 and dw[0, 0] == 0.0 and db[0] == 0.0


def test_affine_flattens_each_example():
    x, w, b = make_inputs(0, 3, (2, 5), 4)
    out, _ = affine(x, w, b)
    assert_close(out, x.reshape(3, 10) @ w + b, rtol=0)


@pytest.mark.parametrize("layer, backward", LAYERS, ids=["affine", "affine_relu"])
def test_float32_inputs_give_float32_output_and_gradients(layer, backward):
    x, w, b = make_inputs(1, 3, (4,), 2, dtype=np.float32)
    out, cache = layer(x, w, b)
    grads = backward(np.ones_like(out), cache)
    assert out.dtype == np.float32
    assert [g.dtype for g in grads] == [np.float32] * 3
    assert [g.shape for g in grads] == [x.shape, w.shape, b.shape]


@pytest.mark.parametrize("layer, backward", LAYERS, ids=["affine", "affine_relu"])
def test_float32_backward_passes_the_checker(layer, backward):
    x, w, b = make_inputs(2, 4, (3,), 3, dtype=np.float32)
    gradproof.check_vjp(layer, backward, x, w, b).raise_if_failed()


def test_cs231n_names_are_the_same_functions():
    assert affine_forward is affine
    assert affine_relu_forward is affine_relu


@pytest.mark.parametrize(
    "x_shape, w_shape, b_shape, fragment",
    [
        ((6,), (6, 2), (2,), "x must have shape (N, d1, ..., dk)"),
        ((3, 2, 3), (5, 2), (2,), "D = prod(x.shape[1:]) = 6"),
        ((3, 6), (6,), (2,), "w must have shape (D, M)"),
        ((3, 6), (6, 2), (3,), "b must have shape (M,)"),
    ],
)
def test_shape_errors_name_the_argument(x_shape, w_shape, b_shape, fragment):
    with pytest.raises(InputError) as info:
        affine(np.zeros(x_shape), np.zeros(w_shape), np.zeros(b_shape))
    assert fragment in str(info.value)


def test_integer_input_is_a_type_error_naming_x():
    with pytest.raises(InputTypeError, match="x must be a float32 or float64 NumPy array"):
        affine(np.ones((2, 3), dtype=np.int64), np.ones((3, 1)), np.ones(1))


def test_wrong_upstream_shape_is_reported():
    _, cache = affine(*make_inputs(0, 2, (3,), 4))
    with pytest.raises(InputError, match=r"dout must have the shape of affine's output \(2, 4\)"):
        affine_backward(np.ones((4, 2)), cache)

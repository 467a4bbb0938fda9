"""clip_grad_norm matches torch.nn.utils.clip_grad_norm_ (norm and clipped gradients)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradproof.errors import InputError, InputTypeError
from gradproof.nn import Parameter
from gradproof.optim import clip_grad_norm

SHAPES = [(3, 4), (5,), (2, 1, 3)]


def params_with_grads(seed: int, scale: float, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = [Parameter(np.zeros(shape, dtype=dtype)) for shape in SHAPES]
    for p in params:
        p.grad[...] = scale * rng.standard_normal(p.shape)
    return params


def torch_clip(params, max_norm, norm_type):
    tensors = [torch.zeros(p.shape, dtype=torch.float64, requires_grad=True) for p in params]
    for t, p in zip(tensors, params):
        t.grad = torch.tensor(p.grad, dtype=torch.float64)
    total = torch.nn.utils.clip_grad_norm_(tensors, max_norm, norm_type=norm_type)
    return float(total), [t.grad.numpy() for t in tensors]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([0.0, 1e-3, 0.1, 1.0, 30.0]),
    max_norm=st.floats(0.0, 10.0),
    norm_type=st.sampled_from([2.0, 1.0, 3.0, 0.5, math.inf]),
)
def test_norm_and_clipped_grads_match_torch(seed, scale, max_norm, norm_type):
    params = params_with_grads(seed, scale)
    t_total, t_grads = torch_clip(params, max_norm, norm_type)
    total = clip_grad_norm(params, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, t_total, rtol=1e-12, atol=1e-300)
    for p, t_grad in zip(params, t_grads):
        np.testing.assert_allclose(p.grad, t_grad, rtol=1e-12, atol=1e-300)


def test_hand_computed_case_3_4_5():
    params = [Parameter(np.zeros(1)), Parameter(np.zeros(1))]
    params[0].grad[...] = 3.0
    params[1].grad[...] = 4.0
    assert clip_grad_norm(params, max_norm=1.0) == 5.0
    scale = 1.0 / (5.0 + 1e-6)  # torch's eps in the denominator
    assert params[0].grad[0] == 3.0 * scale and params[1].grad[0] == 4.0 * scale


def test_grads_under_the_limit_are_untouched_and_clipping_is_in_place():
    params = params_with_grads(0, 1e-3)
    before = [p.grad.copy() for p in params]
    arrays = [p.grad for p in params]
    clip_grad_norm(params, max_norm=10.0)
    assert all(np.array_equal(p.grad, b) for p, b in zip(params, before))
    clip_grad_norm(params, max_norm=1e-6)
    assert all(p.grad is a for p, a in zip(params, arrays))


def test_float32_grads_stay_float32():
    params = params_with_grads(1, 10.0, dtype=np.float32)
    clip_grad_norm(params, max_norm=1.0)
    assert all(p.grad.dtype == np.float32 for p in params)
    np.testing.assert_allclose(math.sqrt(sum(float(np.sum(p.grad.astype(float) ** 2))
                                             for p in params)), 1.0, rtol=1e-5)


def test_accepts_a_single_parameter_and_skips_missing_grads():
    p, q = Parameter(np.zeros(2)), Parameter(np.zeros(2))
    p.grad[...] = [6.0, 8.0]
    q.grad = None
    assert clip_grad_norm([p, q], 100.0) == 10.0
    assert clip_grad_norm(p, 100.0) == 10.0


def test_non_finite_norm_propagates_like_torch_or_raises_on_request():
    params = params_with_grads(2, 1.0)
    params[1].grad[0] = np.inf
    t_total, t_grads = torch_clip(params, 1.0, 2.0)
    with pytest.warns(RuntimeWarning, match="invalid value"):  # inf * 0
        total = clip_grad_norm(params, 1.0)
    assert total == t_total == math.inf
    for p, t_grad in zip(params, t_grads):
        np.testing.assert_array_equal(np.isnan(p.grad), np.isnan(t_grad))
    with pytest.raises(InputError, match="error_if_nonfinite"):
        clip_grad_norm(params, 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(max_norm=-1.0), InputError, "max_norm must be >= 0"),
        (dict(max_norm="1"), InputTypeError, "max_norm must be a real number"),
        (dict(max_norm=1.0, norm_type=0.0), InputError, "norm_type must be > 0"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        clip_grad_norm(params_with_grads(0, 1.0), **kwargs)


def test_bad_parameters_name_the_argument():
    with pytest.raises(InputError, match="parameters is empty"):
        clip_grad_norm([], 1.0)
    with pytest.raises(InputTypeError, match=r"parameters\[0\] must be a gradproof.nn.Parameter"):
        clip_grad_norm([np.zeros(3)], 1.0)

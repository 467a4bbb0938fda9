"""Elementwise activations: checker, PyTorch oracle, hand-computed values, kinks, extremes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_oracle import assert_close, random_like, torch_vjp

import gradproof
from gradproof.errors import InputError, InputTypeError
from gradproof.nn import functional as F
from gradproof.nn.functional.activations import normal_cdf

# name, options, torch function (with the same options)
ACTIVATIONS = [
    ("relu", {}, TF.relu),
    ("leaky_relu", {"negative_slope": 0.2}, lambda t: TF.leaky_relu(t, negative_slope=0.2)),
    ("elu", {"alpha": 1.7}, lambda t: TF.elu(t, alpha=1.7)),
    ("gelu", {}, TF.gelu),
    ("gelu", {"approximate": "tanh"}, lambda t: TF.gelu(t, approximate="tanh")),
    ("sigmoid", {}, torch.sigmoid),
    ("tanh", {}, torch.tanh),
    ("softplus", {"beta": 2.0, "threshold": 10.0}, lambda t: TF.softplus(t, 2.0, 10.0)),
    ("softplus", {}, TF.softplus),
    ("silu", {}, TF.silu),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in opts.items()) for name, opts, _ in ACTIVATIONS]
seeds = st.integers(0, 2**32 - 1)
shapes = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)


def functions(name: str, options: dict):
    """``(forward, backward)`` with the options bound, as the checker calls them."""
    layer = getattr(F, name)
    return (lambda x: layer(x, **options)), getattr(F, name + "_backward")


def sample(seed: int, shape: tuple, scale: float, dtype=np.float64) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


@pytest.mark.parametrize("name, options, _", ACTIVATIONS, ids=IDS)
@settings(max_examples=12, deadline=None)
@given(seed=seeds, shape=shapes, scale=st.sampled_from([0.3, 1.0, 3.0]))
def test_backward_passes_the_checker(name, options, _, seed, shape, scale):
    forward, backward = functions(name, options)
    gradproof.check_vjp(forward, backward, sample(seed, shape, scale)).raise_if_failed()


@pytest.mark.parametrize("name, options, torch_fn", ACTIVATIONS, ids=IDS)
@settings(max_examples=12, deadline=None)
@given(seed=seeds, shape=shapes, scale=st.sampled_from([0.1, 1.0, 5.0, 40.0, 3000.0]))
def test_forward_and_gradient_match_torch(name, options, torch_fn, seed, shape, scale):
    forward, backward = functions(name, options)
    x = sample(seed, shape, scale)
    out, cache = forward(x)
    dout = random_like(x, seed=seed)
    t_out, (t_dx,) = torch_vjp(torch_fn, [x], dout)
    # floor: in the saturated tails torch's values carry absolute errors near 1e-16
    # (1 + erf(x) and 1 - tanh(x)**2 cancel), where ours are exact; a floor of 1e-4
    # on the scale allows absolute differences of 1e-14 there.
    assert_close(out, t_out, name=f"{name} out", floor=1e-4)
    assert_close(backward(dout, cache), t_dx, name=f"{name} dx", floor=1e-4)


@pytest.mark.parametrize("name, options, _", ACTIVATIONS, ids=IDS)
def test_extreme_inputs_give_finite_values_and_gradients(name, options, _):
    forward, backward = functions(name, options)
    x = np.array([-5000.0, -700.0, -40.0, 40.0, 700.0, 5000.0])
    out, cache = forward(x)
    dx = backward(np.ones_like(x), cache)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dx))


@pytest.mark.parametrize("name, options, _", ACTIVATIONS, ids=IDS)
def test_float32_in_float32_out(name, options, _):
    forward, backward = functions(name, options)
    x = sample(3, (4, 5), 2.0, np.float32)
    out, cache = forward(x)
    dx = backward(np.ones_like(out), cache)
    assert out.dtype == np.float32 and dx.dtype == np.float32 and dx.shape == x.shape
    gradproof.check_vjp(forward, backward, x).raise_if_failed()


# --- hand-computed values --------------------------------------------------------
PHI_1 = 0.8413447460685429  # Phi(1), the standard normal CDF at 1
PDF_1 = math.exp(-0.5) / math.sqrt(2 * math.pi)
HAND = [
    # name, options, x, out, slope
    ("relu", {}, [-1.0, 0.0, 2.0], [0.0, 0.0, 2.0], [0.0, 0.0, 1.0]),
    ("leaky_relu", {"negative_slope": 0.1}, [-2.0, 0.0, 3.0], [-0.2, 0.0, 3.0], [0.1, 0.1, 1.0]),
    ("elu", {"alpha": 2.0}, [-1.0, 0.0, 1.5],
     [2 * (math.exp(-1) - 1), 0.0, 1.5], [2 * math.exp(-1), 2.0, 1.0]),
    ("sigmoid", {}, [0.0, math.log(3)], [0.5, 0.75], [0.25, 0.1875]),
    ("tanh", {}, [0.0, math.log(2)], [0.0, 0.6], [1.0, 0.64]),
    ("softplus", {}, [0.0, math.log(3)], [math.log(2), math.log(4)], [0.5, 0.75]),
    ("softplus", {"beta": 1.0, "threshold": 5.0}, [6.0], [6.0], [1.0]),
    ("silu", {}, [0.0, math.log(3)], [0.0, 0.75 * math.log(3)],
     [0.5, 0.75 + math.log(3) * 0.1875]),
    ("gelu", {}, [0.0, 1.0, -1.0], [0.0, PHI_1, -(1 - PHI_1)],
     [0.5, PHI_1 + PDF_1, (1 - PHI_1) - PDF_1]),
    ("gelu", {"approximate": "tanh"}, [0.0], [0.0], [0.5]),
]  # fmt: skip


@pytest.mark.parametrize("name, options, x, out, slope", HAND, ids=[h[0] for h in HAND])
def test_hand_computed_values_and_slopes(name, options, x, out, slope):
    forward, backward = functions(name, options)
    got, cache = forward(np.array(x))
    np.testing.assert_allclose(got, out, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(backward(np.ones(len(x)), cache), slope, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize(
    "name, options, slope_at_zero, torch_fn",
    [
        ("relu", {}, 0.0, TF.relu),
        ("leaky_relu", {"negative_slope": 0.3}, 0.3, lambda t: TF.leaky_relu(t, 0.3)),
        ("elu", {"alpha": 2.5}, 2.5, lambda t: TF.elu(t, 2.5)),
    ],
)
def test_kink_subgradient_at_exactly_zero_is_torchs(name, options, slope_at_zero, torch_fn):
    forward, backward = functions(name, options)
    x, dout = np.zeros(3), np.full(3, 2.0)
    _, cache = forward(x)
    dx = backward(dout, cache)
    np.testing.assert_array_equal(dx, 2.0 * slope_at_zero)
    np.testing.assert_array_equal(dx, torch_vjp(torch_fn, [x], dout)[1][0])


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_checker_accepts_exact_zeros_at_the_kink(name):
    forward, backward = functions(name, {})
    x = sample(5, (4, 6), 1.0)
    x[::2, ::3] = 0.0
    gradproof.check_vjp(forward, backward, x).raise_if_failed()


def test_saturated_sigmoid_gradient_keeps_relative_precision():
    x = np.array([-600.0, 600.0])
    _, cache = F.sigmoid(x)
    # s (1 - s) = e^-600 / (1 + e^-600)^2 = e^-600 to double precision
    np.testing.assert_allclose(F.sigmoid_backward(np.ones(2), cache), math.exp(-600), rtol=1e-13)


def test_normal_cdf_is_exact_to_1e13_in_both_tails():
    # mpmath (40 digits) as the reference: math.erfc(-x / sqrt(2)) is itself off by
    # x**2 * eps in the tails, from rounding x / sqrt(2).
    import mpmath  # installed with torch (via sympy)

    mpmath.mp.dps = 40
    x = np.concatenate([np.linspace(-37.5, 37.5, 1001), np.linspace(-2.2, -2.0, 41), [0.0]])
    expected = np.array([float(mpmath.ncdf(mpmath.mpf(float(v)))) for v in x])
    normal = expected > 1e-300  # below, exp(-x^2/2) is subnormal
    np.testing.assert_allclose(normal_cdf(x)[normal], expected[normal], rtol=1e-13)


# --- errors ----------------------------------------------------------------------
def test_unknown_gelu_approximation_is_an_error_naming_it():
    with pytest.raises(InputError, match="approximate must be 'none'"):
        F.gelu(np.ones(2), approximate="fast")


def test_softplus_beta_must_be_positive():
    with pytest.raises(InputError, match="beta must be a positive number"):
        F.softplus(np.ones(2), beta=0.0)


def test_integer_input_is_a_type_error_naming_x():
    with pytest.raises(InputTypeError, match="x must be a float32 or float64 NumPy array"):
        F.relu(np.arange(3))


def test_backward_refuses_a_cache_from_another_activation():
    _, cache = F.tanh(np.ones(3))
    with pytest.raises(InputError, match=r"cache comes from tanh\(\), not sigmoid\(\)"):
        F.sigmoid_backward(np.ones(3), cache)


def test_backward_refuses_a_raw_array_as_cache():
    with pytest.raises(InputTypeError, match=r"cache must be the cache returned by relu\(\)"):
        F.relu_backward(np.ones(3), np.ones(3))


def test_backward_checks_the_upstream_shape():
    _, cache = F.silu(np.ones((2, 3)))
    with pytest.raises(InputError, match=r"dout must have the shape of silu's output \(2, 3\)"):
        F.silu_backward(np.ones(6), cache)


def test_relu_forward_is_the_cs231n_name_for_relu():
    assert F.relu_forward is F.relu

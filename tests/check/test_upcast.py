"""The float64 re-check of float32 code (``check_vjp(..., upcast=True)``, the default)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradproof import check_vjp

RNG = np.random.default_rng(11)


def gelu(x):
    cdf = 0.5 * (1 + np.vectorize(math.erf, otypes=[x.dtype])(x / np.sqrt(2)))
    return x * cdf, (x, cdf)


def gelu_backward_exact(dout, cache):
    x, cdf = cache
    pdf = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)
    return (dout * (cdf + x * pdf)).astype(x.dtype)


def gelu_backward_tanh(dout, cache):
    """The tanh approximation's derivative: off by up to ~1e-3 relative."""
    x, _ = cache
    c = np.sqrt(2 / np.pi)
    t = np.tanh(c * (x + 0.044715 * x**3))
    d = 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * c * (1 + 3 * 0.044715 * x**2)
    return (dout * d).astype(x.dtype)


def _x32(shape=(6, 9)):
    return (RNG.uniform(0.3, 3.0, shape) * RNG.choice([-1, 1], shape)).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_float32_bug_near_float32_resolution_is_caught(seed):
    """The tanh-GELU derivative is off by ~8e-4: at float32's edge. Caught either by
    the float32 measurement itself or, where that cannot resolve it, by the float64
    re-check, which then says so."""
    x = _x32()
    alone = check_vjp(gelu, gelu_backward_tanh, x, seed=seed, upcast=False)
    report = check_vjp(gelu, gelu_backward_tanh, x, seed=seed)
    assert report.verdict == "failed"
    assert report.inputs[0].status == "FAIL"
    assert any(p.kind == "mismatch" for p in report.problems)
    assert report.inputs[0].worst  # localised
    if alone.verdict != "failed":
        assert "same code run in float64" in report.problems[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correct_float32_code_passes_and_says_it_was_rechecked(seed):
    x = _x32()
    report = check_vjp(gelu, gelu_backward_exact, x, seed=seed)
    assert report.ok, str(report)
    assert any("also checked in float64" in n for n in report.notes)
    plain = check_vjp(gelu, gelu_backward_exact, x, seed=seed, upcast=False)
    assert report.n_evals > plain.n_evals  # the re-check's calls are counted
    assert not any("float64" in n for n in plain.notes)


C32 = float(np.float32(np.sqrt(2 / np.pi)))  # the constant rounded to float32


def tanh_gelu_c32(x):
    """The tanh GELU with its constant rounded to float32 (2.8e-8 relative)."""
    t = np.tanh(C32 * (x + 0.044715 * x**3))
    return 0.5 * x * (1 + t), (x, t)


@pytest.mark.parametrize("seed", range(4))
def test_a_float32_rounded_constant_is_not_a_bug(seed):
    """The forward's constant is rounded to float32, the backward's is not: a
    difference of ~3e-8 relative, which float64 can see and float32 cannot
    matter for: a note, not a failure."""
    x = _x32()
    report = check_vjp(tanh_gelu_c32, gelu_backward_tanh, x, seed=seed)  # exact constant
    assert report.ok, str(report)
    assert any("float64" in n for n in report.notes)


def _erf_as(x):
    """Abramowitz-Stegun 7.1.26: |error| <= 1.5e-7, its derivative within 1e-5
    relative of exp(-x^2) * 2/sqrt(pi) away from 0."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1 / (1 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (
        -1.453152027 + t * 1.061405429))))
    return s * (1 - poly * np.exp(-a * a))


def erf_approx(x):
    return _erf_as(x), x


def erf_approx_backward(dout, x):
    return (dout * 2 / np.sqrt(np.pi) * np.exp(-x * x)).astype(x.dtype)


@pytest.mark.parametrize("seed", range(4))
def test_a_float32_accurate_approximation_is_not_a_bug(seed):
    """The forward approximates erf to float32 accuracy and the backward is the
    exact derivative: float64 sees them differ by up to ~1e-5 relative, below
    what float32 resolves (eps32^(2/3) = 2.4e-5)."""
    x = RNG.uniform(-2, 2, (5, 8)).astype(np.float32)
    report = check_vjp(erf_approx, erf_approx_backward, x, seed=seed)
    assert report.ok, str(report)
    assert any("float64" in n for n in report.notes)


def gelu_in_float32(x):
    out, cache = gelu(x.astype(np.float32))
    return out.astype(x.dtype), cache


def gelu_in_float32_backward(dout, cache):
    return gelu_backward_tanh(dout.astype(np.float32), cache).astype(dout.dtype)


def gelu_exact_in_float32_backward(dout, cache):
    return gelu_backward_exact(dout.astype(np.float32), cache).astype(dout.dtype)


def test_code_that_computes_in_float32_whatever_its_inputs_is_not_rechecked():
    report = check_vjp(gelu_in_float32, gelu_exact_in_float32_backward, _x32(), seed=0)
    assert report.ok, str(report)
    assert any("not re-checked in float64" in n and "computes in float32" in n
               for n in report.notes), report.notes


def test_float64_inputs_are_not_rechecked():
    x = _x32().astype(np.float64)
    report = check_vjp(gelu, gelu_backward_exact, x, seed=0)
    assert report.ok and not any("float64" in n for n in report.notes)


def _weights(x):
    c = np.ones(x.size, dtype=x.dtype)
    c[1] = 1.0003
    return c.reshape(x.shape)


def clip_sum(x):
    """sum(c * clip(x, -1, 1)) with c = (1, 1.0003, 1, ...): a scalar loss."""
    return float(np.sum(_weights(x) * np.clip(x, -1, 1))), x


def clip_sum_backward(dloss, x):
    return (dloss * _weights(x) * ((x > -1) & (x < 1))).astype(x.dtype)


def test_a_float32_ties_verdict_on_kinks_that_nearly_cancel_is_undone_in_float64():
    """x[0] = 1 and x[1] = -1 sit at clip's bounds. Moving both up, the first
    stops counting (-1) as the second starts (+1.0003): the line through them
    has a kink of 3e-4 relative, which float32 cannot see, so the float32
    check (for some draws of directions) calls it smooth and used to fail the valid
    zero subgradient as a ties bug. Float64 sees the kink; float32 alone now says
    inconclusive."""
    x = np.random.default_rng(0).uniform(-0.9, 0.9, 12).astype(np.float32)
    x[0], x[1] = 1, -1
    undone = 0
    for seed in range(24):
        plain = check_vjp(clip_sum, clip_sum_backward, x, seed=seed, upcast=False)
        report = check_vjp(clip_sum, clip_sum_backward, x, seed=seed)
        assert report.ok, str(report)
        assert plain.verdict != "failed", str(plain)  # float32 alone no longer cries wolf
        if "kinked coordinates together" in plain.inputs[0].reason:
            undone += 1
            assert plain.verdict == "inconclusive"
            assert len(report.kinks) == 2
            assert any("in float64" in n and "valid subgradient" in n for n in report.notes)
    assert undone >= 2  # the premise: float32 alone sees a disagreeing ties line here


def max_pool_ties(x):
    return x.max(axis=1), x


def max_pool_ties_copied(dout, x):
    """Copies the gradient to every tied maximum instead of sharing it out."""
    return ((x == x.max(axis=1, keepdims=True)) * dout[:, None]).astype(x.dtype)


def test_a_real_ties_bug_in_float32_is_confirmed_in_float64():
    x = RNG.standard_normal((4, 6)).astype(np.float32)
    x[:, 2] = x[:, 4] = np.abs(x).max() + 1  # two tied maxima per row
    report = check_vjp(max_pool_ties, max_pool_ties_copied, x, seed=0)
    assert not report.ok
    assert "ties" in {p.kind for p in report.problems}, str(report)


@pytest.mark.parametrize("bad", ["yes", (gelu,), (gelu, 3), 1])
def test_bad_upcast_is_named(bad):
    from gradproof import InputError

    with pytest.raises(InputError, match="upcast must be"):
        check_vjp(gelu, gelu_backward_exact, _x32(), upcast=bad)


def test_an_explicit_float64_pair_is_used_as_given():
    """upcast=(forward64, backward64): the float64 version of the code, given."""
    calls = []

    def forward64(x):
        calls.append(x.dtype)
        return gelu(x)

    # the float32 code is right; only the given float64 backward is wrong: a
    # failure proves the pair was used
    report = check_vjp(gelu_in_float32, gelu_exact_in_float32_backward, _x32(), seed=0,
                       upcast=(forward64, gelu_backward_tanh))
    assert calls and set(calls) == {np.dtype(np.float64)}
    assert not report.ok and "float64" in report.problems[0]

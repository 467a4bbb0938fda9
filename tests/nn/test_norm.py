"""Batch, spatial batch, layer and group norm: checker, PyTorch oracle, hand cases, errors."""

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
from gradproof.nn import BatchNorm1d
from gradproof.nn import functional as F

seeds = st.integers(0, 2**32 - 1)
BATCHNORM_BACKWARDS = [F.batchnorm_backward, F.batchnorm_backward_alt]
BN_IDS = ["staged", "closed-form"]


def arrays(seed: int, x_shape: tuple, C: int, dtype=np.float64, param_shape=None):
    """x (offset and scaled, as activations are), gamma and beta of ``param_shape`` or (C,)."""
    rng = np.random.default_rng(seed)
    x = 3 * rng.standard_normal(x_shape) + rng.normal(0, 5)
    gamma = rng.standard_normal(param_shape or C)
    beta = rng.standard_normal(param_shape or C)
    return x.astype(dtype), gamma.astype(dtype), beta.astype(dtype)


def running_stats(seed: int, C: int) -> dict:
    rng = np.random.default_rng(seed + 1)
    return {"running_mean": rng.standard_normal(C), "running_var": rng.random(C) + 0.5}


def assert_grads_match(mine, theirs, dout, cache):
    """Compare (dx, dgamma, dbeta); dx on the scale of its terms, ``|dout * gamma| / std``.

    dx is a difference of terms of that size; in degenerate cases (two examples
    in a batch, one feature in a layer) it is 0 up to their rounding, so
    holding it to its own size would compare rounding noise with rounding noise.
    """
    term_scale = float(np.abs(dout * cache.gamma).max() * np.max(cache.inv_std))
    for name, m, t in zip(("dx", "dgamma", "dbeta"), mine, theirs):
        assert_close(m, t, name=name, floor=term_scale if name == "dx" else 1e-300)


# --- batch norm (N, D) ---------------------------------------------------------------
@pytest.mark.parametrize("backward", BATCHNORM_BACKWARDS, ids=BN_IDS)
@pytest.mark.parametrize("mode", ["train", "test"])
@settings(max_examples=10, deadline=None)
@given(seed=seeds, N=st.integers(2, 6), D=st.integers(1, 5))
def test_batchnorm_backward_passes_the_checker(backward, mode, seed, N, D):
    x, gamma, beta = arrays(seed, (N, D), D)
    bn_param = {"mode": mode, **running_stats(seed, D)}
    report = gradproof.check_vjp(F.batchnorm, backward, x, gamma, beta, bn_param)
    _proven_unless_two_values(report, N if mode == "train" else None)


def _proven_unless_two_values(report, group_size):
    """Normalising two values gives +-1 whatever they are: dx is then zero but for
    eps's effect, below what the forward's rounding shows, and the honest verdict
    for x is inconclusive (never failed). Any other group size must be proven."""
    if group_size == 2:
        assert report.verdict != "failed", str(report)
        assert all("rounding swamps" in r.reason for r in report.inputs if r.reason), str(report)
    else:
        report.raise_if_failed()


@pytest.mark.parametrize("backward", BATCHNORM_BACKWARDS, ids=BN_IDS)
@settings(max_examples=10, deadline=None)
@given(seed=seeds, N=st.integers(2, 8), D=st.integers(1, 6), momentum=st.floats(0.0, 1.0))
def test_batchnorm_train_matches_torch_with_running_stats(backward, seed, N, D, momentum):
    x, gamma, beta = arrays(seed, (N, D), D)
    stats = running_stats(seed, D)
    t_mean, t_var = (torch.tensor(stats[k]) for k in ("running_mean", "running_var"))
    bn_param = {"mode": "train", "momentum": momentum, "unbiased_running_var": True, **stats}
    out, cache = F.batchnorm(x, gamma, beta, bn_param)
    dout = random_like(out, seed=seed)

    def torch_bn(x, gamma, beta):  # torch's momentum weighs the new value: 1 - ours
        return TF.batch_norm(x, t_mean, t_var, gamma, beta, True, 1 - momentum, 1e-5)

    t_out, t_grads = torch_vjp(torch_bn, [x, gamma, beta], dout)
    assert_close(out, t_out, name="out")
    assert_grads_match(backward(dout, cache), t_grads, dout, cache)
    assert_close(bn_param["running_mean"], t_mean.numpy(), name="running_mean")
    assert_close(bn_param["running_var"], t_var.numpy(), name="running_var")


@pytest.mark.parametrize("backward", BATCHNORM_BACKWARDS, ids=BN_IDS)
@settings(max_examples=10, deadline=None)
@given(seed=seeds, N=st.integers(1, 8), D=st.integers(1, 6))
def test_batchnorm_test_mode_matches_torch_eval(backward, seed, N, D):
    x, gamma, beta = arrays(seed, (N, D), D)
    stats = running_stats(seed, D)
    out, cache = F.batchnorm(x, gamma, beta, {"mode": "test", **stats})
    dout = random_like(out, seed=seed)
    mean, var = torch.tensor(stats["running_mean"]), torch.tensor(stats["running_var"])
    t_out, t_grads = torch_vjp(
        lambda x, g, b: TF.batch_norm(x, mean, var, g, b, False, 0.1, 1e-5), [x, gamma, beta], dout
    )
    assert_close(out, t_out, name="out")
    assert_grads_match(backward(dout, cache), t_grads, dout, cache)


def test_batchnorm_default_running_var_is_the_biased_batch_variance():
    x, gamma, beta = arrays(0, (5, 3), 3)
    bn_param = {"mode": "train"}
    F.batchnorm(x, gamma, beta, bn_param)
    # CS231n: running stats start at zeros, momentum 0.9 weighs the old value, biased var
    np.testing.assert_allclose(bn_param["running_mean"], 0.1 * x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(bn_param["running_var"], 0.1 * x.var(axis=0), rtol=1e-14)


def test_batchnorm_replaces_running_arrays_instead_of_writing_into_them():
    stats = running_stats(0, 3)
    bn_param = {"mode": "train", **stats}
    F.batchnorm(*arrays(1, (4, 3), 3), bn_param)
    assert bn_param["running_mean"] is not stats["running_mean"]
    np.testing.assert_array_equal(stats["running_mean"], running_stats(0, 3)["running_mean"])


@settings(max_examples=10, deadline=None)
@given(seed=seeds, N=st.integers(2, 30), D=st.integers(1, 30))
def test_staged_and_closed_form_backward_agree(seed, N, D):
    x, gamma, beta = arrays(seed, (N, D), D)
    out, cache = F.batchnorm(x, gamma, beta, {"mode": "train"})
    dout = random_like(out, seed=seed)
    # dx on the scale of its terms, as in assert_grads_match
    floor = float(np.abs(dout * gamma).max() * np.max(cache.inv_std))
    staged, closed = F.batchnorm_backward(dout, cache), F.batchnorm_backward_alt(dout, cache)
    for name, a, b in zip(("dx", "dgamma", "dbeta"), staged, closed):
        assert_close(a, b, rtol=1e-12, name=name, floor=floor)


def test_batchnorm_hand_computed_case():
    # x = 0, 1, 2: mean 1, biased var 2/3, so xhat = (-1, 0, 1) * sqrt(1.5) (eps = 0)
    s = math.sqrt(1.5)
    x = np.array([[0.0], [1.0], [2.0]])
    out, cache = F.batchnorm(x, np.array([2.0]), np.array([0.5]), {"mode": "train", "eps": 0.0})
    np.testing.assert_allclose(out[:, 0], [0.5 - 2 * s, 0.5, 0.5 + 2 * s], rtol=1e-15)
    # dout = (1, 0, 0): dbeta = 1, dgamma = xhat_0 = -s,
    # dx = gamma * s / 3 * (3 dout - dbeta - xhat * dgamma) = 2 s / 3 * (0.5, -1, 0.5)
    for backward in BATCHNORM_BACKWARDS:
        dx, dgamma, dbeta = backward(np.array([[1.0], [0.0], [0.0]]), cache)
        np.testing.assert_allclose(dx[:, 0], 2 * s / 3 * np.array([0.5, -1.0, 0.5]), rtol=1e-14)
        np.testing.assert_allclose(dgamma, [-s], rtol=1e-15)
        np.testing.assert_allclose(dbeta, [1.0], rtol=1e-15)


def test_batchnorm_test_mode_hand_computed_case():
    bn_param = {"mode": "test", "running_mean": np.array([1.0]), "running_var": np.array([4.0])}
    x = np.array([[3.0], [-1.0]])
    out, cache = F.batchnorm(x, np.array([3.0]), np.array([1.0]), {**bn_param, "eps": 0.0})
    np.testing.assert_array_equal(out, [[4.0], [-2.0]])  # 3 * (x - 1) / 2 + 1
    dx, dgamma, dbeta = F.batchnorm_backward_alt(np.array([[1.0], [1.0]]), cache)
    np.testing.assert_array_equal(dx, [[1.5], [1.5]])
    np.testing.assert_array_equal(dgamma, [0.0])
    np.testing.assert_array_equal(dbeta, [2.0])


# --- spatial batch norm -----------------------------------------------------------------
@pytest.mark.parametrize(
    "backward", [F.spatial_batchnorm_backward, F.batchnorm_backward], ids=["closed", "staged"]
)
@pytest.mark.parametrize("mode", ["train", "test"])
@settings(max_examples=8, deadline=None)
@given(
    seed=seeds, N=st.integers(1, 3), C=st.integers(1, 4), H=st.integers(1, 3), W=st.integers(2, 3)
)
def test_spatial_batchnorm_passes_the_checker(backward, mode, seed, N, C, H, W):
    x, gamma, beta = arrays(seed, (N, C, H, W), C)
    bn_param = {"mode": mode, **running_stats(seed, C)}
    report = gradproof.check_vjp(F.spatial_batchnorm, backward, x, gamma, beta, bn_param)
    _proven_unless_two_values(report, N * H * W if mode == "train" else None)


@pytest.mark.parametrize("mode", ["train", "test"])
@settings(max_examples=10, deadline=None)
@given(
    seed=seeds, N=st.integers(1, 3), C=st.integers(1, 4), H=st.integers(1, 4), W=st.integers(2, 4)
)
def test_spatial_batchnorm_matches_torch(mode, seed, N, C, H, W):
    x, gamma, beta = arrays(seed, (N, C, H, W), C)
    stats = running_stats(seed, C)
    t_mean, t_var = (torch.tensor(stats[k]) for k in ("running_mean", "running_var"))
    bn_param = {"mode": mode, "unbiased_running_var": True, **stats}
    out, cache = F.spatial_batchnorm(x, gamma, beta, bn_param)
    dout = random_like(out, seed=seed)
    t_out, t_grads = torch_vjp(
        lambda x, g, b: TF.batch_norm(x, t_mean, t_var, g, b, mode == "train", 0.1, 1e-5),
        [x, gamma, beta],
        dout,
    )
    assert_close(out, t_out, name="out")
    assert_grads_match(F.spatial_batchnorm_backward(dout, cache), t_grads, dout, cache)
    assert_close(bn_param["running_mean"], t_mean.numpy(), name="running_mean")
    assert_close(bn_param["running_var"], t_var.numpy(), name="running_var")


def test_spatial_batchnorm_is_batchnorm_on_channels_last_rows():
    x, gamma, beta = arrays(3, (2, 3, 4, 5), 3)
    out, _ = F.spatial_batchnorm(x, gamma, beta, {"mode": "train"})
    rows = x.transpose(0, 2, 3, 1).reshape(-1, 3)
    flat, _ = F.batchnorm(rows, gamma, beta, {"mode": "train"})
    assert_close(out, flat.reshape(2, 4, 5, 3).transpose(0, 3, 1, 2), rtol=1e-13)


# --- layer norm --------------------------------------------------------------------------
@settings(max_examples=12, deadline=None)
@given(seed=seeds, lead=st.lists(st.integers(1, 4), min_size=1, max_size=2), D=st.integers(2, 6))
def test_layernorm_passes_the_checker(seed, lead, D):
    x, gamma, beta = arrays(seed, (*lead, D), D)
    report = gradproof.check_vjp(F.layernorm, F.layernorm_backward, x, gamma, beta)
    _proven_unless_two_values(report, D)


@settings(max_examples=12, deadline=None)
@given(seed=seeds, lead=st.lists(st.integers(1, 4), min_size=1, max_size=2), D=st.integers(2, 7))
def test_layernorm_matches_torch(seed, lead, D):
    x, gamma, beta = arrays(seed, (*lead, D), D)
    out, cache = F.layernorm(x, gamma, beta, {"mode": "train"})  # CS231n passes a mode: ignored
    dout = random_like(out, seed=seed)
    t_out, t_grads = torch_vjp(
        lambda x, g, b: TF.layer_norm(x, (D,), g, b, 1e-5), [x, gamma, beta], dout
    )
    assert_close(out, t_out, name="out")
    assert_grads_match(F.layernorm_backward(dout, cache), t_grads, dout, cache)


def test_layernorm_of_a_single_feature_is_beta_with_zero_gradient():
    x, gamma, beta = arrays(1, (4, 1), 1)
    out, cache = F.layernorm(x, gamma, beta)
    np.testing.assert_array_equal(out, np.broadcast_to(beta, (4, 1)))
    dx, dgamma, _ = F.layernorm_backward(np.ones((4, 1)), cache)
    np.testing.assert_array_equal(dx, 0.0)
    np.testing.assert_array_equal(dgamma, 0.0)


def test_layernorm_hand_computed_case():
    s = math.sqrt(1.5)  # the batch-norm case, transposed: one example with features 0, 1, 2
    out, cache = F.layernorm(
        np.array([[0.0, 1.0, 2.0]]), np.full(3, 2.0), np.full(3, 0.5), {"eps": 0.0}
    )
    np.testing.assert_allclose(out, [[0.5 - 2 * s, 0.5, 0.5 + 2 * s]], rtol=1e-15)
    dx, dgamma, dbeta = F.layernorm_backward(np.array([[1.0, 0.0, 0.0]]), cache)
    np.testing.assert_allclose(dx, [2 * s / 3 * np.array([0.5, -1.0, 0.5])], rtol=1e-14)
    np.testing.assert_allclose(dgamma, [-s, 0.0, 0.0], rtol=1e-15, atol=1e-15)
    np.testing.assert_array_equal(dbeta, [1.0, 0.0, 0.0])


# --- group norm --------------------------------------------------------------------------
def group_inputs(seed, N, G, per_group, H, W, torch_shaped: bool):
    C = G * per_group
    return arrays(seed, (N, C, H, W), C, param_shape=(C,) if torch_shaped else (1, C, 1, 1))


@pytest.mark.parametrize("torch_shaped", [False, True], ids=["gamma(1,C,1,1)", "gamma(C,)"])
@settings(max_examples=10, deadline=None)
@given(
    seed=seeds,
    N=st.integers(1, 2),
    G=st.integers(1, 3),
    per_group=st.integers(1, 2),
    H=st.integers(1, 3),
    W=st.integers(2, 3),
)
def test_groupnorm_passes_the_checker(torch_shaped, seed, N, G, per_group, H, W):
    x, gamma, beta = group_inputs(seed, N, G, per_group, H, W, torch_shaped)
    report = gradproof.check_vjp(F.groupnorm, F.groupnorm_backward, x, gamma, beta, G)
    _proven_unless_two_values(report, per_group * H * W)


@pytest.mark.parametrize("torch_shaped", [False, True], ids=["gamma(1,C,1,1)", "gamma(C,)"])
@settings(max_examples=10, deadline=None)
@given(
    seed=seeds,
    N=st.integers(1, 3),
    G=st.integers(1, 3),
    per_group=st.integers(1, 3),
    H=st.integers(1, 3),
    W=st.integers(2, 3),  # torch refuses groups of one value
)
def test_groupnorm_matches_torch(torch_shaped, seed, N, G, per_group, H, W):
    x, gamma, beta = group_inputs(seed, N, G, per_group, H, W, torch_shaped)
    C = x.shape[1]
    out, cache = F.groupnorm(x, gamma, beta, G, {})
    dout = random_like(out, seed=seed)
    t_out, t_grads = torch_vjp(
        lambda x, g, b: TF.group_norm(x, G, g.reshape(C), b.reshape(C), 1e-5),
        [x, gamma, beta],
        dout,
    )
    assert_close(out, t_out, name="out")
    dx, dgamma, dbeta = F.groupnorm_backward(dout, cache)
    assert dgamma.shape == gamma.shape and dbeta.shape == beta.shape
    assert_grads_match((dx, dgamma, dbeta), t_grads, dout, cache)


def test_groupnorm_hand_computed_case():
    # one example, channels 0 and 2 in one group: mean 1, var 1, xhat = (-1, 1)
    x = np.array([0.0, 2.0]).reshape(1, 2, 1, 1)
    gamma, beta = np.array([1.0, 3.0]).reshape(1, 2, 1, 1), np.array([0.0, 1.0]).reshape(1, 2, 1, 1)
    out, cache = F.groupnorm(x, gamma, beta, 1, {"eps": 0.0})
    np.testing.assert_array_equal(out.ravel(), [-1.0, 4.0])
    dx, dgamma, dbeta = F.groupnorm_backward(np.array([1.0, 1.0]).reshape(1, 2, 1, 1), cache)
    np.testing.assert_array_equal(dgamma.ravel(), [-1.0, 1.0])
    np.testing.assert_array_equal(dbeta.ravel(), [1.0, 1.0])
    # dxhat = (1, 3): dx = dxhat - mean(dxhat) - xhat * mean(dxhat * xhat) = (-1, 1) - (-1, 1)
    np.testing.assert_allclose(dx.ravel(), [0.0, 0.0], atol=1e-15)


def test_groupnorm_with_one_channel_per_group_is_instance_norm():
    x, gamma, beta = arrays(4, (2, 3, 4, 4), 3, param_shape=(3,))
    out, _ = F.groupnorm(x, gamma, beta, 3)
    t_out = TF.instance_norm(
        torch.tensor(x), weight=torch.tensor(gamma), bias=torch.tensor(beta), eps=1e-5
    )
    assert_close(out, t_out.numpy())


def test_spatial_groupnorm_names_are_groupnorm():
    assert F.spatial_groupnorm is F.groupnorm is F.spatial_groupnorm_forward
    assert F.spatial_groupnorm_backward is F.groupnorm_backward


# --- dtypes ----------------------------------------------------------------------------------
def with_param(layer, *args):
    """``layer`` as a function of (x, gamma, beta) only; dicts are copied on each call."""
    return lambda x, gamma, beta: layer(
        x, gamma, beta, *(dict(a) if isinstance(a, dict) else a for a in args)
    )


TRAIN, TEST = {"mode": "train"}, {"mode": "test"}
NORMS = [
    ("batchnorm", with_param(F.batchnorm, TRAIN), F.batchnorm_backward, (6, 4), (4,)),
    ("batchnorm_alt", with_param(F.batchnorm, TRAIN), F.batchnorm_backward_alt, (6, 4), (4,)),
    (
        "spatial",
        with_param(F.spatial_batchnorm, TEST),
        F.spatial_batchnorm_backward,
        (2, 4, 3, 3),
        (4,),
    ),
    ("layernorm", F.layernorm, F.layernorm_backward, (3, 5), (5,)),
    ("groupnorm", with_param(F.groupnorm, 2), F.groupnorm_backward, (2, 4, 3, 3), (1, 4, 1, 1)),
]


@pytest.mark.parametrize(
    "name, forward, backward, x_shape, p_shape", NORMS, ids=[n[0] for n in NORMS]
)
def test_float32_in_float32_out_and_checked(name, forward, backward, x_shape, p_shape):
    x, gamma, beta = arrays(9, x_shape, None, np.float32, param_shape=p_shape)
    out, cache = forward(x, gamma, beta)
    grads = backward(np.ones_like(out), cache)
    assert out.dtype == np.float32
    assert [g.dtype for g in grads] == [np.float32] * 3
    assert [g.shape for g in grads] == [x.shape, gamma.shape, beta.shape]
    gradproof.check_vjp(forward, backward, x, gamma, beta).raise_if_failed()


# --- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bn_param", [{}, {"mode": "eval"}, None])
def test_batchnorm_mode_is_required(bn_param):
    with pytest.raises(InputError, match=r"bn_param\['mode'\] must be 'train' or 'test'"):
        F.batchnorm(*arrays(0, (3, 2), 2), bn_param)


def test_batchnorm_momentum_must_be_in_0_1():
    with pytest.raises(
        InputError, match=r"bn_param\['momentum'\] must be a number in \[0, 1\]"
    ):
        F.batchnorm(*arrays(0, (3, 2), 2), {"mode": "train", "momentum": 1.5})


def test_batchnorm_running_stats_must_have_one_value_per_channel():
    with pytest.raises(InputError, match=r"bn_param\['running_var'\] must have shape \(C,\)"):
        F.batchnorm(*arrays(0, (3, 2), 2), {"mode": "test", "running_var": np.ones(3)})


def test_batchnorm_gamma_shape_is_checked():
    x, _, beta = arrays(0, (3, 2), 2)
    with pytest.raises(InputError, match=r"gamma must have shape \(D,\) with D = x.shape\[1\]"):
        F.batchnorm(x, np.ones(3), beta, {"mode": "train"})


def test_batchnorm_wants_two_dimensions_and_points_to_spatial():
    with pytest.raises(InputError, match="use spatial_batchnorm"):
        F.batchnorm(np.ones((2, 3, 4, 4)), np.ones(3), np.ones(3), {"mode": "train"})


def test_groupnorm_groups_must_divide_channels():
    x, gamma, beta = arrays(0, (1, 6, 2, 2), 6, param_shape=(6,))
    with pytest.raises(InputError, match="G must be a positive integer dividing C = 6, got 4"):
        F.groupnorm(x, gamma, beta, 4)


def test_backward_names_the_right_backward_for_a_foreign_cache():
    _, cache = F.layernorm(*arrays(0, (3, 4), 4))
    with pytest.raises(InputError, match=r"use layernorm_backward\(\)"):
        F.batchnorm_backward(np.ones((3, 4)), cache)


def test_ln_param_must_be_a_dict():
    with pytest.raises(InputTypeError, match="ln_param must be a dict"):
        F.layernorm(*arrays(0, (3, 4), 4), ln_param=1e-5)


def test_cs231n_names_are_the_same_functions():
    assert F.batchnorm_forward is F.batchnorm
    assert F.layernorm_forward is F.layernorm
    assert F.spatial_batchnorm_forward is F.spatial_batchnorm


def test_batchnorm_core_takes_the_running_statistics_and_the_new_value_weight_explicitly():
    x, gamma, beta = arrays(5, (6, 3), 3)
    mean0, var0 = np.full(3, 0.5), np.full(3, 2.0)
    out, _, mean1, var1 = F.batchnorm_core(x, gamma, beta, mean0, var0, train=True, eps=1e-5,
                                           new_weight=0.25)
    param = {"mode": "train", "momentum": 0.75, "running_mean": mean0, "running_var": var0}
    face_out, _ = F.batchnorm(x, gamma, beta, param)
    np.testing.assert_allclose(out, face_out, rtol=1e-15)
    np.testing.assert_allclose(mean1, 0.75 * 0.5 + 0.25 * x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(var1, 0.75 * 2.0 + 0.25 * x.var(axis=0), rtol=1e-14)
    np.testing.assert_allclose(param["running_var"], var1, rtol=1e-14)
    assert (mean0 == 0.5).all() and (var0 == 2.0).all()  # given arrays untouched


def test_batchnorm1d_keeps_its_running_statistics_and_calls_the_core():
    bn = BatchNorm1d(3, momentum=0.25)
    x = arrays(6, (8, 3), 3)[0]
    bn.forward(x)
    np.testing.assert_allclose(bn.running_mean, 0.25 * x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(bn.running_var, 0.75 + 0.25 * x.var(axis=0, ddof=1), rtol=1e-14)

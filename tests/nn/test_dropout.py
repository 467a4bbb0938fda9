"""Dropout: p_drop vs p_keep, seeding, checker, torch's semantics, CS231n's alias, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_oracle import random_like, to_numpy, torch_vjp

import gradproof
from gradproof.errors import InputError, InputTypeError
from gradproof.nn.functional import dropout, dropout_backward, dropout_forward

seeds = st.integers(0, 2**32 - 1)
shapes = st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple)


def sample(seed: int, shape: tuple, dtype=np.float64) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("mode", ["train", "test"])
@settings(max_examples=12, deadline=None)
@given(seed=seeds, shape=shapes, p_drop=st.floats(0.0, 0.9))
def test_seeded_dropout_passes_the_checker(mode, seed, shape, p_drop):
    param = {"p_drop": p_drop, "mode": mode, "seed": seed % 2**31}
    gradproof.check_vjp(dropout, dropout_backward, sample(seed, shape), param).raise_if_failed()


@settings(max_examples=12, deadline=None)
@given(seed=seeds, shape=shapes, p_drop=st.floats(0.0, 0.9))
def test_train_mode_scales_kept_units_like_torch(seed, shape, p_drop):
    # torch's p is the drop probability: kept units are scaled by 1 / (1 - p). Compare
    # forward and gradient with torch's on the units each kept (their masks differ).
    x = sample(seed, shape) + 3.0  # no exact zeros
    out, cache = dropout(x, {"p_drop": p_drop, "mode": "train", "seed": 7})
    dout = random_like(x, seed=seed)
    torch.manual_seed(seed % 2**31)
    t_out, (t_dx,) = torch_vjp(lambda t: TF.dropout(t, p_drop, training=True), [x], dout)
    dx = dropout_backward(dout, cache)
    ours, theirs = out != 0, t_out != 0
    np.testing.assert_allclose(out[ours] / x[ours], 1 / (1 - p_drop), rtol=1e-15)
    np.testing.assert_allclose(t_out[theirs] / x[theirs], 1 / (1 - p_drop), rtol=1e-15)
    np.testing.assert_allclose(dx[ours], dout[ours] / (1 - p_drop), rtol=1e-15)
    np.testing.assert_allclose(t_dx[theirs], dout[theirs] / (1 - p_drop), rtol=1e-15)
    np.testing.assert_array_equal(dx[~ours], 0.0)


@pytest.mark.parametrize("p_drop", [0.1, 0.5, 0.8])
def test_p_drop_is_the_fraction_dropped_as_torchs_p(p_drop):
    x = np.ones(200_000)
    out, _ = dropout(x, {"p_drop": p_drop, "mode": "train", "seed": 0})
    t_out = to_numpy(TF.dropout(torch.ones(200_000, dtype=torch.float64), p_drop, training=True))
    sigma = np.sqrt(p_drop * (1 - p_drop) / x.size)
    assert abs(np.mean(out == 0) - p_drop) < 5 * sigma
    assert abs(np.mean(t_out == 0) - p_drop) < 5 * sigma
    assert abs(out.mean() - 1) < 5 * sigma / (1 - p_drop)  # inverted: the mean is kept


def test_test_mode_is_the_identity_like_torch_eval():
    x = sample(0, (3, 4))
    out, cache = dropout(x, {"p_drop": 0.5, "mode": "test"})
    dout = random_like(x)
    t_out, (t_dx,) = torch_vjp(lambda t: TF.dropout(t, 0.5, training=False), [x], dout)
    np.testing.assert_array_equal(out, t_out)
    np.testing.assert_array_equal(dropout_backward(dout, cache), t_dx)
    assert out is not x


def test_hand_computed_mask_from_a_seed():
    # np.random.RandomState(0).random_sample(4) = 0.5488, 0.7152, 0.6028, 0.5449:
    # kept where below p_keep = 0.6 (units 0 and 3), scaled by 1 / 0.6
    out, cache = dropout(
        np.array([1.0, 2.0, 3.0, 4.0]), {"p_keep": 0.6, "mode": "train", "seed": 0}
    )
    np.testing.assert_allclose(out, [1 / 0.6, 0.0, 0.0, 4 / 0.6], rtol=1e-15)
    np.testing.assert_allclose(dropout_backward(np.ones(4), cache), [1 / 0.6, 0, 0, 1 / 0.6])


def test_p_drop_and_p_keep_are_complements():
    x = sample(1, (50, 40))
    a, _ = dropout(x, {"p_drop": 0.25, "mode": "train", "seed": 3})
    b, _ = dropout(x, {"p_keep": 0.75, "mode": "train", "seed": 3})
    np.testing.assert_array_equal(a, b)


def test_cs231n_alias_reads_p_as_the_keep_probability():
    x = sample(2, (40, 50))
    a, _ = dropout_forward(x, {"p": 0.3, "mode": "train", "seed": 5})
    b, _ = dropout(x, {"p_keep": 0.3, "mode": "train", "seed": 5})
    np.testing.assert_array_equal(a, b)


def test_seed_gives_cs231n_mask_without_touching_the_global_generator():
    x = np.ones((30, 30))
    np.random.seed(123)
    cs231n_mask = (np.random.rand(*x.shape) < 0.4) / 0.4  # CS231n's own recipe
    np.random.seed(99)
    before = np.random.get_state()[1].copy()
    out, _ = dropout_forward(x, {"p": 0.4, "mode": "train", "seed": 123})
    np.testing.assert_array_equal(out, x * cs231n_mask)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_without_seed_the_global_generator_decides():
    x = np.ones(1000)
    np.random.seed(4)
    a, _ = dropout(x, {"p_drop": 0.5, "mode": "train"})
    np.random.seed(4)
    b, _ = dropout(x, {"p_drop": 0.5, "mode": "train"})
    c, _ = dropout(x, {"p_drop": 0.5, "mode": "train"})
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_generator_advances_between_calls_and_is_reproducible():
    x = np.ones(1000)
    first = [dropout(x, {"p_drop": 0.5, "mode": "train", "rng": np.random.default_rng(8)})[0]]
    rng = np.random.default_rng(8)
    a, _ = dropout(x, {"p_drop": 0.5, "mode": "train", "rng": rng})
    b, _ = dropout(x, {"p_drop": 0.5, "mode": "train", "rng": rng})
    np.testing.assert_array_equal(a, first[0])
    assert not np.array_equal(a, b)


def test_p_keep_of_one_keeps_everything():
    x = sample(3, (5, 5))
    out, cache = dropout(x, {"p_keep": 1.0, "mode": "train", "seed": 0})
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_float32_in_float32_out(mode):
    x = sample(4, (6, 7), np.float32)
    out, cache = dropout(x, {"p_drop": 0.3, "mode": mode, "seed": 1})
    dx = dropout_backward(np.ones_like(out), cache)
    assert out.dtype == np.float32 and dx.dtype == np.float32


# --- errors ---------------------------------------------------------------------------
def test_bare_p_is_refused_as_ambiguous_with_the_fix():
    with pytest.raises(InputError) as info:
        dropout(np.ones(3), {"p": 0.5, "mode": "train"})
    message = str(info.value)
    assert "ambiguous" in message and "'p_drop'" in message and "dropout_forward" in message


@pytest.mark.parametrize(
    "param, fragment",
    [
        ({"mode": "train"}, "exactly one of 'p_drop'"),
        ({"p_drop": 0.2, "p_keep": 0.8, "mode": "train"}, "exactly one of 'p_drop'"),
        (
            {"p_drop": 1.0, "mode": "train"},
            "probability of DROPPING a unit, so it must be in [0, 1)",
        ),
        (
            {"p_keep": 0.0, "mode": "train"},
            "probability of KEEPING a unit, so it must be in (0, 1]",
        ),
        ({"p_drop": 0.5}, "dropout_param['mode'] must be 'train' or 'test'"),
        ({"p_drop": 0.5, "mode": "train", "seed": 1, "rng": np.random.default_rng()}, "not both"),
        ({"p_drop": 0.5, "mode": "train", "seed": -1}, "seed'] must be an int >= 0"),
    ],
)
def test_invalid_options_are_reported(param, fragment):
    with pytest.raises(InputError) as info:
        dropout(np.ones(3), param)
    assert fragment in str(info.value)


def test_cs231n_alias_checks_the_keep_probability_range():
    with pytest.raises(InputError, match="probability of KEEPING"):
        dropout_forward(np.ones(3), {"p": 0.0, "mode": "train"})


def test_rng_must_be_a_generator():
    with pytest.raises(InputTypeError, match="must be an np.random.Generator"):
        dropout(np.ones(3), {"p_drop": 0.5, "mode": "train", "rng": 3})


def test_dropout_param_must_be_a_dict():
    with pytest.raises(InputTypeError, match="dropout_param must be a dict"):
        dropout(np.ones(3), 0.5)

"""Embedding: the checker, torch.nn.functional.embedding, hand-computed cases, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_oracle import assert_close, random_like, torch_vjp

import gradproof
from gradproof.errors import InputError, InputTypeError
from gradproof.nn.functional import (
    embedding,
    embedding_backward,
    word_embedding_backward,
    word_embedding_forward,
)


@st.composite
def lookups(draw):
    """(idx, W) with a small vocabulary, so indices repeat; idx[0, 0] == idx[-1, -1] always."""
    N, T = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    V, D = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    idx = rng.integers(0, V, size=(N, T))
    idx[-1, -1] = idx[0, 0]
    return idx, rng.standard_normal((V, D))


@settings(max_examples=20, deadline=None)
@given(lookups())
def test_embedding_backward_passes_check_vjp(case):
    idx, W = case
    gradproof.check_vjp(embedding, embedding_backward, idx, W).raise_if_failed()


@settings(max_examples=15, deadline=None)
@given(lookups())
def test_embedding_matches_torch_forward_and_gradient(case):
    idx, W = case
    out, cache = embedding(idx, W)
    dout = random_like(out, seed=1)
    t_out, (_, t_dW) = torch_vjp(torch.nn.functional.embedding, [idx, W], dout)
    assert_close(out, t_out, name="out")
    _, dW = embedding_backward(dout, cache)
    assert_close(dW, t_dW, name="dW")


def test_repeated_indices_accumulate_their_gradients():
    W = np.zeros((3, 2))
    idx = np.array([[1, 1, 1], [0, 1, 2]])
    dout = np.arange(12, dtype=float).reshape(2, 3, 2)
    _, cache = embedding(idx, W)
    _, dW = embedding_backward(dout, cache)
    expected = np.array(
        [
            [6.0, 7.0],  # row 0: only (1, 0)
            [0 + 2 + 4 + 8, 1 + 3 + 5 + 9],  # row 1: (0, 0), (0, 1), (0, 2), (1, 1)
            [10.0, 11.0],  # row 2: only (1, 2)
        ]
    )
    np.testing.assert_array_equal(dW, expected)


def test_checker_catches_the_overwrite_bug_on_repeated_indices():
    """``dW[idx] += dout`` keeps one write per repeated index; the checker must say so."""

    def overwrite_backward(dout, cache):
        idx, shape, dtype = cache
        dW = np.zeros(shape, dtype)
        dW[idx] += dout
        return None, dW

    idx = np.array([[0, 0, 1]])
    W = np.random.default_rng(0).standard_normal((2, 3))
    assert not gradproof.check_vjp(embedding, overwrite_backward, idx, W).ok


def test_embedding_picks_rows_by_hand():
    W = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    out, _ = embedding(np.array([[2, 0], [1, 2]]), W)
    np.testing.assert_array_equal(out, [[[4, 5], [0, 1]], [[2, 3], [4, 5]]])


def test_cs231n_alias_returns_dW_alone_and_the_same_values():
    rng = np.random.default_rng(3)
    idx, W = rng.integers(0, 4, size=(2, 5)), rng.standard_normal((4, 3))
    out, cache = word_embedding_forward(idx, W)
    dout = rng.standard_normal(out.shape)
    dW = word_embedding_backward(dout, cache)
    assert isinstance(dW, np.ndarray)
    np.testing.assert_array_equal(dW, embedding_backward(dout, cache)[1])
    gradproof.check_vjp(word_embedding_forward, word_embedding_backward, idx, W).raise_if_failed()


def test_float32_weights_keep_their_dtype():
    W = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    out, cache = embedding(np.array([[0, 4, 4]]), W)
    _, dW = embedding_backward(np.ones_like(out), cache)
    assert out.dtype == np.float32 and dW.dtype == np.float32


@pytest.mark.parametrize(
    "idx, error, words",
    [
        (np.array([[0, 5]]), InputError, "idx must hold indices in [0, V"),
        (np.array([[0, -1]]), InputError, "got -1"),
        (np.array([[0.0, 1.0]]), InputTypeError, "idx must be an integer"),
        (np.array([[True, False]]), InputTypeError, "idx must be an integer"),
        (np.zeros((2, 0), dtype=int), InputError, "at least one index"),
    ],
)
def test_bad_indices_raise_errors_naming_idx(idx, error, words):
    with pytest.raises(error) as info:
        embedding(idx, np.ones((5, 2)))
    assert words in str(info.value)


def test_weights_must_be_a_float_matrix():
    with pytest.raises(InputError, match="W must have 2 dimensions"):
        embedding(np.array([[0]]), np.ones(5))
    with pytest.raises(InputTypeError, match="W must be a float"):
        embedding(np.array([[0]]), np.ones((5, 2), dtype=int))

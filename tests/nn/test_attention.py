"""Attention and the transformer block: the checker, PyTorch (F.scaled_dot_product_attention,
nn.MultiheadAttention, nn.TransformerEncoderLayer with weights mapped), hand cases, bad input."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sequence_oracle import assert_grads_close
from torch_oracle import assert_close, random_like, torch_vjp

import gradproof
from gradproof.errors import InputError, InputTypeError
from gradproof.nn import functional as F


def causal_tri(S, T):
    return np.tri(S, T, dtype=bool)  # [s, t] = t <= s


# --- scaled dot-product attention -----------------------------------------------------------


@st.composite
def attention_inputs(draw):
    """q, k, v with a batch axis and a head axis, and a mask kind: none, causal, random."""
    B, h = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    S, T = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    d, dv = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    q, k, v = (rng.standard_normal((B, h, L, w)) for L, w in ((S, d), (T, d), (T, dv)))
    kind = draw(st.sampled_from(["none", "causal", "random"]))
    mask = None
    if kind == "random":
        mask = rng.random((B, 1, S, T)) < 0.6
        mask[..., 0] = True  # every query sees at least key 0
    return q, k, v, mask, kind == "causal"


@settings(max_examples=20, deadline=None)
@given(attention_inputs())
def test_scaled_dot_product_attention_passes_check_vjp(case):
    q, k, v, mask, causal = case
    forward = functools.partial(F.scaled_dot_product_attention, mask=mask, causal=causal)
    gradproof.check_vjp(forward, F.scaled_dot_product_attention_backward, q, k, v).raise_if_failed()


@settings(max_examples=15, deadline=None)
@given(attention_inputs())
def test_scaled_dot_product_attention_matches_torch(case):
    q, k, v, mask, causal = case
    allowed = mask
    if causal:  # torch refuses attn_mask together with is_causal: give it the combined mask
        allowed = causal_tri(q.shape[-2], k.shape[-2])
    out, cache = F.scaled_dot_product_attention(q, k, v, mask, causal)
    dout = random_like(out, seed=2)
    t_out, t_grads = torch_vjp(
        torch.nn.functional.scaled_dot_product_attention, [q, k, v], dout,
        kwargs={"attn_mask": None if allowed is None else torch.tensor(allowed)},
    )  # fmt: skip
    assert_close(out, t_out, name="out")
    assert_grads_close(F.scaled_dot_product_attention_backward(dout, cache), t_grads, "qkv")


def test_attention_with_one_key_copies_its_value_and_sends_no_gradient_to_q_and_k():
    q, k = np.array([[1.0, 2.0], [3.0, -1.0]]), np.array([[0.5, 0.5]])
    v = np.array([[7.0, -3.0, 2.0]])
    out, cache = F.scaled_dot_product_attention(q, k, v)
    np.testing.assert_array_equal(out, np.repeat(v, 2, axis=0))
    dq, dk, dv = F.scaled_dot_product_attention_backward(np.ones((2, 3)), cache)
    assert not dq.any() and not dk.any()
    np.testing.assert_array_equal(dv, [[2.0, 2.0, 2.0]])


def test_causal_attention_by_hand():
    """Query 0 sees key 0 only; query 1 averages both values when the scores tie."""
    q = np.zeros((2, 1))
    k = np.zeros((2, 1))
    v = np.array([[1.0], [3.0]])
    out, _ = F.scaled_dot_product_attention(q, k, v, causal=True)
    np.testing.assert_allclose(out, [[1.0], [2.0]], rtol=1e-15)


# --- multi-head self- and cross-attention -----------------------------------------------------


def mha_params(rng, E, Ek=None, Ev=None):
    """Wq, Wk, Wv, Wo, bq, bk, bv, bo (gradproof layout: x @ W + b)."""
    Ek, Ev = Ek or E, Ev or E
    weights = [rng.standard_normal((n, E)) / np.sqrt(n) for n in (E, Ek, Ev, E)]
    return [*weights, *(0.3 * rng.standard_normal(E) for _ in range(4))]


def torch_mha_params(Wq, Wk, Wv, Wo, bq, bk, bv, bo, same_dims=True):
    """torch.nn.MultiheadAttention's parameter names for our weights (torch stores W.T)."""
    if same_dims:
        cat = torch.cat if isinstance(Wq, torch.Tensor) else np.concatenate
        projections = {"in_proj_weight": cat([Wq.T, Wk.T, Wv.T])}
    else:
        projections = {"q_proj_weight": Wq.T, "k_proj_weight": Wk.T, "v_proj_weight": Wv.T}
    cat = torch.cat if isinstance(bq, torch.Tensor) else np.concatenate
    return {
        **projections,
        "in_proj_bias": cat([bq, bk, bv]),
        "out_proj.weight": Wo.T,
        "out_proj.bias": bo,
    }


@st.composite
def mha_inputs(draw):
    N, T = draw(st.integers(1, 2)), draw(st.integers(1, 4))
    h, head = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((N, T, h * head))
    return x, mha_params(rng, h * head), h, draw(st.booleans())


@settings(max_examples=12, deadline=None)
@given(mha_inputs())
def test_multi_head_attention_passes_check_vjp(case):
    x, params, h, causal = case
    forward = functools.partial(F.multi_head_attention, num_heads=h, causal=causal)
    gradproof.check_vjp(forward, F.multi_head_attention_backward, x, *params).raise_if_failed()


@settings(max_examples=10, deadline=None)
@given(mha_inputs())
def test_multi_head_attention_matches_torch_multihead_attention(case):
    x, params, h, causal = case
    N, T, E = x.shape
    module = torch.nn.MultiheadAttention(E, h, batch_first=True).double()
    # torch's boolean attn_mask marks the pairs that may NOT attend
    blocked = torch.tensor(~causal_tri(T, T)) if causal else None

    def torch_self_attention(x, *params):
        p = torch_mha_params(*params)
        out, _ = torch.func.functional_call(module, p, (x, x, x), {"attn_mask": blocked})
        return out

    out, cache = F.multi_head_attention(x, *params, h, causal)
    dout = random_like(out, seed=3)
    t_out, t_grads = torch_vjp(torch_self_attention, [x, *params], dout)
    assert_close(out, t_out, name="out")
    grads = F.multi_head_attention_backward(dout, cache)
    assert_grads_close(grads, t_grads, ["x", *F.MHA_PARAMS])


def test_cross_attention_with_per_sequence_masks_matches_torch():
    """Keys and values from a context of another length and width (kdim = vdim = Ec)."""
    N, S, T, E, Ec, h = 2, 3, 5, 4, 6, 2
    rng = np.random.default_rng(5)
    x, context = rng.standard_normal((N, S, E)), rng.standard_normal((N, T, Ec))
    params = mha_params(rng, E, Ek=Ec, Ev=Ec)
    mask = rng.random((N, S, T)) < 0.5
    mask[..., 1] = True
    module = torch.nn.MultiheadAttention(E, h, batch_first=True, kdim=Ec, vdim=Ec).double()
    blocked = torch.tensor(np.repeat(~mask, h, axis=0))  # (N * h, S, T), batch-major

    def torch_cross_attention(x, context, *params):
        p = torch_mha_params(*params, same_dims=False)
        args, kwargs = (x, context, context), {"attn_mask": blocked}
        return torch.func.functional_call(module, p, args, kwargs)[0]

    out, cache = F.multi_head_cross_attention(x, context, *params, h, mask)
    dout = random_like(out, seed=6)
    t_out, t_grads = torch_vjp(torch_cross_attention, [x, context, *params], dout)
    assert_close(out, t_out, name="out")
    grads = F.multi_head_cross_attention_backward(dout, cache)
    assert_grads_close(grads, t_grads, ["x", "context", *F.MHA_PARAMS])
    forward = functools.partial(F.multi_head_cross_attention, num_heads=h, mask=mask)
    report = gradproof.check_vjp(forward, F.multi_head_cross_attention_backward, x, context,
                                 *params)  # fmt: skip
    report.raise_if_failed()


# --- transformer block --------------------------------------------------------------------------

TORCH_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_tanh": functools.partial(torch.nn.functional.gelu, approximate="tanh"),
    "relu": "relu",
}


def block_params(rng, E, Fd):
    p = {"ln1_gamma": 1 + 0.2 * rng.standard_normal(E), "ln1_beta": 0.2 * rng.standard_normal(E)}
    p.update(zip(F.MHA_PARAMS, mha_params(rng, E)))
    p["ln2_gamma"], p["ln2_beta"] = 1 + 0.2 * rng.standard_normal(E), 0.2 * rng.standard_normal(E)
    p["W1"], p["b1"] = rng.standard_normal((E, Fd)) / np.sqrt(E), 0.3 * rng.standard_normal(Fd)
    p["W2"], p["b2"] = rng.standard_normal((Fd, E)) / np.sqrt(Fd), 0.3 * rng.standard_normal(E)
    return [p[name] for name in F.TRANSFORMER_BLOCK_PARAMS]


@st.composite
def block_inputs(draw):
    N, T = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, Fd = draw(st.integers(1, 2)), draw(st.integers(1, 5))
    # E >= 3: a layer norm over one feature outputs beta whatever x is, and over two it
    # outputs +-1 (times gamma, plus beta): the attention's query/key gradients are then
    # zero up to eps's effect, below what the forward's rounding shows (inconclusive)
    E = h * draw(st.integers(3 if h == 1 else 2, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((N, T, E))
    causal, activation = draw(st.booleans()), draw(st.sampled_from(sorted(TORCH_ACTIVATIONS)))
    return x, block_params(rng, E, Fd), h, causal, activation


@settings(max_examples=10, deadline=None)
@given(block_inputs())
def test_transformer_block_passes_check_vjp(case):
    x, params, h, causal, activation = case
    forward = functools.partial(
        F.transformer_block, num_heads=h, causal=causal, activation=activation
    )
    gradproof.check_vjp(forward, F.transformer_block_backward, x, *params).raise_if_failed()


@settings(max_examples=8, deadline=None)
@given(block_inputs())
def test_transformer_block_matches_torch_pre_ln_encoder_layer(case):
    x, params, h, causal, activation = case
    N, T, E = x.shape
    Fd = params[F.TRANSFORMER_BLOCK_PARAMS.index("W1")].shape[1]
    layer = torch.nn.TransformerEncoderLayer(
        E, h, Fd, dropout=0.0, activation=TORCH_ACTIVATIONS[activation], batch_first=True,
        norm_first=True,
    ).double()
    blocked = torch.tensor(~causal_tri(T, T)) if causal else None

    def torch_block(x, g1, be1, Wq, Wk, Wv, Wo, bq, bk, bv, bo, g2, be2, W1, b1, W2, b2):
        mha = torch_mha_params(Wq, Wk, Wv, Wo, bq, bk, bv, bo)
        p = {f"self_attn.{k}": v for k, v in mha.items()}
        p.update({"norm1.weight": g1, "norm1.bias": be1, "norm2.weight": g2, "norm2.bias": be2,
                  "linear1.weight": W1.T, "linear1.bias": b1,
                  "linear2.weight": W2.T, "linear2.bias": b2})  # fmt: skip
        return torch.func.functional_call(layer, p, (x,), {"src_mask": blocked})

    out, cache = F.transformer_block(x, *params, h, causal, activation)
    dout = random_like(out, seed=7)
    t_out, t_grads = torch_vjp(torch_block, [x, *params], dout)
    assert_close(out, t_out, name="out")
    grads = F.transformer_block_backward(dout, cache)
    assert_grads_close(grads, t_grads, ["x", *F.TRANSFORMER_BLOCK_PARAMS])


# --- positional encoding -------------------------------------------------------------------------


def test_positional_encoding_by_hand():
    pe = positional = F.positional_encoding(3, 4)
    assert pe.shape == (3, 4)
    np.testing.assert_array_equal(positional[0], [0.0, 1.0, 0.0, 1.0])  # sin 0, cos 0
    # position 2, pair i = 1: frequency 10000 ** (-2/4) = 1/100
    np.testing.assert_allclose(pe[2], [np.sin(2), np.cos(2), np.sin(0.02), np.cos(0.02)], 1e-15)


def test_positional_encoding_with_odd_width_and_float32():
    pe = F.positional_encoding(5, 3, dtype=np.float32)
    assert pe.shape == (5, 3) and pe.dtype == np.float32
    np.testing.assert_allclose(pe[:, 2], np.sin(np.arange(5) * 10000 ** (-2 / 3)), rtol=1e-6)


# --- bad input ----------------------------------------------------------------------------------


def _self_attention_inputs(E=6, T=3):
    rng = np.random.default_rng(0)
    return rng.standard_normal((2, T, E)), mha_params(rng, E)


def test_num_heads_must_divide_the_width():
    x, params = _self_attention_inputs(E=6)
    with pytest.raises(InputError, match="num_heads must be a positive divisor of E"):
        F.multi_head_attention(x, *params, 4)
    with pytest.raises(InputTypeError, match="num_heads must be a positive int"):
        F.multi_head_attention(x, *params, 2.0)


def test_empty_sequence_raises_naming_the_input():
    x, params = _self_attention_inputs(T=0)
    with pytest.raises(InputError, match="query must have at least one time step"):
        F.multi_head_attention(x, *params, 2)
    with pytest.raises(InputError, match="at least one position"):
        F.scaled_dot_product_attention(np.ones((0, 2)), np.ones((0, 2)), np.ones((0, 2)))
    with pytest.raises(InputError, match="T must be a positive int"):
        F.positional_encoding(0, 4)


def test_masks_must_be_boolean_broadcastable_and_leave_every_query_a_key():
    q = np.ones((2, 3, 4))
    with pytest.raises(InputTypeError, match="mask must be a boolean"):
        F.scaled_dot_product_attention(q, q, q, mask=np.ones((3, 3)))
    with pytest.raises(InputError, match="mask must be broadcastable"):
        F.scaled_dot_product_attention(q, q, q, mask=np.ones((2, 2), bool))
    mask = np.ones((3, 3), bool)
    mask[1] = False
    with pytest.raises(InputError, match="leaves a query with no key"):
        F.scaled_dot_product_attention(q, q, q, mask=mask)
    mask = np.ones((3, 3), bool)
    mask[0, 0] = False  # with causal, query 0 may only see key 0
    with pytest.raises(InputError, match="leaves a query with no key"):
        F.scaled_dot_product_attention(q, q, q, mask=mask, causal=True)


def test_mismatched_widths_raise_naming_the_argument():
    x, params = _self_attention_inputs(E=6)
    with pytest.raises(InputError, match=r"query must have shape\[2\] == Wq.shape\[0\]"):
        F.multi_head_attention(x[..., :5], *params, 2)
    with pytest.raises(InputError, match=r"k must have shape\[-1\] == d == q.shape\[-1\]"):
        F.scaled_dot_product_attention(np.ones((2, 3)), np.ones((2, 4)), np.ones((2, 4)))
    rng = np.random.default_rng(1)
    block = block_params(rng, 6, 5)
    with pytest.raises(InputError, match="activation must be one of"):
        F.transformer_block(x, *block, 2, activation="tanh")

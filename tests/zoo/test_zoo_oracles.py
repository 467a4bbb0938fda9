"""The zoo's reference layers against PyTorch autograd (float64, to 1e-10).

Hypothesis draws shapes and options; values are seeded. These are the correct
twins every bug case is compared with, so they must be right.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as tF
from hypothesis import given, settings
from hypothesis import strategies as st

from gradproof.zoo import attention, conv, dense, norm, recurrent

SETTINGS = settings(max_examples=10, deadline=None)


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def assert_matches_torch(forward, backward, torch_fn, inputs, seed=0):
    """Outputs and gradients of the NumPy pair equal torch autograd's for a random dout."""
    out, cache = forward(*inputs)
    outs = _as_tuple(out)
    rng = np.random.default_rng(seed)
    douts = [rng.standard_normal(np.shape(o)) for o in outs]
    grads = _as_tuple(backward(*douts, cache))
    tensors = [torch.tensor(x, requires_grad=True) if x.dtype == np.float64
               else torch.tensor(x) for x in inputs]
    t_outs = _as_tuple(torch_fn(*tensors))
    for o, t_o in zip(outs, t_outs):
        np.testing.assert_allclose(o, t_o.detach().numpy(), rtol=1e-10, atol=1e-12)
    torch.autograd.backward(t_outs, [torch.tensor(d) for d in douts])
    for g, t in zip(grads, tensors):
        if t.requires_grad:
            np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-10, atol=1e-12)
        else:
            assert g is None


@SETTINGS
@given(n=st.integers(1, 2), c=st.integers(1, 3), f=st.integers(1, 3), k=st.integers(1, 3),
       stride=st.integers(1, 3), pad=st.integers(0, 2), extra=st.integers(0, 4),
       seed=st.integers(0, 2**16))
def test_conv_matches_torch(n, c, f, k, stride, pad, extra, seed):
    hw = max(k - 2 * pad, 1) + extra
    inputs = conv.conv_inputs(n, c, hw, f, k)(np.random.default_rng(seed))
    assert_matches_torch(partial(conv.conv_forward, stride=stride, pad=pad), conv.conv_backward,
                         partial(tF.conv2d, stride=stride, padding=pad), inputs)


@SETTINGS
@given(k=st.integers(1, 3), stride=st.integers(1, 3), extra=st.integers(0, 4),
       seed=st.integers(0, 2**16))
def test_pools_match_torch(k, stride, extra, seed):
    x = np.random.default_rng(seed).standard_normal((2, 2, k + extra, k + extra + 1))
    assert_matches_torch(partial(conv.maxpool_forward, k=k, stride=stride),
                         conv.maxpool_backward, partial(tF.max_pool2d, kernel_size=k,
                                                        stride=stride), (x,))
    assert_matches_torch(partial(conv.avgpool_forward, k=k, stride=stride),
                         conv.avgpool_backward, partial(tF.avg_pool2d, kernel_size=k,
                                                        stride=stride), (x,))


@SETTINGS
@given(n=st.integers(2, 6), d=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_norms_match_torch(n, d, seed):
    inputs = norm.norm_inputs(n, d)(np.random.default_rng(seed))
    assert_matches_torch(norm.batchnorm_forward, norm.batchnorm_backward,
                         lambda x, g, b: tF.batch_norm(x, None, None, g, b, training=True,
                                                       eps=norm.EPS), inputs)
    assert_matches_torch(norm.layernorm_forward, norm.layernorm_backward,
                         lambda x, g, b: tF.layer_norm(x, (d,), g, b, eps=norm.EPS), inputs)


@SETTINGS
@given(n=st.integers(1, 3), tq=st.integers(1, 4), tk=st.integers(1, 4), d=st.integers(1, 5),
       dv=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_attention_matches_torch(n, tq, tk, d, dv, seed):
    inputs = attention.attention_inputs(n, tq, tk, d, dv)(np.random.default_rng(seed))

    def torch_attention(q, k, v):
        return torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d), dim=-1) @ v

    assert_matches_torch(attention.attention_forward, attention.attention_backward,
                         torch_attention, inputs)


def _torch_lstm_step(x, h, c, wx, wh, b):
    hid = h.shape[1]
    a = x @ wx + h @ wh + b
    i, f, o = (torch.sigmoid(a[:, k * hid:(k + 1) * hid]) for k in range(3))
    c_next = f * c + i * torch.tanh(a[:, 3 * hid:])
    return o * torch.tanh(c_next), c_next


@SETTINGS
@given(n=st.integers(1, 3), d=st.integers(1, 4), hid=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_lstm_step_matches_torch(n, d, hid, seed):
    inputs = recurrent.lstm_inputs(n, d, hid)(np.random.default_rng(seed))
    assert_matches_torch(recurrent.lstm_step_forward, recurrent.lstm_step_backward,
                         _torch_lstm_step, inputs)


def _torch_rnn(x, h, wx, wh, b):
    hs = []
    for t in range(x.shape[1]):
        h = torch.tanh(x[:, t] @ wx + h @ wh + b)
        hs.append(h)
    return torch.stack(hs, dim=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rnn_matches_torch(seed):
    inputs = recurrent.rnn_inputs(np.random.default_rng(seed))
    assert_matches_torch(recurrent.rnn_forward, recurrent.rnn_backward, _torch_rnn, inputs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_losses_match_torch(seed):
    x, y = dense.scores_and_labels(6, 4)(np.random.default_rng(seed))
    assert_matches_torch(dense.softmax_loss_forward, dense.softmax_loss_backward,
                         tF.cross_entropy, (x, y))
    # torch's multi-margin loss divides each sample's sum by the number of classes
    assert_matches_torch(dense.svm_loss_forward, dense.svm_loss_backward,
                         lambda s, t: 4 * tF.multi_margin_loss(s, t), (x, y))


def test_embedding_with_repeated_indices_matches_torch():
    inputs = dense.embedding_inputs(np.random.default_rng(0))
    assert_matches_torch(dense.embedding_forward, dense.embedding_backward,
                         lambda idx, w: tF.embedding(idx, w), inputs)

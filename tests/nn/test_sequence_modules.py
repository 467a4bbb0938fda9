"""Sequence modules and models: wiring to the functional layers, gradient accumulation,
torch modules with the same weights, check_model, dtype and state, and the two models
(GRU classifier, character LM) on tiny runs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sequence_oracle import assert_grads_close
from torch_oracle import assert_close, random_like

import gradproof
from gradproof.adapters.nn import check_model
from gradproof.errors import InputError, InputTypeError
from gradproof.nn import functional as F
from gradproof.nn import sequence as S
from gradproof.nn.charlm import CharLM
from gradproof.nn.gru_classifier import GRUClassifier

# --- every module against its functional layer -----------------------------------------------

# (module builder, input maker, functional forward, functional backward, parameter names in
# the functional layer's argument order, extra functional arguments)
MODULES = {
    "RNN": (lambda: S.RNN(3, 4, rng=0), (2, 5, 3), F.rnn, F.rnn_backward, ["Wx", "Wh", "b"]),
    "LSTM": (lambda: S.LSTM(3, 4, rng=0), (2, 5, 3), F.lstm, F.lstm_backward, ["Wx", "Wh", "b"]),
    "GRU": (lambda: S.GRU(3, 4, rng=0), (2, 5, 3), F.gru, F.gru_backward,
            ["Wx", "Wh", "bx", "bh"]),
    "MultiHeadAttention": (lambda: S.MultiHeadAttention(6, 2, causal=True, rng=0), (2, 4, 6),
                           F.multi_head_attention, F.multi_head_attention_backward,
                           list(F.MHA_PARAMS)),
    "TransformerBlock": (lambda: S.TransformerBlock(4, 2, 8, causal=True, rng=0), (2, 3, 4),
                         F.transformer_block, F.transformer_block_backward,
                         list(F.TRANSFORMER_BLOCK_PARAMS)),
}  # fmt: skip


def _functional_call(name, module, x):
    _, _, forward, _, params = MODULES[name]
    arrays = [getattr(module, p).data for p in params]
    if name in ("RNN", "LSTM", "GRU"):
        return forward(x, np.zeros((x.shape[0], module.hidden_size)), *arrays)
    if name == "MultiHeadAttention":
        return forward(x, *arrays, module.num_heads, module.causal)
    return forward(x, *arrays, module.num_heads, module.causal, module.activation, module.eps)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_equals_its_functional_layer_and_accumulates_gradients(name):
    build, shape, _, backward, params = MODULES[name]
    module = build()
    x = np.random.default_rng(1).standard_normal(shape)
    out = module.forward(x)
    f_out, cache = _functional_call(name, module, x)
    np.testing.assert_array_equal(out, f_out)
    dout = random_like(out, seed=2)
    f_grads = backward(dout, cache)
    f_dx, f_dparams = f_grads[0], f_grads[-len(params):]
    np.testing.assert_array_equal(module.backward(dout), f_dx)
    module.backward(dout)  # a second backward adds the same gradients again
    for p, g in zip(params, f_dparams):
        np.testing.assert_allclose(getattr(module, p).grad, 2 * g, rtol=1e-14, atol=1e-300)
    assert [n for n, _ in module.named_parameters()] == params


@pytest.mark.parametrize("name", sorted(MODULES))
def test_check_model_proves_every_sequence_module(name):
    module = MODULES[name][0]()
    x = np.random.default_rng(3).standard_normal(MODULES[name][1])
    check_model(module, x, loss=None).raise_if_failed()


def test_check_model_proves_the_gru_classifier_with_its_loss():
    model = GRUClassifier(1, 5, 3, rng=0)
    rng = np.random.default_rng(4)
    check_model(model, rng.standard_normal((3, 6)), rng.integers(0, 3, 3)).raise_if_failed()


def test_gru_module_matches_torch_nn_gru_with_the_same_weights():
    module = S.GRU(3, 5, rng=0)
    x = np.random.default_rng(5).standard_normal((2, 4, 3))
    torch_gru = torch.nn.GRU(3, 5, batch_first=True).double()
    with torch.no_grad():
        for ours, theirs in (("Wx", "weight_ih_l0"), ("Wh", "weight_hh_l0")):
            getattr(torch_gru, theirs).copy_(torch.tensor(getattr(module, ours).data.T))
        torch_gru.bias_ih_l0.copy_(torch.tensor(module.bx.data))
        torch_gru.bias_hh_l0.copy_(torch.tensor(module.bh.data))
    xt = torch.tensor(x, requires_grad=True)
    t_out, _ = torch_gru(xt)
    out = module.forward(x)
    assert_close(out, t_out.detach().numpy(), name="h")
    dout = random_like(out, seed=6)
    t_out.backward(torch.tensor(dout))
    dx = module.backward(dout)
    t_grads = [xt.grad, torch_gru.weight_ih_l0.grad.T, torch_gru.weight_hh_l0.grad.T,
               torch_gru.bias_ih_l0.grad, torch_gru.bias_hh_l0.grad]  # fmt: skip
    ours = [dx, module.Wx.grad, module.Wh.grad, module.bx.grad, module.bh.grad]
    assert_grads_close(ours, [g.numpy() for g in t_grads], ["x", "Wx", "Wh", "bx", "bh"])


def test_embedding_module_accumulates_into_its_weight_and_returns_no_input_gradient():
    emb = S.Embedding(4, 3, rng=0)
    idx = np.array([[1, 1, 3]])
    out = emb.forward(idx)
    np.testing.assert_array_equal(out[0], emb.weight.data[[1, 1, 3]])
    assert emb.backward(np.ones((1, 3, 3))) is None
    np.testing.assert_array_equal(emb.weight.grad, [[0] * 3, [2] * 3, [0] * 3, [1] * 3])


def test_recurrent_module_takes_h0_and_hands_back_its_gradient():
    module = S.RNN(2, 3, rng=0)
    rng = np.random.default_rng(7)
    x, h0 = rng.standard_normal((2, 4, 2)), rng.standard_normal((2, 3))
    out = module.forward(x, h0)
    _, cache = F.rnn(x, h0, module.Wx.data, module.Wh.data, module.b.data)
    module.backward(np.ones_like(out))
    np.testing.assert_array_equal(module.dh0, F.rnn_backward(np.ones_like(out), cache)[1])


def test_state_dict_round_trip_gives_the_same_outputs():
    block = S.TransformerBlock(4, 2, rng=0)
    other = S.TransformerBlock(4, 2, rng=1)
    x = np.random.default_rng(8).standard_normal((1, 3, 4))
    assert not np.allclose(block.forward(x), other.forward(x))
    other.load_state_dict(block.state_dict())
    np.testing.assert_array_equal(block.forward(x), other.forward(x))


def test_float32_modules_refuse_float64_input_and_run_in_float32():
    module = S.LSTM(3, 4, rng=0, dtype=np.float32)
    x = np.ones((1, 2, 3))
    with pytest.raises(InputTypeError, match="must have the module's dtype float32"):
        module.forward(x)
    out = module.forward(x.astype(np.float32))
    assert out.dtype == np.float32 and module.backward(out).dtype == np.float32


def test_bad_module_arguments_raise_naming_them():
    with pytest.raises(InputError, match="num_heads must divide embed_dim"):
        S.MultiHeadAttention(6, 4)
    with pytest.raises(InputError, match="hidden_size must be a positive int"):
        S.GRU(3, 0)
    with pytest.raises(InputError, match="backward called before forward"):
        S.GRU(3, 2).backward(np.ones((1, 1, 2)))


# --- the GRU classifier ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 7), (2, 1, 7), (2, 7, 1)])
def test_gru_classifier_accepts_signal_layouts_and_returns_dx_in_the_same_layout(shape):
    model = GRUClassifier(1, 4, 3, rng=0)
    x = np.random.default_rng(9).standard_normal(shape)
    scores = model.forward(x)
    assert scores.shape == (2, 3)
    assert model.backward(np.ones_like(scores)).shape == shape
    flat = model.forward(x.reshape(2, 7))
    np.testing.assert_allclose(scores, flat, rtol=1e-15)


def test_gru_classifier_learns_a_toy_sequence_task():
    """Which half of the sequence holds the pulse: chance is 50%."""
    from gradproof.optim import Adam

    rng = np.random.default_rng(10)
    y = rng.integers(0, 2, 64)
    x = rng.standard_normal((64, 8)) * 0.1
    x[np.arange(64), rng.integers(0, 4, 64) + 4 * y] += 2.0
    model = GRUClassifier(1, 8, 2, rng=0)
    opt = Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        model.zero_grad()
        loss, dscores = F.softmax_loss(model.forward(x), y)
        model.backward(dscores)
        opt.step()
    assert np.mean(model.forward(x).argmax(1) == y) >= 0.95


# --- the character language model ----------------------------------------------------------------


def test_charlm_rejects_unknown_cells():
    with pytest.raises(InputError, match="cell must be one of"):
        CharLM(5, "transformerxl")


def test_charlm_backward_passes_check_vjp_for_its_head_and_core():
    """The model as a function of its output layer's weights (indices have no gradient)."""
    model = CharLM(6, "lstm", hidden_size=3, embed_dim=2, rng=0, dtype=np.float64)
    idx = np.random.default_rng(12).integers(0, 6, (2, 4))

    def forward(w_embed, Wh):
        m = copy.deepcopy(model)
        m.embed.weight.data, m.layers[0].Wh.data = w_embed, Wh

        def backprop(dscores):
            m.zero_grad()
            m.backward(dscores)
            return m.embed.weight.grad.copy(), m.layers[0].Wh.grad.copy()

        return m.forward(idx), backprop

    report = gradproof.check_vjp(forward, None, model.embed.weight.data.copy(),
                                 model.layers[0].Wh.data.copy())  # fmt: skip
    report.raise_if_failed()

"""Recurrent layers: every layer through the checker and against PyTorch (one table),
then hand-computed cases, torch's own nn.LSTM / nn.GRU, the loss, and bad input."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sequence_oracle import assert_grads_close
from torch_oracle import assert_close, random_like, to_numpy, torch_vjp

import gradproof
from gradproof.errors import InputError, InputTypeError
from gradproof.nn import functional as F

# --- torch references, written with torch ops ---------------------------------------------


def torch_rnn_step(x, h, Wx, Wh, b):
    return torch.tanh(x @ Wx + h @ Wh + b)


def torch_lstm_step(x, h, c, Wx, Wh, b):
    i, f, o, g = (x @ Wx + h @ Wh + b).chunk(4, dim=1)  # CS231n order i, f, o, g
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def torch_gru_step(x, h, Wx, Wh, bx, bh):
    xr, xz, xn = (x @ Wx + bx).chunk(3, dim=1)
    hr, hz, hn = (h @ Wh + bh).chunk(3, dim=1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return (1 - z) * n + z * h


def over_time(step, with_cell_state=False):
    """A whole-sequence torch function from a step function (c0 = 0 for the LSTM)."""

    def run(x, h0, *params):
        h, c, hs = h0, torch.zeros_like(h0), []
        for t in range(x.shape[1]):
            if with_cell_state:
                h, c = step(x[:, t], h, c, *params)
            else:
                h = step(x[:, t], h, *params)
            hs.append(h)
        return torch.stack(hs, dim=1)

    return run


# --- the table of layers ------------------------------------------------------------------


@dataclass
class Layer:
    forward: Callable
    backward: Callable
    shapes: Callable  # (N, T, D, H) -> shapes of the float inputs, in order
    torch_fn: Callable


LAYERS = {
    "rnn_step": Layer(
        F.rnn_step, F.rnn_step_backward,
        lambda N, T, D, H: [(N, D), (N, H), (D, H), (H, H), (H,)], torch_rnn_step,
    ),
    "rnn": Layer(
        F.rnn, F.rnn_backward,
        lambda N, T, D, H: [(N, T, D), (N, H), (D, H), (H, H), (H,)], over_time(torch_rnn_step),
    ),
    "lstm_step": Layer(
        F.lstm_step, F.lstm_step_backward,
        lambda N, T, D, H: [(N, D), (N, H), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,)],
        torch_lstm_step,
    ),
    "lstm": Layer(
        F.lstm, F.lstm_backward,
        lambda N, T, D, H: [(N, T, D), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,)],
        over_time(torch_lstm_step, with_cell_state=True),
    ),
    "gru_step": Layer(
        F.gru_step, F.gru_step_backward,
        lambda N, T, D, H: [(N, D), (N, H), (D, 3 * H), (H, 3 * H), (3 * H,), (3 * H,)],
        torch_gru_step,
    ),
    "gru": Layer(
        F.gru, F.gru_backward,
        lambda N, T, D, H: [(N, T, D), (N, H), (D, 3 * H), (H, 3 * H), (3 * H,), (3 * H,)],
        over_time(torch_gru_step),
    ),
    "temporal_affine": Layer(
        F.temporal_affine, F.temporal_affine_backward,
        lambda N, T, D, H: [(N, T, D), (D, H), (H,)], lambda x, w, b: x @ w + b,
    ),
}  # fmt: skip


@st.composite
def layer_inputs(draw, layer: Layer):
    """Float inputs of small random shapes (T == 1 included), values of moderate size."""
    N, T, D, H = (draw(st.integers(1, hi)) for hi in (3, 4, 4, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return tuple(rng.standard_normal(s) * 0.8 for s in layer.shapes(N, T, D, H))


def _douts(out, seed=1):
    if isinstance(out, tuple):
        return tuple(random_like(o, seed=seed + i) for i, o in enumerate(out))
    return (random_like(out, seed=seed),)


@pytest.mark.parametrize("name", sorted(LAYERS))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_layer_backward_passes_check_vjp(name, data):
    layer = LAYERS[name]
    inputs = data.draw(layer_inputs(layer))
    gradproof.check_vjp(layer.forward, layer.backward, *inputs).raise_if_failed()


@pytest.mark.parametrize("name", sorted(LAYERS))
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_layer_matches_torch_forward_and_gradients(name, data):
    layer = LAYERS[name]
    inputs = data.draw(layer_inputs(layer))
    out, cache = layer.forward(*inputs)
    douts = _douts(out)
    t_out, t_grads = torch_vjp(layer.torch_fn, inputs, douts if len(douts) > 1 else douts[0])
    outs, t_outs = (out, t_out) if isinstance(out, tuple) else ((out,), (t_out,))
    for i, (o, t_o) in enumerate(zip(outs, t_outs)):
        assert_close(o, t_o, name=f"{name} output {i}")
    grads = layer.backward(*douts, cache)
    assert_grads_close(grads, t_grads, [f"{name} input {i}" for i in range(len(grads))])


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_float32_sequences_keep_float32_outputs_and_gradients(name):
    layer = LAYERS[name]
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(s).astype(np.float32) for s in layer.shapes(2, 3, 4, 5)]
    out, cache = layer.forward(*inputs)
    grads = layer.backward(np.ones_like(out), cache)
    assert out.dtype == np.float32
    assert [g.dtype for g in grads] == [np.float32] * len(inputs)


@pytest.mark.parametrize("seq, step", [("rnn", "rnn_step"), ("gru", "gru_step")])
def test_a_sequence_of_length_one_is_one_step(seq, step):
    rng = np.random.default_rng(1)
    x, *rest = (rng.standard_normal(s) for s in LAYERS[seq].shapes(2, 1, 3, 4))
    h, _ = LAYERS[seq].forward(x, *rest)
    next_h, _ = LAYERS[step].forward(x[:, 0], *rest)
    np.testing.assert_array_equal(h[:, 0], next_h)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru", "lstm_step"])
def test_backward_leaves_the_cache_unchanged_and_repeats_exactly(name):
    # the scan keeps its states in preallocated buffers and the backward works in place on
    # its own: a second backward from the same cache must give the same gradients bit for bit
    layer = LAYERS[name]
    rng = np.random.default_rng(5)
    inputs = [rng.standard_normal(s).astype(np.float32) for s in layer.shapes(3, 4, 2, 5)]
    out, cache = layer.forward(*inputs)
    douts = tuple(d.astype(np.float32) for d in _douts(out))
    saved = [np.array(a, copy=True) for a in vars(cache.run).values() if a is not None]
    first = layer.backward(*douts, cache)
    second = layer.backward(*douts, cache)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    for before, after in zip(saved, [a for a in vars(cache.run).values() if a is not None]):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturated_gates_give_their_limits_without_warnings(dtype):
    # pre-activations of +-1000: exp overflows inside the sigmoid, which must give 0 and 1
    # exactly, no NaN and no RuntimeWarning; the gradients through saturated gates are 0
    x = np.array([[[1000.0], [-1000.0]]], dtype=dtype)  # N=1, T=2, D=1
    h0 = np.zeros((1, 1), dtype)
    Wx, Wh, b = np.ones((1, 4), dtype), np.zeros((1, 4), dtype), np.zeros(4, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h, cache = F.lstm(x, h0, Wx, Wh, b)
        grads = F.lstm_backward(np.ones_like(h), cache)
    # step 1: i = f = o = 1, g = 1 -> c = 1, h = tanh(1); step 2: i = f = o = 0, g = -1 -> 0
    np.testing.assert_allclose(h[0, :, 0], [np.tanh(1.0), 0.0], rtol=1e-6)
    assert all(np.isfinite(g).all() for g in grads)


# --- torch's own modules, weights mapped --------------------------------------------------


def test_lstm_equals_torch_nn_lstm_with_gates_reordered():
    """torch.nn.LSTM stacks its gates i, f, g, o; CS231n (and we) use i, f, o, g."""
    N, T, D, H = 2, 5, 3, 4
    rng = np.random.default_rng(2)
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = (rng.standard_normal(s) * 0.5 for s in [(D, 4 * H), (H, 4 * H), (4 * H,)])
    to_torch_order = np.r_[0 : 2 * H, 3 * H : 4 * H, 2 * H : 3 * H]  # i, f | g | o
    module = torch.nn.LSTM(D, H, batch_first=True).double()
    params = {
        "weight_ih_l0": torch.tensor(Wx[:, to_torch_order].T),
        "weight_hh_l0": torch.tensor(Wh[:, to_torch_order].T),
        "bias_ih_l0": torch.tensor(b[to_torch_order]),
        "bias_hh_l0": torch.zeros(4 * H, dtype=torch.float64),
    }
    state = (torch.tensor(h0[None]), torch.zeros(1, N, H, dtype=torch.float64))
    t_out, _ = torch.func.functional_call(module, params, (torch.tensor(x), state))
    h, _ = F.lstm(x, h0, Wx, Wh, b)
    assert_close(h, to_numpy(t_out), name="h")


def test_gru_equals_torch_nn_gru_forward_and_gradients():
    """Wx = weight_ih_l0.T, Wh = weight_hh_l0.T, bx = bias_ih_l0, bh = bias_hh_l0."""
    N, T, D, H = 3, 4, 2, 5
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal(s) for s in LAYERS["gru"].shapes(N, T, D, H)]
    module = torch.nn.GRU(D, H, batch_first=True).double()

    def torch_gru(x, h0, Wx, Wh, bx, bh):
        params = {"weight_ih_l0": Wx.T, "weight_hh_l0": Wh.T, "bias_ih_l0": bx, "bias_hh_l0": bh}
        return torch.func.functional_call(module, params, (x, h0[None]))[0]

    h, cache = F.gru(*inputs)
    dh = random_like(h, seed=4)
    t_h, t_grads = torch_vjp(torch_gru, inputs, dh)
    assert_close(h, t_h, name="h")
    assert_grads_close(F.gru_backward(dh, cache), t_grads, "x h0 Wx Wh bx bh".split())


# --- hand-computed cases ------------------------------------------------------------------


def test_rnn_step_with_zero_weights_is_tanh_of_the_bias():
    next_h, _ = F.rnn_step(np.ones((2, 3)), np.ones((2, 2)), np.zeros((3, 2)), np.zeros((2, 2)),
                           np.array([0.5, -1.0]))  # fmt: skip
    np.testing.assert_allclose(next_h, np.tanh([[0.5, -1.0], [0.5, -1.0]]), rtol=1e-15)


def test_rnn_backward_through_two_scalar_steps_by_hand():
    """h1 = tanh(x1 wx + h0 wh), h2 = tanh(x2 wx + h1 wh); loss = h2 (dh1 from the output = 0)."""
    x, h0 = np.array([[[0.3], [-0.2]]]), np.array([[0.5]])
    wx, wh = 0.7, -1.1
    h, cache = F.rnn(x, h0, np.array([[wx]]), np.array([[wh]]), np.zeros(1))
    h1 = np.tanh(0.3 * wx + 0.5 * wh)
    h2 = np.tanh(-0.2 * wx + h1 * wh)
    np.testing.assert_allclose(h[0, :, 0], [h1, h2], rtol=1e-15)
    dx, dh0, dWx, dWh, db = F.rnn_backward(np.array([[[0.0], [1.0]]]), cache)
    da2 = 1 - h2**2
    da1 = da2 * wh * (1 - h1**2)
    np.testing.assert_allclose(dx[0, :, 0], [da1 * wx, da2 * wx], rtol=1e-14)
    np.testing.assert_allclose(dh0, [[da1 * wh]], rtol=1e-14)
    np.testing.assert_allclose(dWh, [[da1 * 0.5 + da2 * h1]], rtol=1e-14)
    np.testing.assert_allclose(dWx, [[da1 * 0.3 + da2 * -0.2]], rtol=1e-14)
    np.testing.assert_allclose(db, [da1 + da2], rtol=1e-14)


def test_lstm_step_with_zero_weights_halves_the_cell():
    """All pre-activations 0: i = f = o = 1/2, g = 0, so c' = c / 2 and h' = tanh(c / 2) / 2."""
    prev_c = np.array([[0.4, -2.0]])
    z = np.zeros
    (next_h, next_c), _ = F.lstm_step(z((1, 3)), z((1, 2)), prev_c, z((3, 8)), z((2, 8)), z(8))
    np.testing.assert_allclose(next_c, prev_c / 2, rtol=1e-15)
    np.testing.assert_allclose(next_h, np.tanh(prev_c / 2) / 2, rtol=1e-15)


def test_gru_reset_gate_multiplies_after_the_hidden_bias():
    """Zero weights, bx_n = 1, bh_n = 2: r = z = 1/2, n = tanh(1 + r * 2) = tanh(2)
    (the original paper's variant, r applied to h before Wh, would give tanh(3))."""
    prev_h = np.array([[0.6]])
    bx, bh = np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 2.0])
    next_h, _ = F.gru_step(np.zeros((1, 2)), prev_h, np.zeros((2, 3)), np.zeros((1, 3)), bx, bh)
    np.testing.assert_allclose(next_h, 0.5 * np.tanh(2.0) + 0.5 * prev_h, rtol=1e-15)


# --- temporal softmax loss ------------------------------------------------------------------


@st.composite
def loss_inputs(draw):
    N, T, V = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((N, T, V)) * 2
    return x, rng.integers(0, V, size=(N, T)), rng.random((N, T)) < 0.7


@settings(max_examples=15, deadline=None)
@given(loss_inputs())
def test_temporal_softmax_loss_passes_check_grad(case):
    x, y, mask = case
    report = gradproof.check_grad(
        lambda x: F.temporal_softmax_loss(x, y, mask)[0],
        lambda x: F.temporal_softmax_loss(x, y, mask)[1],
        x,
    )
    report.raise_if_failed()


@settings(max_examples=15, deadline=None)
@given(loss_inputs())
def test_temporal_softmax_loss_matches_torch_cross_entropy(case):
    x, y, mask = case
    N, T, V = x.shape

    def torch_loss(x, y):
        per_step = torch.nn.functional.cross_entropy(
            x.reshape(N * T, V), y.reshape(N * T), reduction="none"
        )
        return (per_step * torch.tensor(mask.reshape(-1), dtype=torch.float64)).sum() / N

    t_loss, (t_dx, _) = torch_vjp(torch_loss, [x, y])
    loss, dx = F.temporal_softmax_loss(x, y, mask)
    assert_close(loss, t_loss, name="loss")
    assert_close(dx, t_dx, name="dx")


def test_temporal_softmax_loss_of_uniform_scores_is_log_v_per_counted_step():
    mask = np.array([[True, False, True], [True, True, True]])
    loss, dx = F.temporal_softmax_loss(np.zeros((2, 3, 7)), np.zeros((2, 3), int), mask)
    assert loss == pytest.approx(5 * np.log(7) / 2, rel=1e-15)
    assert not dx[0, 1].any()  # a masked step gets no gradient
    np.testing.assert_allclose(dx[1, 0], (np.full(7, 1 / 7) - np.eye(7)[0]) / 2, rtol=1e-14)


# --- bad input -------------------------------------------------------------------------------


def _ok_inputs(name, N=2, T=3, D=4, H=5):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s) for s in LAYERS[name].shapes(N, T, D, H)]


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru", "temporal_affine"])
def test_empty_sequence_raises_naming_x(name):
    inputs = _ok_inputs(name, T=0)
    with pytest.raises(InputError, match=r"x must have at least one time step"):
        LAYERS[name].forward(*inputs)


@pytest.mark.parametrize("name", ["rnn_step", "rnn", "lstm_step", "lstm", "gru_step", "gru"])
def test_hidden_size_mismatch_raises_naming_wh(name):
    inputs = _ok_inputs(name)
    wh_index = 4 if name == "lstm_step" else 3
    Wh = inputs[wh_index]
    inputs[wh_index] = np.zeros((Wh.shape[0] + 1, Wh.shape[1]))
    with pytest.raises(InputError, match=r"Wh must have shape\[0\] == H"):
        LAYERS[name].forward(*inputs)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_input_width_mismatch_raises_naming_wx(name):
    x, h0, Wx, *rest = _ok_inputs(name)
    with pytest.raises(InputError, match=r"Wx must have shape\[0\] == D == x.shape\[-1\] == 4"):
        LAYERS[name].forward(x, h0, Wx[:-1], *rest)


def test_batch_mismatch_and_wrong_types_raise_naming_the_argument():
    x, h0, Wx, Wh, b = _ok_inputs("rnn")
    with pytest.raises(InputError, match=r"h0 must have shape\[0\] == N"):
        F.rnn(x, h0[:1], Wx, Wh, b)
    with pytest.raises(InputTypeError, match="x must be a float32 or float64"):
        F.rnn(x.astype(int), h0, Wx, Wh, b)
    with pytest.raises(InputError, match=r"b must have shape\[0\] == H"):
        F.rnn(x, h0, Wx, Wh, b[:-1])
    with pytest.raises(InputError, match=r"x must have 3 dimensions \(N, T, D\)"):
        F.rnn(x[0], h0, Wx, Wh, b)


def test_lstm_step_checks_the_cell_state_shape():
    x, h, c, Wx, Wh, b = _ok_inputs("lstm_step")
    with pytest.raises(InputError, match=r"prev_c must have shape\[1\] == H"):
        F.lstm_step(x, h, c[:, :-1], Wx, Wh, b)


def test_temporal_softmax_loss_rejects_bad_targets_and_masks():
    x = np.zeros((2, 3, 4))
    with pytest.raises(InputError, match=r"y must hold indices in \[0, V"):
        F.temporal_softmax_loss(x, np.full((2, 3), 4), None)
    with pytest.raises(InputTypeError, match="y must be an integer"):
        F.temporal_softmax_loss(x, np.zeros((2, 3)), None)
    with pytest.raises(InputError, match=r"y must have shape \(N, T\)"):
        F.temporal_softmax_loss(x, np.zeros((3, 2), int), None)
    with pytest.raises(InputError, match=r"mask must have shape \(N, T\)"):
        F.temporal_softmax_loss(x, np.zeros((2, 3), int), np.ones((3, 2), bool))
    with pytest.raises(InputError, match="at least one time step"):
        F.temporal_softmax_loss(np.zeros((2, 0, 4)), np.zeros((2, 0), int), None)

"""Every backward checks its upstream gradient against the forward's output.

A ``dout`` that only broadcasts to the output ((M,) or (1, M) for (N, M)), one
with a time step missing, or a transposed one of the same size used to give
plausible, wrong gradients in several layers (issue 10, item 7). Two tables
below, one row per functional backward and one per module, each run forward on
tiny inputs; every row is fed the same bad upstream gradients and must raise
an error that names the expected and the given shape (or dtype).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import pytest

import gradproof.nn as nn
import gradproof.nn.functional as F
from gradproof.errors import InputError, InputTypeError

# A row builds the layer and runs its forward: () -> (outputs, backward), where
# ``backward(*douts)`` calls the layer's backward with one upstream gradient per output.
Row = Callable[[], tuple[tuple[np.ndarray, ...], Callable]]


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _randn(*shape: int) -> np.ndarray:
    return _rng().standard_normal(shape)


def functional(forward: Callable, backward: Callable, *inputs, **options) -> Row:
    """A row for ``out, cache = forward(*inputs, **options)`` (a tuple ``out``: several outputs)."""

    def run():
        out, cache = forward(*inputs, **options)
        outs = out if isinstance(out, tuple) else (out,)
        return outs, lambda *douts: backward(*douts, cache)

    run.backward = backward
    return run


def module(make: Callable[[], nn.Module], *inputs) -> Row:
    """A row for ``out = make().forward(*inputs)``, backward ``module.backward(dout)``."""

    def run():
        m = make()
        return (m.forward(*inputs),), m.backward

    run.module = make
    return run


# --- inputs (every output has distinct axis sizes, so a transpose changes its shape) ----
X2 = _randn(2, 3)  # (N, D)
IMG = _randn(2, 3, 5, 6)  # (N, C, H, W)
SIG = _randn(2, 3, 8)  # (N, C, L)
SEQ = _randn(2, 3, 4)  # (N, T, D)
H0 = _randn(2, 5)  # (N, H)
IDX = np.array([[0, 1, 4], [2, 2, 3]])  # (N, T) in [0, V = 5)
W54 = _randn(5, 4)
MHA = [_randn(4, 4) for _ in range(4)] + [_randn(4) for _ in range(4)]


def _recurrent(G: int, split_bias: bool = False) -> tuple[np.ndarray, ...]:
    H = H0.shape[1]
    biases = (_randn(G * H), _randn(G * H)) if split_bias else (_randn(G * H),)
    return (_randn(4, G * H), _randn(H, G * H), *biases)


RNN_P, LSTM_P, GRU_P = _recurrent(1), _recurrent(4), _recurrent(3, split_bias=True)
BLOCK = (
    np.ones(4),
    np.zeros(4),
    *MHA,
    np.ones(4),
    np.zeros(4),
    _randn(4, 6),
    _randn(6),
    _randn(6, 4),
    _randn(4),
)

FUNCTIONAL: dict[str, Row] = {
    "affine": functional(F.affine, F.affine_backward, X2, _randn(3, 4), _randn(4)),
    "affine_relu": functional(F.affine_relu, F.affine_relu_backward, X2, _randn(3, 4), _randn(4)),
    **{
        name: functional(getattr(F, name), getattr(F, f"{name}_backward"), X2)
        for name in ("relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softplus", "silu")
    },
    "dropout_train": functional(
        F.dropout, F.dropout_backward, X2, {"p_drop": 0.5, "mode": "train", "seed": 0}
    ),
    "dropout_test": functional(F.dropout, F.dropout_backward, X2, {"p_drop": 0.5, "mode": "test"}),
    "batchnorm": functional(
        F.batchnorm, F.batchnorm_backward, _randn(4, 3), np.ones(3), np.zeros(3), {"mode": "train"}
    ),
    "batchnorm_alt": functional(
        F.batchnorm,
        F.batchnorm_backward_alt,
        _randn(4, 3),
        np.ones(3),
        np.zeros(3),
        {"mode": "train"},
    ),
    "batchnorm_test_mode": functional(
        F.batchnorm,
        F.batchnorm_backward_alt,
        _randn(4, 3),
        np.ones(3),
        np.zeros(3),
        {"mode": "test"},
    ),
    "spatial_batchnorm": functional(
        F.spatial_batchnorm,
        F.spatial_batchnorm_backward,
        IMG,
        np.ones(3),
        np.zeros(3),
        {"mode": "train"},
    ),
    "layernorm": functional(F.layernorm, F.layernorm_backward, X2, np.ones(3), np.zeros(3)),
    "groupnorm": functional(
        F.groupnorm, F.groupnorm_backward, _randn(2, 4, 3, 5), np.ones(4), np.zeros(4), 2
    ),
    "conv2d": functional(F.conv2d, F.conv2d_backward, IMG, _randn(4, 3, 3, 3), _randn(4)),
    "conv2d_naive": functional(
        F.conv2d_naive, F.conv2d_naive_backward, IMG, _randn(4, 3, 3, 3), _randn(4)
    ),
    "conv1d": functional(F.conv1d, F.conv1d_backward, SIG, _randn(4, 3, 3), _randn(4)),
    "max_pool2d": functional(F.max_pool2d, F.max_pool2d_backward, _randn(2, 3, 4, 6)),
    "avg_pool2d": functional(F.avg_pool2d, F.avg_pool2d_backward, _randn(2, 3, 4, 6)),
    "max_pool1d": functional(F.max_pool1d, F.max_pool1d_backward, SIG),
    "avg_pool1d": functional(F.avg_pool1d, F.avg_pool1d_backward, SIG),
    "embedding": functional(F.embedding, F.embedding_backward, IDX, W54),
    "word_embedding": functional(F.word_embedding_forward, F.word_embedding_backward, IDX, W54),
    "rnn_step": functional(F.rnn_step, F.rnn_step_backward, SEQ[:, 0], H0, *RNN_P),
    "rnn": functional(F.rnn, F.rnn_backward, SEQ, H0, *RNN_P),
    "lstm_step": functional(F.lstm_step, F.lstm_step_backward, SEQ[:, 0], H0, H0, *LSTM_P),
    "lstm": functional(F.lstm, F.lstm_backward, SEQ, H0, *LSTM_P),
    "gru_step": functional(F.gru_step, F.gru_step_backward, SEQ[:, 0], H0, *GRU_P),
    "gru": functional(F.gru, F.gru_backward, SEQ, H0, *GRU_P),
    "temporal_affine": functional(
        F.temporal_affine, F.temporal_affine_backward, SEQ, _randn(4, 6), _randn(6)
    ),
    "scaled_dot_product_attention": functional(
        F.scaled_dot_product_attention,
        F.scaled_dot_product_attention_backward,
        SEQ,
        _randn(2, 5, 4),
        _randn(2, 5, 6),
    ),
    "multi_head_attention": functional(
        F.multi_head_attention, F.multi_head_attention_backward, SEQ, *MHA, 2
    ),
    "multi_head_cross_attention": functional(
        F.multi_head_cross_attention,
        F.multi_head_cross_attention_backward,
        SEQ,
        _randn(2, 5, 4),
        *MHA,
        2,
    ),
    "transformer_block": functional(
        F.transformer_block, F.transformer_block_backward, SEQ, *BLOCK, 2
    ),
}

MODULES: dict[str, Row] = {
    "Linear": module(lambda: nn.Linear(3, 4, rng=0), X2),
    "Linear_3d": module(lambda: nn.Linear(4, 6, rng=0), SEQ),
    "Linear_no_input_grad": module(lambda: nn.Linear(3, 4, rng=0, input_grad=False), X2),
    **{cls.__name__: module(cls, X2) for cls in nn.activation.ACTIVATIONS.values()},
    "Dropout": module(lambda: nn.Dropout(0.5, rng=0), X2),
    "Dropout_eval": module(lambda: nn.Dropout(0.5, rng=0).eval(), X2),
    "BatchNorm1d": module(lambda: nn.BatchNorm1d(3), _randn(4, 3)),
    "LayerNorm": module(lambda: nn.LayerNorm(4), SEQ),
    "Conv2d": module(lambda: nn.Conv2d(3, 4, 3, rng=0), IMG),
    "Conv1d": module(lambda: nn.Conv1d(3, 4, 3, rng=0), SIG),
    "MaxPool2d": module(lambda: nn.MaxPool2d(2), _randn(2, 3, 4, 6)),
    "AvgPool2d": module(lambda: nn.AvgPool2d(2), _randn(2, 3, 4, 6)),
    "MaxPool1d": module(lambda: nn.MaxPool1d(2), SIG),
    "AvgPool1d": module(lambda: nn.AvgPool1d(2), SIG),
    "Flatten": module(nn.Flatten, IMG),
    "Sequential": module(lambda: nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4)), X2),
    "Residual": module(lambda: nn.Residual(nn.Sequential(nn.Linear(4, 4), nn.Tanh())), SEQ),
    "Embedding": module(lambda: nn.Embedding(5, 4, rng=0), IDX),
    "RNN": module(lambda: nn.RNN(4, 5, rng=0), SEQ),
    "LSTM": module(lambda: nn.LSTM(4, 5, rng=0), SEQ),
    "GRU": module(lambda: nn.GRU(4, 5, rng=0), SEQ),
    "MultiHeadAttention": module(lambda: nn.MultiHeadAttention(4, 2, rng=0), SEQ),
    "TransformerBlock": module(lambda: nn.TransformerBlock(4, 2, 6, rng=0), SEQ),
    "MLP": module(lambda: nn.MLP(3, [5], 4, rng=0), X2),
    "SmallCNN": module(lambda: nn.SmallCNN(3, (4, 6), 4, channels=(2,), rng=0), _randn(2, 3, 4, 6)),
    "CNN1d": module(lambda: nn.CNN1d(8, 3, 4, channels=(2,), kernel_size=3, rng=0), SIG),
    "GRUClassifier": module(lambda: nn.GRUClassifier(4, 5, 6, rng=0), SEQ),
    "CharLM": module(
        lambda: nn.CharLM(
            6, "lstm", hidden_size=5, embed_dim=4, num_layers=1, rng=0, dtype=np.float64
        ),
        IDX,
    ),
}

ROWS = {
    **{f"F.{k}": v for k, v in FUNCTIONAL.items()},
    **{f"nn.{k}": v for k, v in MODULES.items()},
}


# --- the bad upstream gradients ------------------------------------------------------------
def broadcast_row(shape):
    """(1, ...) where the output is (N, ...): broadcasting would sum it N times."""
    return (1, *shape[1:])


def broadcast_drop(shape):
    """The output's shape without its first axis: (M,) for (N, M)."""
    return shape[1:]


def truncated(shape):
    """One element fewer along axis 1 (a time step, a feature, a channel)."""
    return (shape[0], shape[1] - 1, *shape[2:])


def transposed(shape):
    """The axes reversed: as many elements as the output, in the wrong layout."""
    return shape[::-1]


BAD_SHAPES = [broadcast_row, broadcast_drop, truncated, transposed]


def _good(outs):
    return [np.ones(o.shape, dtype=o.dtype) for o in outs]


def _ids(table):
    return list(table)


# --- tests ---------------------------------------------------------------------------------
@pytest.mark.parametrize("row", list(ROWS.values()), ids=_ids(ROWS))
def test_an_upstream_gradient_of_the_outputs_shape_and_dtype_is_accepted(row):
    outs, backward = row()
    backward(*_good(outs))


@pytest.mark.parametrize("bad", BAD_SHAPES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("row", list(ROWS.values()), ids=_ids(ROWS))
def test_a_dout_of_another_shape_is_refused_naming_both_shapes(row, bad):
    outs, backward = row()
    for i, out in enumerate(outs):  # one wrong upstream gradient at a time
        shape = bad(out.shape)
        assert shape != out.shape, f"the table's output {out.shape} cannot show {bad.__name__}"
        douts = _good(outs)
        douts[i] = np.ones(shape, dtype=out.dtype)
        with pytest.raises(InputError) as info:
            backward(*douts)
        message = str(info.value)
        assert str(tuple(out.shape)) in message and str(shape) in message, message


@pytest.mark.parametrize("row", list(ROWS.values()), ids=_ids(ROWS))
def test_a_dout_of_another_float_dtype_is_refused_naming_both_dtypes(row):
    outs, backward = row()
    for i, out in enumerate(outs):
        other = np.float32 if out.dtype == np.float64 else np.float64
        douts = _good(outs)
        douts[i] = douts[i].astype(other)
        with pytest.raises(InputTypeError) as info:
            backward(*douts)
        message = str(info.value)
        assert str(out.dtype) in message and str(np.dtype(other)) in message, message


@pytest.mark.parametrize("bad", ["int", "bool", "complex", "list", "none"])
@pytest.mark.parametrize("row", list(ROWS.values()), ids=_ids(ROWS))
def test_a_dout_that_is_not_a_float_array_is_refused(row, bad):
    outs, backward = row()
    douts = _good(outs)
    douts[0] = {
        "int": np.ones(outs[0].shape, dtype=np.int64),
        "bool": np.ones(outs[0].shape, dtype=bool),
        "complex": np.ones(outs[0].shape, dtype=complex),
        "list": np.ones(outs[0].shape).tolist(),
        "none": None,
    }[bad]
    with pytest.raises(InputTypeError, match="must be a float NumPy array"):
        backward(*douts)


def test_the_message_says_what_a_bad_shape_would_have_done():
    outs, backward = FUNCTIONAL["lstm"]()
    with pytest.raises(
        InputError,
        match=r"dh must have the shape of lstm's output \(2, 3, 5\), "
        r"got \(2, 5, 3\); .* transposed",
    ):
        backward(np.ones((2, 5, 3)))
    with pytest.raises(InputError, match=r"got \(5,\); it only broadcasts to the output"):
        backward(np.ones(5))
    outs, backward = FUNCTIONAL["lstm_step"]()
    with pytest.raises(InputError, match=r"dnext_c must have the shape of lstm_step's output"):
        backward(np.ones((2, 5)), np.ones((1, 5)))
    outs, backward = MODULES["Linear"]()
    with pytest.raises(InputError, match=r"dout must have the shape of Linear\(3, 4.*\)'s output"):
        backward(np.ones((4, 2)))


def test_a_recurrent_backward_refuses_the_cache_of_another_cell_or_a_sequence():
    _, cache = F.gru(SEQ, H0, *GRU_P)
    with pytest.raises(InputError, match=r"lstm_backward\(\) takes the cache of lstm\(\)"):
        F.lstm_backward(np.ones((2, 3, 5)), cache)
    with pytest.raises(InputError, match=r"cache of one step, got the cache of 3 time steps"):
        F.gru_step_backward(np.ones((2, 5)), cache)


def test_every_functional_backward_is_in_the_table():
    covered = {id(row.backward) for row in FUNCTIONAL.values()}
    public = {
        name: fn
        for name, fn in vars(F).items()
        if callable(fn)
        and name.endswith(("_backward", "_backward_alt", "_backward_fast", "_backward_naive"))
        and not name.startswith("_")
    }
    missing = sorted(name for name, fn in public.items() if id(fn) not in covered)
    assert not missing, f"add these backwards to FUNCTIONAL: {missing}"


def test_every_module_of_gradproof_nn_is_in_the_table():
    built = set()
    for row in MODULES.values():
        m = row.module()
        built.add(type(m))
    classes = {
        cls
        for _, cls in inspect.getmembers(nn, inspect.isclass)
        if issubclass(cls, nn.Module) and cls is not nn.Module
    }
    missing = sorted(cls.__name__ for cls in classes - built)
    assert not missing, f"add these modules to MODULES: {missing}"


def test_the_check_returns_dout_itself_without_a_copy():
    from gradproof._validate import upstream

    dout = np.ones((2, 3))
    assert upstream(dout, (2, 3), np.dtype(np.float64), "affine") is dout

"""gradproof.nn modules: PyTorch oracle, the checker, hand-computed cases, dtypes, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_modules import TORCH_ACTIVATIONS, assert_matches_torch, twin
from torch_oracle import assert_close

import gradproof
from gradproof.adapters.nn import check_model
from gradproof.errors import InputError, InputTypeError
from gradproof.nn import activation as A
from gradproof.nn.containers import Flatten, Residual, Sequential
from gradproof.nn.dropout import Dropout
from gradproof.nn.dtypes import to_dtype
from gradproof.nn.linear import Linear
from gradproof.nn.norm import BatchNorm1d, LayerNorm

seeds = st.integers(0, 2**32 - 1)
dims = st.integers(1, 6)


def normal(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def randomize(module, seed):
    """Give every parameter random values around 1 (gamma, beta and biases start constant)."""
    rng = np.random.default_rng(seed)
    for p in module.parameters():
        p.data[...] = 1.0 + 0.5 * rng.standard_normal(p.shape)
    return module


# --- Linear -------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(n=dims, d=dims, m=dims, bias=st.booleans(), seed=seeds)
def test_linear_matches_torch(n, d, m, bias, seed):
    layer = randomize(Linear(d, m, bias=bias, rng=seed), seed)
    assert_matches_torch(layer, normal((n, d), seed + 1), seed)


def test_linear_applies_to_the_last_axis_like_torch():
    layer = randomize(Linear(4, 3, rng=0), 1)
    out = assert_matches_torch(layer, normal((2, 5, 4), 2))
    assert out.shape == (2, 5, 3)


def test_linear_by_hand():
    layer = Linear(2, 2)
    layer.weight.data[...] = [[1.0, 2.0], [3.0, 4.0]]
    layer.bias.data[...] = [1.0, -1.0]
    out = layer.forward(np.array([[1.0, 1.0]]))
    np.testing.assert_array_equal(out, [[5.0, 5.0]])
    dx = layer.backward(np.array([[1.0, 0.0]]))
    np.testing.assert_array_equal(dx, [[1.0, 3.0]])
    np.testing.assert_array_equal(layer.weight.grad, [[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(layer.bias.grad, [1.0, 0.0])


def test_backward_accumulates_into_grad_until_zero_grad():
    layer = Linear(3, 2, rng=0)
    x, dout = normal((4, 3), 1), normal((4, 2), 2)
    layer.forward(x)
    layer.backward(dout)
    once = layer.weight.grad.copy()
    layer.backward(dout)
    np.testing.assert_allclose(layer.weight.grad, 2 * once, rtol=1e-15)
    layer.zero_grad()
    assert not layer.weight.grad.any() and not layer.bias.grad.any()


def test_linear_without_input_grad_returns_none_and_the_same_parameter_grads():
    x, dout = normal((4, 3), 1), normal((4, 2), 2)
    full, lean = Linear(3, 2, rng=0), Linear(3, 2, rng=0, input_grad=False)
    for layer in (full, lean):
        layer.forward(x)
    assert full.backward(dout) is not None
    assert lean.backward(dout) is None
    np.testing.assert_array_equal(lean.weight.grad, full.weight.grad)
    np.testing.assert_array_equal(lean.bias.grad, full.bias.grad)


# --- activations -----------------------------------------------------------------------
ACTIVATION_CASES = [
    (A.ReLU, {}), (A.LeakyReLU, {"negative_slope": 0.2}), (A.ELU, {"alpha": 0.7}),
    (A.GELU, {}), (A.GELU, {"approximate": "tanh"}), (A.Sigmoid, {}), (A.Tanh, {}),
    (A.Softplus, {"beta": 2.0, "threshold": 5.0}), (A.SiLU, {}),
]
ACTIVATION_IDS = [f"{cls.__name__}{opts or ''}" for cls, opts in ACTIVATION_CASES]


def test_every_activation_module_has_a_case_and_a_name():
    assert {cls for cls, _ in ACTIVATION_CASES} == set(TORCH_ACTIVATIONS)
    assert set(A.ACTIVATIONS.values()) == set(TORCH_ACTIVATIONS)


@pytest.mark.parametrize("cls, options", ACTIVATION_CASES, ids=ACTIVATION_IDS)
@settings(max_examples=8, deadline=None)
@given(shape=st.lists(dims, min_size=1, max_size=3).map(tuple), seed=seeds)
def test_activation_modules_match_torch(cls, options, shape, seed):
    assert_matches_torch(cls(**options), 2 * normal(shape, seed), seed)


@pytest.mark.parametrize("cls, options", ACTIVATION_CASES, ids=ACTIVATION_IDS)
def test_activation_modules_keep_float32(cls, options):
    module = cls(**options)
    x = normal((3, 4), 0, np.float32)
    out = module.forward(x)
    assert out.dtype == np.float32
    assert module.backward(np.ones_like(out)).dtype == np.float32


def test_relu_module_by_hand():
    relu = A.ReLU()
    np.testing.assert_array_equal(relu.forward(np.array([-1.0, 0.0, 2.0])), [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(relu.backward(np.array([5.0, 6.0, 7.0])), [0.0, 0.0, 7.0])


def test_activation_by_name_builds_a_new_module_each_time():
    a, b = A.activation("leaky_relu", negative_slope=0.3), A.activation("LEAKY_RELU")
    assert isinstance(a, A.LeakyReLU) and a is not b
    assert a.options == {"negative_slope": 0.3}
    assert isinstance(A.activation(A.Tanh), A.Tanh)


def test_unknown_activation_name_is_an_error_naming_the_argument():
    with pytest.raises(InputError, match=r"activation must be one of \[.*'relu'.*got 'rellu'"):
        A.activation("rellu")
    with pytest.raises(InputTypeError, match="activation must be"):
        A.activation(A.ReLU())  # an instance would be shared between layers


def test_activation_options_are_checked_when_the_module_is_built():
    with pytest.raises(InputError, match="ReLU has no option 'alpha'"):
        A.ReLU(alpha=1.0)
    with pytest.raises(InputError, match="beta"):
        A.Softplus(beta=-1.0)
    with pytest.raises(InputError, match="approximate"):
        A.GELU(approximate="fast")


# --- normalisation ---------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(n=st.integers(3, 6), d=dims, seed=seeds)  # with N == 2, dx is 0 up to rounding
def test_batchnorm_matches_torch_in_train_mode(n, d, seed):
    bn = randomize(BatchNorm1d(d), seed)
    assert_matches_torch(bn, 3 * normal((n, d), seed) + 1, seed)


def test_batchnorm_running_statistics_follow_torch_then_eval_matches():
    bn = randomize(BatchNorm1d(4, momentum=0.3), 0)
    t, _ = twin(bn)
    for step in range(3):
        x = 2 * normal((5, 4), step) + step
        bn.forward(x)
        t(torch.tensor(x))
    assert_close(bn.running_mean, t.running_mean.numpy(), name="running_mean")
    assert_close(bn.running_var, t.running_var.numpy(), name="running_var")
    bn.eval()
    assert_matches_torch(bn, normal((3, 4), 9))


def test_batchnorm_by_hand():
    bn = BatchNorm1d(1, eps=0.0)
    out = bn.forward(np.array([[1.0], [3.0]]))  # mean 2, biased var 1
    np.testing.assert_array_equal(out, [[-1.0], [1.0]])
    np.testing.assert_allclose(bn.running_mean, [0.2])  # 0.9 * 0 + 0.1 * 2
    np.testing.assert_allclose(bn.running_var, [1.1])  # 0.9 * 1 + 0.1 * 2 (unbiased var)


def test_batchnorm_needs_two_examples_in_train_mode():
    with pytest.raises(InputError, match="at least 2 examples"):
        BatchNorm1d(3).forward(np.ones((1, 3)))


@settings(max_examples=15, deadline=None)
@given(shape=st.lists(dims, min_size=1, max_size=2).map(tuple), d=st.integers(3, 6),
       seed=seeds)  # with D == 2, xhat is +-1 and dx is 0 up to rounding
def test_layernorm_matches_torch(shape, d, seed):
    ln = randomize(LayerNorm(d), seed)
    assert_matches_torch(ln, 3 * normal((*shape, d), seed) - 1, seed)


def test_norm_state_dict_holds_parameters_and_running_statistics():
    bn = BatchNorm1d(3)
    bn.forward(normal((4, 3), 0))
    state = bn.state_dict()
    assert sorted(state) == ["beta", "gamma", "running_mean", "running_var"]
    fresh = BatchNorm1d(3)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.running_mean, bn.running_mean)


# --- dropout ----------------------------------------------------------------------------
def test_dropout_zeroes_and_rescales_with_one_mask_for_forward_and_backward():
    drop = Dropout(0.25, rng=0)
    x = normal((200, 50), 1) + 5  # never 0
    out = drop.forward(x)
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.75, rtol=1e-15)
    assert abs(1 - kept.mean() - 0.25) < 0.01
    dout = normal(x.shape, 2)
    dx = drop.backward(dout)
    np.testing.assert_array_equal(dx == 0, ~kept)
    np.testing.assert_allclose(dx[kept], dout[kept] / 0.75, rtol=1e-15)


def test_dropout_is_seeded_and_the_identity_in_eval_mode():
    x = normal((6, 7), 0)
    a, b = Dropout(0.5, rng=3), Dropout(0.5, rng=3)
    first = a.forward(x)
    np.testing.assert_array_equal(first, b.forward(x))
    assert not np.array_equal(first, a.forward(x))  # a new mask on every call
    a.eval()
    np.testing.assert_array_equal(a.forward(x), x)
    np.testing.assert_array_equal(a.backward(x), x)


def test_dropout_probability_is_checked():
    with pytest.raises(InputError, match=r"p \(probability of dropping a unit\) must be in"):
        Dropout(1.0)


# --- containers ----------------------------------------------------------------------------
def _stack(seed, dtype=np.float64):
    return Sequential(Linear(4, 5, rng=seed, dtype=dtype), A.Tanh(),
                      Linear(5, 3, rng=seed + 1, dtype=dtype))


@settings(max_examples=10, deadline=None)
@given(n=dims, seed=seeds)
def test_sequential_matches_torch_and_names_parameters_like_it(n, seed):
    seq = _stack(seed % 1000)
    assert_matches_torch(seq, normal((n, 4), seed), seed)
    names = [name for name, _ in seq.named_parameters()]
    assert names == [name for name, _ in twin(seq)[0].named_parameters()]
    assert len(seq) == 3 and isinstance(seq[1], A.Tanh)


@settings(max_examples=10, deadline=None)
@given(n=dims, seed=seeds)
def test_residual_matches_torch(n, seed):
    block = Residual(Sequential(Linear(4, 4, rng=seed % 1000), A.GELU()))
    assert_matches_torch(block, normal((n, 4), seed), seed)


def test_residual_by_hand_doubles_through_an_identity_branch():
    inner = Linear(2, 2, bias=False)
    inner.weight.data[...] = np.eye(2)
    block = Residual(inner)
    x = np.array([[1.0, -2.0]])
    np.testing.assert_array_equal(block.forward(x), 2 * x)
    np.testing.assert_array_equal(block.backward(np.array([[3.0, 4.0]])), [[6.0, 8.0]])


def test_residual_needs_matching_shapes():
    with pytest.raises(InputError, match=r"f\(x\) must have the shape of x \(2, 3\)"):
        Residual(Linear(3, 4)).forward(np.ones((2, 3)))


def test_flatten_matches_torch():
    out = assert_matches_torch(Flatten(), normal((2, 3, 4), 0))
    assert out.shape == (2, 12)


def test_containers_accept_only_modules():
    with pytest.raises(InputTypeError, match=r"layers\[1\] must be a gradproof.nn.Module"):
        Sequential(Linear(2, 2), np.tanh)
    with pytest.raises(InputTypeError, match="f must be a gradproof.nn.Module"):
        Residual(lambda x: x)


# --- the checker ---------------------------------------------------------------------------
CHECKED = [
    ("Linear", lambda: Linear(4, 3, rng=0), (5, 4)),
    ("Linear-3d", lambda: Linear(4, 3, rng=0), (2, 3, 4)),
    ("BatchNorm1d", lambda: randomize(BatchNorm1d(4), 1), (5, 4)),
    ("BatchNorm1d-eval", lambda: randomize(BatchNorm1d(4), 1).eval(), (5, 4)),
    ("LayerNorm", lambda: randomize(LayerNorm(4), 1), (5, 4)),
    ("Dropout", lambda: Dropout(0.3, rng=0), (5, 4)),
    ("Residual", lambda: Residual(Sequential(Linear(4, 4, rng=0), A.Tanh())), (5, 4)),
    ("Flatten", lambda: Flatten(), (2, 3, 4)),
    ("Sequential", lambda: _stack(0), (5, 4)),
] + [(cls.__name__, lambda cls=cls, o=o: cls(**o), (3, 4)) for cls, o in ACTIVATION_CASES]


@pytest.mark.parametrize("name, make, shape", CHECKED, ids=[c[0] for c in CHECKED])
def test_every_module_passes_the_checker_with_respect_to_input_and_parameters(name, make, shape):
    module = make()
    report = check_model(module, normal(shape, 7), loss=None)
    report.raise_if_failed()
    own = report["(model)"].report
    assert [r.name for r in own.inputs] == ["x", *(n for n, _ in module.named_parameters())]
    assert all(r.checked for r in own.inputs)


def test_the_checker_catches_a_module_whose_backward_forgets_the_bias():
    class NoBiasGrad(Linear):
        def backward(self, dout):
            kept = self.bias.grad.copy()
            dx = super().backward(dout)
            self.bias.grad[...] = kept
            return dx

    report = check_model(NoBiasGrad(3, 2, rng=0), normal((4, 3), 0), loss=None)
    assert not report.ok
    assert report["(model)"].failed_inputs() == ["bias"]
    with pytest.raises(gradproof.GradientError):
        report.raise_if_failed()


# --- dtypes and bad input ---------------------------------------------------------------------
def test_float32_modules_stay_float32_end_to_end():
    seq = Sequential(Linear(4, 5, rng=0, dtype=np.float32), BatchNorm1d(5, dtype=np.float32),
                     A.ReLU(), LayerNorm(5, dtype=np.float32), Linear(5, 2, dtype=np.float32))
    out = seq.forward(normal((3, 4), 0, np.float32))
    dx = seq.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in seq.parameters())
    assert all(b.dtype == np.float32 for _, b in seq.named_buffers())


@pytest.mark.parametrize("module", [Linear(4, 2, dtype=np.float32),
                                    BatchNorm1d(4, dtype=np.float32),
                                    LayerNorm(4, dtype=np.float32)])
def test_an_input_of_another_dtype_is_a_type_error_naming_both_dtypes(module):
    with pytest.raises(InputTypeError, match=r"module's dtype float32, got float64; cast"):
        module.forward(normal((3, 4), 0))


@pytest.mark.parametrize("x", [np.ones((3, 4), dtype=np.int64), [[1.0] * 4] * 3])
def test_non_float_arrays_are_type_errors(x):
    for module in (Linear(4, 2), A.ReLU(), Flatten(), Dropout()):
        with pytest.raises(InputTypeError, match="x must be"):
            module.forward(x)


def test_wrong_feature_count_names_in_features_and_the_shape():
    with pytest.raises(InputError, match=r"shape \(N, 4\) .*in_features=4.*got \(3, 5\)"):
        Linear(4, 2).forward(np.ones((3, 5)))
    with pytest.raises(InputError, match=r"D = 4, got \(3, 5\)"):
        BatchNorm1d(4).forward(np.ones((3, 5)))


@pytest.mark.parametrize(
    "build, error, pattern",
    [(lambda: Linear(0, 3), InputError, "in_features must be a positive int"),
     (lambda: Linear(3, 2.5), InputTypeError, "out_features must be a positive int"),
     (lambda: Linear(3, 2, init="uniformish"), InputError, "init must be one of"),
     (lambda: Linear(3, 2, dtype=np.int32), InputError, "dtype must be np.float32"),
     (lambda: BatchNorm1d(3, momentum=2), InputError, "momentum must be a number in"),
     (lambda: LayerNorm(3, eps=-1e-5), InputError, "eps must be >= 0")],
)
def test_bad_constructor_arguments_are_named(build, error, pattern):
    with pytest.raises(error, match=pattern):
        build()


def test_backward_before_forward_is_an_error():
    for module in (Linear(2, 2), A.ReLU(), BatchNorm1d(2), Dropout()):
        with pytest.raises(InputError, match="backward called before forward"):
            module.backward(np.ones((2, 2)))


def test_to_dtype_copies_parameters_buffers_and_zeroes_grads():
    seq = Sequential(Linear(3, 4, rng=0), BatchNorm1d(4))
    seq.forward(normal((5, 3), 0))
    seq.backward(np.ones((5, 4)))
    low = to_dtype(seq, np.float32)
    assert all(p.dtype == np.float32 and not p.grad.any() for p in low.parameters())
    assert low[1].running_mean.dtype == np.float32
    assert seq[0].weight.dtype == np.float64 and seq[0].weight.grad.any()  # original untouched
    np.testing.assert_array_equal(low[0].weight.data, seq[0].weight.data.astype(np.float32))
    out = low.forward(normal((5, 3), 1, np.float32))
    assert out.dtype == np.float32

"""MLP and the loss-head convention: layout, PyTorch oracle, dtypes, training, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_modules import assert_matches_torch, twin
from torch_oracle import assert_close

from gradproof.errors import InputError, InputTypeError
from gradproof.nn import functional as F
from gradproof.nn.activation import GELU, ReLU, Tanh
from gradproof.nn.dropout import Dropout
from gradproof.nn.functional.losses import loss_function
from gradproof.nn.linear import Linear
from gradproof.nn.models import MLP, loss_and_backward
from gradproof.nn.norm import BatchNorm1d, LayerNorm

seeds = st.integers(0, 2**32 - 1)


def data(n, d, c, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, c, size=n)


def test_mlp_layer_order_per_hidden_layer():
    mlp = MLP(5, [4, 3], 2, activation="tanh", norm="layer", dropout=0.1, rng=0)
    kinds = [type(m) for m in mlp.layers]
    assert kinds == [Linear, LayerNorm, Tanh, Dropout] * 2 + [Linear]
    assert [(m.in_features, m.out_features) for m in mlp.layers if isinstance(m, Linear)] == [
        (5, 4), (4, 3), (3, 2)]


def test_mlp_without_hidden_layers_is_a_linear_classifier():
    mlp = MLP(5, [], 3)
    assert len(mlp) == 1 and isinstance(mlp[0], Linear)


def test_mlp_with_batch_norm_has_no_hidden_bias():
    mlp = MLP(5, [4], 2, norm="batch")
    names = [n for n, _ in mlp.named_parameters()]
    assert names == ["0.weight", "1.gamma", "1.beta", "3.weight", "3.bias"]
    assert isinstance(mlp[1], BatchNorm1d)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_mlp_has_any_depth(depth):
    mlp = MLP(6, [7] * depth, 3, rng=0)
    assert sum(isinstance(m, Linear) for m in mlp.layers) == depth + 1
    x, _ = data(4, 6, 3, 0)
    assert mlp.forward(x).shape == (4, 3)


@pytest.mark.parametrize("norm", [None, "batch", "layer"])
@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh"])
@settings(max_examples=4, deadline=None)
@given(n=st.integers(3, 6), seed=seeds)
def test_mlp_matches_torch_including_the_input_gradient(norm, activation, n, seed):
    mlp = MLP(5, [6, 4], 3, activation=activation, norm=norm, rng=seed, input_grad=True)
    x, _ = data(n, 5, 3, seed + 1)
    assert_matches_torch(mlp, x, seed)


def test_mlp_backward_skips_dx_by_default_with_the_same_parameter_grads():
    x, _ = data(4, 5, 3, 1)
    lean, full = MLP(5, [6], 3, rng=0), MLP(5, [6], 3, rng=0, input_grad=True)
    for mlp in (lean, full):
        mlp.forward(x)
    dscores = np.ones((4, 3))
    assert lean.backward(dscores) is None
    assert full.backward(dscores).shape == x.shape
    for p, q in zip(lean.parameters(), full.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)


def test_mlp_with_dropout_in_eval_mode_matches_torch():
    mlp = MLP(5, [6], 3, dropout=0.5, rng=0, input_grad=True).eval()
    assert_matches_torch(mlp, data(4, 5, 3, 1)[0])


def test_same_seed_same_model_and_same_dropout_masks():
    x, y = data(8, 5, 3, 0)
    a, b = (MLP(5, [6, 6], 3, dropout=0.3, rng=11) for _ in range(2))
    for name, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[name])
    assert loss_and_backward(a, x, y) == loss_and_backward(b, x, y)
    assert not np.array_equal(MLP(5, [6], 3, rng=1)[0].weight.data, a[0].weight.data)


@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_float32_mlp_stays_float32_through_the_loss(norm):
    mlp = MLP(5, [6], 3, norm=norm, dropout=0.2, dtype=np.float32, rng=0, input_grad=True)
    x, y = data(4, 5, 3, 1, np.float32)
    scores = mlp.forward(x)
    loss, dscores = F.softmax_loss(scores, y)
    dx = mlp.backward(dscores)
    assert scores.dtype == dscores.dtype == dx.dtype == np.float32
    assert all(p.data.dtype == p.grad.dtype == np.float32 for p in mlp.parameters())
    assert mlp.dtype == np.float32


def test_float32_mlp_agrees_with_float64_to_float32_precision():
    x, _ = data(4, 5, 3, 1)
    m64 = MLP(5, [6], 3, rng=0)
    m32 = MLP(5, [6], 3, rng=0, dtype=np.float32)
    assert_close(m32.forward(x.astype(np.float32)), m64.forward(x), rtol=1e-5)


def test_loss_and_backward_is_forward_loss_backward():
    x, y = data(6, 5, 3, 2)
    mlp = MLP(5, [4], 3, rng=0)
    value = loss_and_backward(mlp, x, y)
    t, pairs = twin(mlp)
    loss_t = torch.nn.functional.cross_entropy(t(torch.tensor(x)), torch.tensor(y))
    loss_t.backward()
    assert abs(value - loss_t.item()) <= 1e-12
    for ours, theirs, layout in pairs:
        assert_close(layout(ours.grad), theirs.grad.numpy())


def test_a_few_sgd_steps_reduce_the_loss():
    x, y = data(64, 5, 3, 3)
    mlp = MLP(5, [16], 3, rng=0)
    losses = []
    for _ in range(30):
        mlp.zero_grad()
        losses.append(loss_and_backward(mlp, x, y))
        for p in mlp.parameters():
            p.data -= 0.5 * p.grad
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("name", ["softmax", "svm", "mse", "bce_with_logits", "huber"])
def test_loss_function_finds_the_functional_loss_by_name(name):
    assert loss_function(name) is getattr(F, f"{name}_loss")


def test_loss_function_passes_functions_through_and_rejects_unknown_names():
    assert loss_function(F.svm_loss) is F.svm_loss
    with pytest.raises(InputError, match=r"loss must be one of \[.*'softmax'.*got 'crossent'"):
        loss_function("crossent")
    with pytest.raises(InputTypeError, match="loss must be one of"):
        loss_function(3)


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [({"activation": "swish"}, InputError, "activation must be one of"),
     ({"activation": ReLU()}, InputTypeError, "activation must be"),
     ({"norm": "group"}, InputError, r"norm must be None or one of \['batch', 'layer'\]"),
     ({"dropout": 1.0}, InputError, r"dropout must be a number in \[0, 1\)"),
     ({"init": "orthogonal"}, InputError, "init must be one of"),
     ({"dtype": np.float16}, InputError, "dtype must be np.float32 or np.float64"),
     ({"hidden_sizes": 8}, InputTypeError, "hidden_sizes must be a sequence"),
     ({"hidden_sizes": [8, 0]}, InputError, r"hidden_sizes\[1\] must be a positive int"),
     ({"num_classes": 0}, InputError, "num_classes must be a positive int"),
     ({"rng": "seed"}, InputTypeError, "rng must be")],
)
def test_bad_mlp_arguments_are_named(kwargs, error, pattern):
    args = {"in_features": 5, "hidden_sizes": [4], "num_classes": 3, **kwargs}
    with pytest.raises(error, match=pattern):
        MLP(**args)


def test_mlp_input_errors_name_the_expected_shape_and_dtype():
    mlp = MLP(5, [4], 3, dtype=np.float32)
    with pytest.raises(InputError, match=r"\(N, 5\).*got \(2, 6\)"):
        mlp.forward(np.ones((2, 6), np.float32))
    with pytest.raises(InputTypeError, match="float32, got float64"):
        mlp.forward(np.ones((2, 5)))


def test_activation_may_be_a_module_class():
    mlp = MLP(5, [4, 4], 3, activation=GELU)
    gelus = [m for m in mlp.layers if isinstance(m, GELU)]
    assert len(gelus) == 2 and gelus[0] is not gelus[1]

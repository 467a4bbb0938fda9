"""Conv and pooling modules, SmallCNN and CNN1d: PyTorch twins, the checker, init, training."""

import numpy as np
import pytest
import torch
from torch_oracle import assert_close

import gradproof
from gradproof.adapters.nn import check_model
from gradproof.errors import InputError, InputTypeError
from gradproof.nn.activation import ReLU
from gradproof.nn.cnn import CNN1d, SmallCNN
from gradproof.nn.containers import Flatten, Sequential
from gradproof.nn.conv import AvgPool1d, AvgPool2d, Conv1d, Conv2d, MaxPool1d, MaxPool2d
from gradproof.nn.linear import Linear
from gradproof.nn.models import loss_and_backward
from gradproof.optim import Adam

TORCH_POOLS = {
    MaxPool2d: torch.nn.MaxPool2d,
    AvgPool2d: torch.nn.AvgPool2d,
    MaxPool1d: torch.nn.MaxPool1d,
    AvgPool1d: torch.nn.AvgPool1d,
}


def _tensor(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64)


def conv_twin(module):
    """The float64 torch module with ``module``'s function and weights, and parameter pairs.

    Pairs are ``(gradproof parameter, torch parameter, torch layout -> gradproof layout)``.
    In a model, gradproof's ``pool -> ReLU`` becomes torch's ``ReLU -> pool``: the usual
    order, which must give the same result and the same gradients.
    """
    same = lambda g: g
    if isinstance(module, (Conv2d, Conv1d)):
        cls = torch.nn.Conv2d if isinstance(module, Conv2d) else torch.nn.Conv1d
        t = cls(
            module.in_channels,
            module.out_channels,
            module.weight.shape[2:],
            stride=module.stride,
            padding=module.padding,
            dtype=torch.float64,
        )
        t.weight.data, t.bias.data = _tensor(module.weight.data), _tensor(module.bias.data)
        return t, [(module.weight, t.weight, same), (module.bias, t.bias, same)]
    if type(module) in TORCH_POOLS:
        size = module.kernel_size if module.spatial == 2 else module.kernel_size[1]
        return TORCH_POOLS[type(module)](size, module.stride), []
    if isinstance(module, Linear):
        t = torch.nn.Linear(module.in_features, module.out_features, dtype=torch.float64)
        t.weight.data, t.bias.data = _tensor(module.weight.data.T), _tensor(module.bias.data)
        return t, [(module.weight, t.weight, lambda g: g.T), (module.bias, t.bias, same)]
    if isinstance(module, ReLU):
        return torch.nn.ReLU(), []
    if isinstance(module, Flatten):
        return torch.nn.Flatten(), []
    if isinstance(module, Sequential):
        parts = [conv_twin(m) for m in module.layers]
        layers = [p[0] for p in parts]
        for i in range(len(layers) - 1):
            if type(module.layers[i]) in TORCH_POOLS and isinstance(module.layers[i + 1], ReLU):
                layers[i], layers[i + 1] = layers[i + 1], layers[i]
        return torch.nn.Sequential(*layers), [pair for p in parts for pair in p[1]]
    raise TypeError(f"no torch twin for {module!r}")


def assert_module_matches_torch(module, x, seed=0, input_grad=True):
    """Forward and backward ``module`` and its twin; compare out, dx and every parameter grad."""
    t, pairs = conv_twin(module)
    module.zero_grad()
    out = module.forward(x)
    dout = np.random.default_rng((seed, 11)).standard_normal(out.shape)
    dx = module.backward(dout)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out_t = t(xt)
    (out_t * torch.tensor(dout)).sum().backward()
    assert_close(out, out_t.detach().numpy(), name=f"{module!r} out")
    if input_grad:
        assert dx.shape == x.shape
        assert_close(dx, xt.grad.numpy(), name=f"{module!r} dx")
    else:
        assert dx is None
    for ours, theirs, to_ours in pairs:
        assert_close(ours.grad, to_ours(theirs.grad.numpy()), name=f"{module!r} grad of {ours!r}")
    return out


# --- modules against torch.nn -----------------------------------------------------------------
@pytest.mark.parametrize(
    "kernel, stride, padding", [(3, 1, 1), ((2, 3), 2, 0), (1, 1, 0), (5, 3, 2)]
)
def test_conv2d_module_matches_torch(kernel, stride, padding):
    conv = Conv2d(3, 4, kernel, stride=stride, padding=padding, rng=0)
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 8))
    assert_module_matches_torch(conv, x)


@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 1), (5, 2, 2), (2, 3, 0)])
def test_conv1d_module_matches_torch(kernel, stride, padding):
    conv = Conv1d(2, 5, kernel, stride=stride, padding=padding, rng=2)
    x = np.random.default_rng(3).standard_normal((3, 2, 17))
    assert_module_matches_torch(conv, x)


@pytest.mark.parametrize(
    "pool, x_shape",
    [
        (MaxPool2d(2), (2, 3, 8, 7)),
        (MaxPool2d(3, stride=1), (2, 2, 6, 6)),
        (AvgPool2d((2, 3), stride=2), (2, 2, 7, 9)),
        (MaxPool2d((2, 3)), (2, 2, 7, 9)),  # default stride (2, 3), as torch
        (MaxPool1d(3, stride=2), (2, 3, 11)),
        (AvgPool1d(2), (2, 3, 11)),
    ],
)
def test_pool_modules_match_torch(pool, x_shape):
    assert_module_matches_torch(pool, np.random.default_rng(4).standard_normal(x_shape))


def test_conv2d_backward_accumulates_parameter_gradients():
    conv = Conv2d(2, 3, 3, padding=1, rng=5)
    x = np.random.default_rng(6).standard_normal((2, 2, 5, 5))
    dout = np.random.default_rng(7).standard_normal((2, 3, 5, 5))
    conv.forward(x)
    conv.backward(dout)
    once = conv.weight.grad.copy(), conv.bias.grad.copy()
    conv.backward(dout)
    assert_close(conv.weight.grad, 2 * once[0], rtol=1e-14, name="weight.grad")
    assert_close(conv.bias.grad, 2 * once[1], rtol=1e-14, name="bias.grad")


def test_conv_without_input_grad_returns_none_and_still_fills_parameter_grads():
    conv = Conv2d(2, 3, 3, padding=1, rng=8, input_grad=False)
    assert_module_matches_torch(
        conv, np.random.default_rng(9).standard_normal((2, 2, 6, 6)), input_grad=False
    )


def test_he_init_has_std_sqrt_2_over_fan_in_and_is_seeded():
    conv = Conv2d(64, 128, 3, rng=10)
    fan_in = 64 * 3 * 3
    assert abs(conv.weight.data.std() / np.sqrt(2 / fan_in) - 1) < 0.02
    assert np.all(conv.bias.data == 0)
    np.testing.assert_array_equal(Conv2d(64, 128, 3, rng=10).weight.data, conv.weight.data)
    assert not np.array_equal(Conv2d(64, 128, 3, rng=11).weight.data, conv.weight.data)


def test_float32_modules_keep_float32_and_reject_float64_input():
    conv = Conv2d(1, 2, 3, dtype=np.float32, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 1, 5, 5)).astype(np.float32)
    out = conv.forward(x)
    dx = conv.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == conv.weight.grad.dtype == np.float32
    with pytest.raises(InputTypeError, match="module's dtype float32"):
        conv.forward(x.astype(np.float64))


def test_module_bad_arguments_name_the_argument():
    with pytest.raises(
        InputError, match=r"x must have shape \(N, C, H, W\) with C = in_channels = 3"
    ):
        Conv2d(3, 4, 3).forward(np.zeros((2, 2, 5, 5)))
    with pytest.raises(InputError, match="kernel_size must be an int >= 1"):
        Conv2d(3, 4, 0)
    with pytest.raises(InputError, match="padding must be an int >= 0"):
        Conv1d(3, 4, 3, padding=-1)
    with pytest.raises(InputError, match="stride must be an int >= 1"):
        MaxPool2d(2, stride=0)
    with pytest.raises(InputError, match="larger than"):
        MaxPool2d(4).forward(np.zeros((1, 1, 3, 3)))
    with pytest.raises(InputError, match="backward called before forward"):
        Conv2d(1, 1, 1).backward(np.zeros((1, 1, 1, 1)))


# --- the models -------------------------------------------------------------------------------
def test_small_cnn_matches_torch_conv_relu_pool_network():
    model = SmallCNN(2, (12, 10), num_classes=5, channels=(4, 6), rng=0, input_grad=True)
    x = np.random.default_rng(1).standard_normal((3, 2, 12, 10))
    out = assert_module_matches_torch(model, x)
    assert out.shape == (3, 5)


def test_small_cnn_with_ties_matches_torch():
    # integer images with many equal pixels: ties in the pooling windows after the convs
    model = SmallCNN(1, 8, channels=(3, 4), rng=2, input_grad=True)
    model.layers[0].weight.data[...] = np.round(model.layers[0].weight.data)
    x = np.random.default_rng(3).integers(0, 2, (4, 1, 8, 8)).astype(float)
    assert_module_matches_torch(model, x)


def test_cnn1d_matches_torch():
    model = CNN1d(length=20, channels=(4, 5, 6), kernel_size=5, rng=4, input_grad=True)
    x = np.random.default_rng(5).standard_normal((3, 1, 20))
    assert assert_module_matches_torch(model, x).shape == (3, 10)


def test_models_take_flat_inputs_and_give_dx_back_flat():
    model = SmallCNN(1, 8, channels=(3,), rng=6, input_grad=True)
    x = np.random.default_rng(7).standard_normal((2, 1, 8, 8))
    scores = model.forward(x)
    np.testing.assert_array_equal(model.forward(x.reshape(2, 64)), scores)
    assert model.backward(np.ones((2, 10))).shape == (2, 64)
    with pytest.raises(InputError, match=r"x must have shape \(N, 1, 8, 8\) or \(N, 64\)"):
        model.forward(np.zeros((2, 63)))
    assert CNN1d(rng=0).forward(np.zeros((2, 40))).shape == (2, 10)


def test_check_model_proves_a_small_cnn_and_a_cnn1d():
    image_model = SmallCNN(1, 6, num_classes=3, channels=(2, 3), rng=8)
    x = np.random.default_rng(9).standard_normal((2, 1, 6, 6))
    check_model(image_model, x, np.array([0, 2])).raise_if_failed()
    signal_model = CNN1d(length=12, num_classes=3, channels=(2, 3), rng=10)
    s = np.random.default_rng(11).standard_normal((2, 1, 12))
    check_model(signal_model, s, np.array([1, 2])).raise_if_failed()


def test_check_vjp_proves_the_model_as_a_function_of_its_input():
    model = SmallCNN(1, 6, num_classes=3, channels=(2,), rng=12, input_grad=True)

    def forward(x):
        return model.forward(x), None

    def backward(dout, _):
        return model.backward(dout)

    x = np.random.default_rng(13).standard_normal((2, 1, 6, 6))
    gradproof.check_vjp(forward, backward, x).raise_if_failed()


def test_model_bad_arguments():
    with pytest.raises(InputError, match="kernel_size must be odd"):
        SmallCNN(kernel_size=4)
    with pytest.raises(InputError, match="too small for 3 poolings"):
        SmallCNN(1, 4, channels=(2, 2, 2))
    with pytest.raises(InputError, match=r"dropout must be a number in \[0, 1\)"):
        CNN1d(dropout=1.0)


# --- training -------------------------------------------------------------------------------
def test_small_cnn_learns_sklearn_digits_in_a_few_epochs():
    from gradproof.data import load_digits

    data = load_digits(flatten=False, dtype=np.float32, seed=0)
    model = SmallCNN(1, 8, channels=(16, 32), dtype=np.float32, rng=0)
    optimizer = Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    for _ in range(3):
        order = rng.permutation(len(data.y_train))
        for start in range(0, len(order), 32):
            batch = order[start : start + 32]
            optimizer.zero_grad()
            loss_and_backward(model, data.x_train[batch], data.y_train[batch])
            optimizer.step()
    accuracy = np.mean(model.forward(data.x_test).argmax(axis=1) == data.y_test)
    assert accuracy > 0.93  # 0.955 with these seeds

"""The published CS231n assignment values, with the assignments' exact setup code.

The expected numbers are copied from the CS231n notebooks' printed outputs
(assignment 2: FullyConnectedNets, BatchNormalization, Dropout,
ConvolutionalNetworks), which print 8 decimals for arrays; the setups use
``np.linspace`` or NumPy's legacy global generator seeded with 231, whose
streams are frozen, so they are reproducible exactly. Our functions are called
by their CS231n names (``affine_forward``, ``batchnorm_forward``, ...), as
students' code does.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradproof.nn.functional import (
    affine_forward,
    batchnorm_forward,
    dropout_forward,
    layernorm_forward,
    relu_forward,
    softmax_loss,
    spatial_batchnorm_forward,
    spatial_groupnorm_forward,
    svm_loss,
)

PRINTED = 5e-9  # half a unit in the 8th decimal that the notebooks print


def assert_printed(actual, printed):
    np.testing.assert_allclose(
        actual, printed, rtol=0, atol=PRINTED * max(1, np.max(np.abs(printed)))
    )


@pytest.fixture
def seeded():
    """The notebooks' ``np.random.seed(231)``; restores NumPy's global state afterwards."""
    state = np.random.get_state()
    np.random.seed(231)
    yield
    np.random.set_state(state)


def two_layer_activations(N: int, D1: int, D2: int, D3: int) -> np.ndarray:
    X = np.random.randn(N, D1)
    W1 = np.random.randn(D1, D2)
    W2 = np.random.randn(D2, D3)
    return np.maximum(0, X.dot(W1)).dot(W2)


def test_affine_forward():
    num_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    input_size = num_inputs * np.prod(input_shape)
    weight_size = output_dim * np.prod(input_shape)
    x = np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape)
    w = np.linspace(-0.2, 0.3, num=weight_size).reshape(np.prod(input_shape), output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)
    out, _ = affine_forward(x, w, b)
    assert_printed(out, [[1.49834967, 1.70660132, 1.91485297], [3.25553199, 3.5141327, 3.77273342]])


def test_relu_forward():
    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    out, _ = relu_forward(x)
    correct_out = np.array(
        [
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.04545455, 0.13636364],
            [0.22727273, 0.31818182, 0.40909091, 0.5],
        ]
    )
    assert_printed(out, correct_out)


def test_svm_and_softmax_loss(seeded):
    num_classes, num_inputs = 10, 50
    x = 0.001 * np.random.randn(num_inputs, num_classes)
    y = np.random.randint(num_classes, size=num_inputs)
    assert svm_loss(x, y)[0] == pytest.approx(8.999602749096233, rel=1e-13)
    assert softmax_loss(x, y)[0] == pytest.approx(2.302545844500738, rel=1e-13)


def test_batchnorm_forward_train(seeded):
    a = two_layer_activations(200, 50, 60, 3)
    assert_printed(a.mean(axis=0), [-2.3814598, -13.18038246, 1.91780462])  # the setup itself
    assert_printed(a.std(axis=0), [27.18502186, 34.21455511, 37.68611762])

    a_norm, _ = batchnorm_forward(a, np.ones(3), np.zeros(3), {"mode": "train"})
    np.testing.assert_allclose(a_norm.mean(axis=0), 0, atol=1e-15)
    assert_printed(a_norm.std(axis=0), [0.99999999, 1.0, 1.0])

    gamma, beta = np.asarray([1.0, 2.0, 3.0]), np.asarray([11.0, 12.0, 13.0])
    a_norm, _ = batchnorm_forward(a, gamma, beta, {"mode": "train"})
    assert_printed(a_norm.mean(axis=0), [11.0, 12.0, 13.0])
    assert_printed(a_norm.std(axis=0), [0.99999999, 1.99999999, 2.99999999])


def test_batchnorm_forward_test_time_after_50_training_steps(seeded):
    N, D1, D2, D3 = 200, 50, 60, 3
    W1 = np.random.randn(D1, D2)
    W2 = np.random.randn(D2, D3)
    bn_param = {"mode": "train"}
    gamma, beta = np.ones(D3), np.zeros(D3)
    for _ in range(50):
        X = np.random.randn(N, D1)
        a = np.maximum(0, X.dot(W1)).dot(W2)
        batchnorm_forward(a, gamma, beta, bn_param)
    bn_param["mode"] = "test"
    X = np.random.randn(N, D1)
    a = np.maximum(0, X.dot(W1)).dot(W2)
    a_norm, _ = batchnorm_forward(a, gamma, beta, bn_param)
    # these depend on momentum 0.9, the biased variance and running stats starting at 0
    assert_printed(a_norm.mean(axis=0), [-0.03927354, -0.04349152, -0.10452688])
    assert_printed(a_norm.std(axis=0), [1.01531428, 1.01238373, 0.97819988])


def test_layernorm_forward(seeded):
    a = two_layer_activations(4, 50, 60, 3)
    assert_printed(a.mean(axis=1), [-59.06673243, -47.60782686, -43.31137368, -26.40991744])
    assert_printed(a.std(axis=1), [10.07429373, 28.39478981, 35.28360729, 4.01831507])

    a_norm, _ = layernorm_forward(a, np.ones(3), np.zeros(3), {"mode": "train"})
    np.testing.assert_allclose(a_norm.mean(axis=1), 0, atol=1e-15)
    assert_printed(a_norm.std(axis=1), [0.99999995, 0.99999999, 1.0, 0.99999969])

    a_norm, _ = layernorm_forward(a, np.full(3, 3.0), np.full(3, 5.0), {"mode": "train"})
    assert_printed(a_norm.mean(axis=1), [5.0, 5.0, 5.0, 5.0])
    assert_printed(a_norm.std(axis=1), [2.99999985, 2.99999998, 2.99999999, 2.99999907])


def test_dropout_forward(seeded):
    x = np.random.randn(500, 500) + 10
    published = {  # p (CS231n: KEEP probability): train-time mean, fraction set to zero
        0.25: (10.014059116977283, 0.749784),
        0.4: (9.977917658761159, 0.600796),
        0.7: (9.987811912159426, 0.30074),
    }
    for p, (train_mean, zero_fraction) in published.items():
        out, _ = dropout_forward(x, {"mode": "train", "p": p})
        out_test, _ = dropout_forward(x, {"mode": "test", "p": p})
        assert x.mean() == pytest.approx(10.000207878477502, rel=1e-14)
        assert out.mean() == pytest.approx(train_mean, rel=1e-13)
        assert (out == 0).mean() == zero_fraction
        assert out_test.mean() == pytest.approx(10.000207878477502, rel=1e-14)
        assert (out_test == 0).mean() == 0.0


def test_spatial_batchnorm_forward_train(seeded):
    x = 4 * np.random.randn(2, 3, 4, 5) + 10
    assert_printed(x.mean(axis=(0, 2, 3)), [9.33463814, 8.90909116, 9.11056338])
    assert_printed(x.std(axis=(0, 2, 3)), [3.61447857, 3.19347686, 3.5168142])

    out, _ = spatial_batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-15)
    assert_printed(out.std(axis=(0, 2, 3)), [0.99999962, 0.99999951, 0.9999996])

    gamma, beta = np.asarray([3, 4, 5]), np.asarray([6, 7, 8])  # integers, as in the notebook
    out, _ = spatial_batchnorm_forward(
        x, gamma.astype(float), beta.astype(float), {"mode": "train"}
    )
    assert_printed(out.mean(axis=(0, 2, 3)), [6.0, 7.0, 8.0])
    assert_printed(out.std(axis=(0, 2, 3)), [2.99999885, 3.99999804, 4.99999798])


def test_spatial_batchnorm_forward_test_time_after_50_training_steps(seeded):
    N, C, H, W = 10, 4, 11, 12
    bn_param = {"mode": "train"}
    gamma, beta = np.ones(C), np.zeros(C)
    for _ in range(50):
        x = 2.3 * np.random.randn(N, C, H, W) + 13
        spatial_batchnorm_forward(x, gamma, beta, bn_param)
    bn_param["mode"] = "test"
    x = 2.3 * np.random.randn(N, C, H, W) + 13
    a_norm, _ = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    assert_printed(a_norm.mean(axis=(0, 2, 3)), [-0.08034406, 0.07562881, 0.05716371, 0.04378383])
    assert_printed(a_norm.std(axis=(0, 2, 3)), [0.96718744, 1.0299714, 1.02887624, 1.00585577])


def test_spatial_groupnorm_forward(seeded):
    N, C, H, W, G = 2, 6, 4, 5, 2
    x = 4 * np.random.randn(N, C, H, W) + 10
    x_g = x.reshape((N * G, -1))
    before = np.array([3.67070958, 3.09892597, 4.27043622, 3.97521327])
    assert_printed(x_g.mean(axis=1), [9.72505327, 8.51114185, 8.9147544, 9.43448077])
    assert_printed(x_g.std(axis=1), before)

    gamma, beta = np.ones((1, C, 1, 1)), np.zeros((1, C, 1, 1))
    out, _ = spatial_groupnorm_forward(x, gamma, beta, G, {"mode": "train"})
    out_g = out.reshape((N * G, -1))
    np.testing.assert_allclose(out_g.mean(axis=1), 0, atol=1e-15)
    # The only published "after" output we found (0.99999834, ...) does not follow
    # from eps = 1e-5; the exact value is std / sqrt(std**2 + eps) of the printed stds.
    np.testing.assert_allclose(out_g.std(axis=1), before / np.sqrt(before**2 + 1e-5), rtol=2e-9)

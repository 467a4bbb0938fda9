"""Code that computes in float32 whatever its inputs: no float64 re-check can prove it, so
it is judged at its forward's measured rounding noise. That must not cry wolf on correct,
numerically awkward float32 layers (reductions, normalisations, exp of large values, kinks
and ties), and must still say what it rests on."""

from __future__ import annotations

import numpy as np
import pytest

from gradproof import check_vjp

F32 = np.float32


def _c(x):
    return np.asarray(x).astype(F32)


def batchnorm(x):
    x = _c(x)
    return (x - x.mean(0)) / np.sqrt(x.var(0) + F32(1e-5)), x


def batchnorm_backward(dout, x):
    dout = _c(dout)
    inv = 1 / np.sqrt(x.var(0) + F32(1e-5))
    xhat, n = (x - x.mean(0)) * inv, x.shape[0]
    return (inv / n * (n * dout - dout.sum(0) - xhat * (dout * xhat).sum(0))).astype(F32)


def softmax(x):
    x = _c(x)
    e = np.exp(x - x.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    return p, p


def softmax_backward(dout, p):
    dout = _c(dout)
    return (p * (dout - (dout * p).sum(1, keepdims=True))).astype(F32)


def logsumexp(x):
    x = _c(x)
    m = x.max(1, keepdims=True)
    return m + np.log(np.exp(x - m).sum(1, keepdims=True)), x


def logsumexp_backward(dout, x):
    e = np.exp(x - x.max(1, keepdims=True))
    return (_c(dout) * e / e.sum(1, keepdims=True)).astype(F32)


def tanh(x):
    x = _c(x)
    return np.tanh(x), x


def tanh_backward(dout, x):
    return (_c(dout) * (1 - np.tanh(x) ** 2)).astype(F32)


def relu(x):
    x = _c(x)
    return np.maximum(x, 0), x


def relu_backward(dout, x):
    return (_c(dout) * (x > 0)).astype(F32)


def maxpool(x):
    x = _c(x)
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5)), x


def maxpool_backward(dout, x):
    n, c, h, w = x.shape
    r = x.reshape(n, c, h // 2, 2, w // 2, 2)
    mask = r == r.max(axis=(3, 5), keepdims=True)
    mask = mask / mask.sum(axis=(3, 5), keepdims=True)  # ties share the gradient
    return (mask * _c(dout)[:, :, :, None, :, None]).reshape(x.shape).astype(F32)


def _zeros(x, rng):
    x[rng.random(x.shape) < 0.1] = 0
    return x


CASES = {
    "batchnorm": (batchnorm, batchnorm_backward, (64, 100), None),
    "softmax": (softmax, softmax_backward, (64, 100), None),
    "logsumexp": (logsumexp, logsumexp_backward, (32, 300), None),
    "tanh": (tanh, tanh_backward, (128, 256), None),
    "relu with zeros": (relu, relu_backward, (64, 128), _zeros),
    "maxpool with ties": (maxpool, maxpool_backward, (2, 3, 8, 8), lambda x, rng: np.round(x)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_correct_float32_only_layers_are_never_failed(name, scale):
    forward, backward, shape, shape_it = CASES[name]
    rng = np.random.default_rng(len(name))
    x = rng.standard_normal(shape) * scale
    x = (shape_it(x, rng) if shape_it is not None else x).astype(F32)
    report = check_vjp(forward, backward, x, seed=1)
    assert report.verdict != "failed", str(report)
    if report.verdict == "ok" and name in ("batchnorm", "softmax", "tanh"):
        assert any("measured rounding noise" in n or "no re-check" in n for n in report.notes) \
            or any("not re-checked in float64" in n for n in report.notes), report.notes


def test_a_float32_only_maxpool_with_many_ties_is_not_failed():
    # Integer-valued inputs: ties in most windows, the gradient shared among them (a
    # valid subgradient). Its ties line disagreed in float32, which cannot tell nearly
    # cancelling kinks from a smooth line, and with no float64 re-check possible the
    # verdict was failed: a false alarm, now inconclusive.
    x = np.round(np.random.default_rng(1001).standard_normal((4, 3, 8, 8))).astype(F32)
    report = check_vjp(maxpool, maxpool_backward, x, seed=1)
    assert report.verdict != "failed", str(report)

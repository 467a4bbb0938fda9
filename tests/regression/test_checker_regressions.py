"""Bugs the checker once had, named after what they guard."""

import numpy as np

from gradproof import check_vjp


def affine(x, w, b):
    return x @ w + b, (x, w)


def test_transposed_dw_is_caught_when_inputs_come_from_default_rng_0():
    # The checker's upstream gradient once came from default_rng(seed=0) too, so
    # dout == x and x.T @ dout was symmetric: a transposed dw passed.
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 5)), rng.standard_normal(5)
    report = check_vjp(affine, lambda d, c: (d @ c[1].T, d.T @ c[0], d.sum(0)), x, w, b, seed=0)
    assert not report.ok and not report.inputs[1].ok


def test_sparse_bug_spread_over_every_block_is_localised():
    # One wrong coordinate per row fails every block of the first bisection
    # levels; it was once mistaken for a widespread bug and sampled away.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 25))

    def backward(dout, x):
        dx = 2 * x * dout
        dx[:, 12] *= 1.5
        return dx

    report = check_vjp(lambda x: (x**2, x), backward, x)
    assert not report.ok
    assert {c[1] for c, _, _ in report.inputs[0].worst} == {12}


def test_mathematically_zero_gradient_is_not_called_nonlinear():
    # A bias before a normalisation has an exactly-zero gradient, which the
    # backward returns as rounding noise; noise is not linear in dout, but it is
    # no bug. It was once reported as "backward is not linear in dout".
    rng = np.random.default_rng(0)
    x, b = rng.standard_normal((8, 5)), rng.standard_normal(5)

    def forward(x, b):
        z = x + b
        mu, var = z.mean(0), z.var(0)
        xhat = (z - mu) / np.sqrt(var + 1e-5)
        return xhat, (xhat, var)

    def backward(dout, cache):
        xhat, var = cache
        n = dout.shape[0]
        dx = (n * dout - dout.sum(0) - xhat * (dout * xhat).sum(0)) / (n * np.sqrt(var + 1e-5))
        return dx, dx.sum(0)

    report = check_vjp(forward, backward, x, b)
    assert report.ok, str(report)
    assert not check_vjp(forward, lambda d, c: (backward(d, c)[0], np.abs(d).sum(0)), x, b).ok


def test_float32_loss_returning_a_python_float_keeps_dx_float32():
    # dloss was once an np.float64 for a Python-float loss, so the usual
    # wrapper dloss * dx turned a float32 dx into float64 and the check failed
    # on dtype for correct code.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 4)).astype(np.float32)

    def loss(x):
        return float(np.sum(x.astype(np.float64) ** 2) / 2), x

    report = check_vjp(loss, lambda dloss, x: dloss * x, x)
    assert report.ok, str(report)


def test_an_ill_conditioned_loss_that_rounds_more_than_the_model_is_not_failed():
    """softmax loss at logits (15.8, 6.5, -10.3, 7.4, -1.6), label 0: the loss is
    logsumexp(x) - x0 ~ 1e-4, which cancels the digits of 15.8. The forward rounds
    ~20x more than the backward-error model bounds; the measured noise is used."""
    from gradproof.nn import functional as F

    x = np.array([[15.83303525, 6.4951395, -10.2947209, 7.38998544, -1.63740668]])
    y = np.array([0])

    def forward(x):
        loss, dx = F.softmax_loss(x, y)
        return loss, dx

    def backward(dout, dx):
        return dout * dx

    report = check_vjp(forward, backward, x)
    assert report.ok, str(report)
    wrong = check_vjp(forward, lambda d, dx: 1.001 * d * dx, x)
    assert wrong.verdict == "failed", str(wrong)

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

"""check_hvp: Hessian-vector products of NumPy code against differences of gradients."""

from __future__ import annotations

import numpy as np

from gradproof.adapters.second_order import check_hvp


def grad(x):
    """Gradient of f(x) = sum(log(1 + x^2))."""
    return 2 * x / (1 + x ** 2)


def hvp(v, x):
    return v * 2 * (1 - x ** 2) / (1 + x ** 2) ** 2


def test_right_hessian_vector_product_passes():
    x = np.random.default_rng(0).standard_normal(8)
    assert check_hvp(grad, hvp, x).ok


def test_hessian_vector_product_missing_a_term_fails():
    x = np.random.default_rng(0).standard_normal(8)
    report = check_hvp(grad, lambda v, x: v * 2 / (1 + x ** 2), x)
    assert report.verdict == "failed" and report.function == "hvp of grad"


def test_two_inputs_have_one_block_of_the_hessian_each():
    # f(x, s) = s * x^T A x / 2: grad = (s A x, x^T A x / 2)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 4))
    a = a + a.T
    x, s = rng.standard_normal(4), np.array(1.5)

    def grad2(x, s):
        return s * (a @ x), np.asarray(x @ a @ x / 2)

    def hvp2(vs, x, s):
        vx, vs_ = vs
        return s * (a @ vx) + (a @ x) * vs_, np.asarray((a @ x) @ vx)

    assert check_hvp(grad2, hvp2, x, s).ok
    wrong = check_hvp(grad2, lambda vs, x, s: (s * (a @ vs[0]), np.asarray((a @ x) @ vs[0])),
                      x, s)
    assert not wrong.ok and not wrong.inputs[0].ok  # the cross term s -> x is missing

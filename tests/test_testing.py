"""gradproof.testing: assertion helpers raise GradientError with the report's table."""

from __future__ import annotations

import numpy as np
import pytest

from gradproof import GradientError, InputError
from gradproof.testing import assert_grad, assert_vjp, assert_vjp_shapes


def cube(x):
    return x ** 3, x


def cube_backward(dout, x):
    return 3 * x ** 2 * dout


def cube_backward_missing_power(dout, x):
    return 3 * x * dout


def make_x(rng, shape):
    return rng.standard_normal(shape)


def test_assert_vjp_returns_the_passing_report():
    report = assert_vjp(cube, cube_backward, make_x(np.random.default_rng(0), (4, 3)))
    assert report.ok and report.inputs[0].shape == (4, 3)


def test_assert_vjp_raises_an_assertion_error_holding_the_table():
    with pytest.raises(AssertionError, match="FAILED") as info:
        assert_vjp(cube, cube_backward_missing_power, make_x(np.random.default_rng(0), 5))
    assert isinstance(info.value, GradientError)
    assert "max rel err" in str(info.value) and not info.value.report.ok


def test_assert_grad_checks_a_scalar_function():
    x = make_x(np.random.default_rng(1), 6)
    assert_grad(lambda v: float(np.sum(v ** 3)), lambda v: 3 * v ** 2, x)
    with pytest.raises(GradientError):
        assert_grad(lambda v: float(np.sum(v ** 3)), lambda v: 3 * v, x)


def test_assert_vjp_shapes_checks_each_shape_with_its_own_seed():
    reports = assert_vjp_shapes(cube, cube_backward, make_x, shapes=[(1,), (2, 3), (4, 1, 2)],
                                seed=5)
    assert [r.inputs[0].shape for r in reports] == [(1,), (2, 3), (4, 1, 2)]
    assert [r.seed for r in reports] == [5, 6, 7]


def test_assert_vjp_shapes_reports_the_failing_shapes_only():
    def backward_wrong_in_3d(dout, x):
        return cube_backward(dout, x) * (2.0 if x.ndim == 3 else 1.0)

    with pytest.raises(GradientError, match=r"failed for 1 of 2 shapes") as info:
        assert_vjp_shapes(cube, backward_wrong_in_3d, make_x, shapes=[(2, 3), (2, 2, 2)])
    assert "shape (2, 2, 2)" in str(info.value) and "shape (2, 3)" not in str(info.value)


def test_assert_vjp_shapes_rejects_an_empty_shape_list():
    with pytest.raises(InputError, match="shapes"):
        assert_vjp_shapes(cube, cube_backward, make_x, shapes=[])

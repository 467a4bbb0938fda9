"""The zoo's correct and kink cases really have correct gradients.

The oracle is a float64 numerical directional derivative of
phi(x) = sum(dout * f(x)) along random relative directions, with Richardson
extrapolation; float32 cases are evaluated in float64 (their code is
dtype-generic) and then compared with their own float32 result. Kink cases are
checked at a nearby smooth point, and shown to sit on a kink.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradproof.zoo import cases

ALL = cases()
CORRECT = cases(kind="correct")
KINKS = cases(kind="kink")
EPS = np.finfo(np.float64).eps


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def _is_float(x):
    return isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)


def _float64(inputs):
    return tuple(x.astype(np.float64) if _is_float(x) else x for x in inputs)


def _douts(out, seed=3):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(np.shape(o)) for o in _as_tuple(out))


def _phi(case, inputs, douts):
    out = case.forward(*inputs)[0]
    return float(sum(np.sum(d * o) for d, o in zip(douts, _as_tuple(out))))


def _phi_scale(case, inputs, douts):
    out = case.forward(*inputs)[0]
    return float(sum(np.sum(np.abs(d * o)) for d, o in zip(douts, _as_tuple(out))))


def _shift(inputs, directions, t):
    return tuple(x if v is None else x + t * v for x, v in zip(inputs, directions))


def _relative_directions(inputs, rng):
    """Random directions scaled by |x| per coordinate (the spread where x == 0)."""
    return [rng.standard_normal(x.shape) * np.where(x != 0, np.abs(x), np.std(x) or 1.0)
            if _is_float(x) else None for x in inputs]


def assert_directional_derivatives_match(case, inputs, t, n_directions=3):
    """<grad, v> equals the Richardson-extrapolated central difference of phi along v."""
    rng = np.random.default_rng(11)
    out, cache = case.forward(*inputs)
    douts = _douts(out)
    grads = _as_tuple(case.backward(*douts, cache))
    rounding = 1e3 * EPS * _phi_scale(case, inputs, douts) / t
    for _ in range(n_directions):
        v = _relative_directions(inputs, rng)
        analytic = sum(float(np.sum(g * d)) for g, d in zip(grads, v) if d is not None)
        magnitude = sum(float(np.sum(np.abs(g * d))) for g, d in zip(grads, v) if d is not None)

        def slope(step, v=v):
            return (_phi(case, _shift(inputs, v, step), douts)
                    - _phi(case, _shift(inputs, v, -step), douts)) / (2 * step)

        numeric = (4 * slope(t / 2) - slope(t)) / 3
        assert abs(numeric - analytic) <= 1e-6 * magnitude + rounding, (
            f"{case.name}: analytic {analytic!r} vs numeric {numeric!r}")


# float32-computing twins cannot meet a float64 tolerance, and domain twins are
# undefined on one side of their exact zeros: tests/zoo/test_structured_cases.py
# checks those on their own terms
FLOAT64_SMOOTH = {name: c for name, c in CORRECT.items()
                  if c.computes_in is None and not c.nonnegative}


@pytest.mark.parametrize("name", sorted(FLOAT64_SMOOTH))
def test_correct_case_matches_numerical_directional_derivative(name):
    case = FLOAT64_SMOOTH[name]
    assert_directional_derivatives_match(case, _float64(case.inputs()), t=1e-5)


def _nearby_smooth_point(inputs, rng):
    """Each float input moved by 1e-4 of its spread: off every tie, zero and bound."""
    return tuple(x + 1e-4 * (np.std(x) or 1.0) * rng.standard_normal(x.shape)
                 if _is_float(x) else x for x in inputs)


@pytest.mark.parametrize("name", sorted(KINKS))
def test_kink_case_matches_numerical_derivative_at_a_nearby_smooth_point(name):
    case = KINKS[name]
    inputs = _nearby_smooth_point(case.inputs(), np.random.default_rng(5))
    assert_directional_derivatives_match(case, inputs, t=1e-7)


@pytest.mark.parametrize("name", sorted(KINKS))
def test_kink_case_inputs_sit_on_a_kink(name):
    case = KINKS[name]
    inputs = case.inputs()
    douts = _douts(case.forward(*inputs)[0])
    rng = np.random.default_rng(2)
    v = [rng.standard_normal(x.shape) if _is_float(x) else None for x in inputs]
    t = 1e-9
    here = _phi(case, inputs, douts)
    right = (_phi(case, _shift(inputs, v, t), douts) - here) / t
    left = (here - _phi(case, _shift(inputs, v, -t), douts)) / t
    assert abs(right - left) > 1e-3, f"{name}: one-sided slopes {left} and {right} agree"


@pytest.mark.parametrize("name", sorted(n for n, c in ALL.items()
                                        if c.kind != "bug" and any(
                                            _is_float(x) and x.dtype == np.float32
                                            for x in c.inputs())))
def test_float32_case_agrees_with_its_float64_evaluation(name):
    case = ALL[name]
    inputs32 = case.inputs()
    out32, cache32 = case.forward(*inputs32)
    douts = _douts(out32)
    grads32 = _as_tuple(case.backward(*[d.astype(np.float32) for d in douts], cache32))
    grads64 = _as_tuple(case.backward(*douts, case.forward(*_float64(inputs32))[1]))
    for g32, g64 in zip(grads32, grads64):
        if g64 is not None:
            assert g32.dtype == np.float32
            np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-4 * np.abs(g64).max())


def test_saturated_sigmoid_derivative_is_tiny_positive_and_symmetric():
    case = ALL["sigmoid_saturated"]
    (x,) = case.inputs()
    grad = case.backward(np.ones_like(x), case.forward(x)[1])
    mirrored = case.backward(np.ones_like(x), case.forward(-x)[1])
    np.testing.assert_array_equal(grad, mirrored)
    assert np.all((grad > 1e-19) & (grad < 1e-16))
    # on the negative side sigmoid(x) ~ exp(x) is representable: differences are accurate
    neg = x < 0
    step = 1e-6 * np.abs(x)
    numeric = (case.forward(x + step)[0] - case.forward(x - step)[0]) / (2 * step)
    np.testing.assert_allclose(grad[neg], numeric[neg], rtol=1e-8)

"""The checker's rules, each with functions that really fail and really pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradproof
from gradproof import GradientError, check_grad, check_vjp

from . import layers as L

RNG = np.random.default_rng(0)


def kinds(report):
    return {p.kind for p in report.problems}


def affine_inputs(n=8, d=12, m=5, dtype=np.float64, rng=RNG):
    return (rng.standard_normal((n, d)).astype(dtype), rng.standard_normal((d, m)).astype(dtype),
            rng.standard_normal(m).astype(dtype))


# --- correct code passes ---------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 6), d=st.integers(1, 9), m=st.integers(1, 7), seed=st.integers(0, 99))
def test_correct_affine_passes_over_shapes(n, d, m, seed):
    rng = np.random.default_rng(seed)
    report = check_vjp(L.affine, L.affine_backward, *affine_inputs(n, d, m, rng=rng), seed=seed)
    report.raise_if_failed()
    assert report.n_evals < 80


def test_report_fields_and_table():
    report = check_vjp(L.affine, L.affine_backward, *affine_inputs())
    assert report.ok and len(report.inputs) == 3
    assert [r.index for r in report.inputs] == [0, 1, 2]
    assert [r.name for r in report.inputs] == ["x", "w", "b"]
    for r in report.inputs:
        assert r.ok and r.max_rel_error <= r.tol and r.tol_reason
    text = str(report)
    assert "OK" in text and "max rel err" in text and "w" in text
    json.dumps(report.to_dict())


def test_multi_dim_input_is_flattened_like_cs231n():
    x = RNG.standard_normal((3, 2, 4))
    w = RNG.standard_normal((8, 5))
    b = RNG.standard_normal(5)
    assert check_vjp(L.affine, L.affine_backward, x, w, b).ok


# --- 1. wrong values -------------------------------------------------------------
def test_subtle_relative_error_1e6_is_caught():
    def backward(dout, cache):
        dx, dw, db = L.affine_backward(dout, cache)
        return dx * (1 + 1e-6), dw, db

    report = check_vjp(L.affine, backward, *affine_inputs())
    assert not report.ok and not report.inputs[0].ok and report.inputs[1].ok


def test_bug_in_one_element_is_caught_and_localised():
    x, w, b = affine_inputs(32, 128, 64)

    def backward(dout, cache):
        dx, dw, db = L.affine_backward(dout, cache)
        dw[77, 5] *= 1.01
        return dx, dw, db

    report = check_vjp(L.affine, backward, x, w, b)
    assert not report.ok
    res = report.inputs[1]
    assert not res.ok and res.worst[0][0] == (77, 5)
    assert report.inputs[0].ok and report.inputs[2].ok
    assert report.n_evals < 0.02 * 2 * (x.size + w.size + b.size)


def test_bug_confined_to_one_time_step_names_the_slice():
    x = RNG.standard_normal((4, 5, 3))
    h0 = RNG.standard_normal((4, 6))
    wx, wh = RNG.standard_normal((3, 6)), RNG.standard_normal((6, 6)) * 0.3
    b = RNG.standard_normal(6)
    # the first step's tanh derivative uses h_prev: dx is wrong only at t = 0
    report = check_vjp(L.rnn, lambda d, c: L.rnn_backward(d, c, bad_step=0), x, h0, wx, wh, b)
    assert not report.ok and not report.inputs[0].ok
    assert {c[1] for c, _, _ in report.inputs[0].worst} == {0}
    assert any(p.kind == "slice" and p.input == 0 and "x[:, 0, :]" in p
               for p in report.problems), str(report)
    good = check_vjp(L.rnn, L.rnn_backward, x, h0, wx, wh, b)
    assert good.ok


def test_rnn_forgetting_the_carried_gradient_is_caught():
    x = RNG.standard_normal((2, 4, 3))
    args = (x, RNG.standard_normal((2, 5)), RNG.standard_normal((3, 5)),
            RNG.standard_normal((5, 5)) * 0.4, RNG.standard_normal(5))
    report = check_vjp(L.rnn, lambda d, c: L.rnn_backward(d, c, forget_carry=True), *args)
    assert not report.ok


def test_repeated_embedding_indices_lost_are_caught():
    idx = np.array([[0, 2, 2], [1, 2, 0]])
    w = RNG.standard_normal((4, 3))
    assert check_vjp(L.embedding, L.embedding_backward, idx, w).ok
    bad = check_vjp(L.embedding, L.embedding_backward_lossy, idx, w)
    assert not bad.ok and not bad.inputs[1].ok
    assert not bad.inputs[0].checked  # integer indices are passed through
    assert {c[0] for c, _, _ in bad.inputs[1].worst} <= {0, 2}


def test_overlapping_pool_with_assignment_instead_of_accumulation_is_caught():
    x = RNG.standard_normal((3, 10))
    assert check_vjp(L.max_pool_1d, L.max_pool_1d_backward, x).ok
    assert not check_vjp(L.max_pool_1d, L.max_pool_1d_backward_assign, x).ok


# --- 2. shape and dtype --------------------------------------------------------------
def test_bias_gradient_with_extra_axis_is_a_shape_error_even_though_values_agree():
    def backward(dout, cache):
        dx, dw, db = L.affine_backward(dout, cache)
        return dx, dw, db[None, :]

    report = check_vjp(L.affine, backward, *affine_inputs())
    assert not report.ok and "shape" in kinds(report)
    assert report.inputs[2].status == "SHAPE"
    assert "(1, 5)" in str(report) and "(5,)" in str(report)


def test_gradient_dtype_must_match_input_dtype():
    def backward(dout, cache):
        dx, dw, db = L.affine_backward(dout, cache)
        return dx.astype(np.float32), dw, db

    report = check_vjp(L.affine, backward, *affine_inputs())
    assert not report.ok and "dtype" in kinds(report)


def test_wrong_number_of_gradients_is_reported():
    report = check_vjp(L.affine, lambda d, c: L.affine_backward(d, c)[:2], *affine_inputs())
    assert not report.ok and "structure" in kinds(report)


# --- 3. side effects, linearity, determinism -----------------------------------------
def test_backward_writing_into_dout_is_named():
    def backward(dout, x):
        dout[x <= 0] = 0
        return dout

    report = check_vjp(L.relu, backward, RNG.standard_normal((4, 5)))
    assert not report.ok and "mutated-dout" in kinds(report)


def test_backward_accumulating_into_callers_dout_is_named():
    def backward(dout, cache):
        dx, dw, db = L.affine_backward(dout, cache)
        dout += 1.0
        return dx, dw, db

    report = check_vjp(L.affine, backward, *affine_inputs())
    assert not report.ok and "mutated-dout" in kinds(report)


def test_forward_modifying_its_input_is_named():
    def forward(x):
        np.maximum(x, 0, out=x)
        return x.copy(), x.copy()

    report = check_vjp(forward, L.relu_backward, RNG.standard_normal((4, 5)))
    assert not report.ok and "mutated-input" in kinds(report)


def test_backward_modifying_its_cache_is_named():
    def backward(dout, cache):
        x, w, b = cache
        grads = L.affine_backward(dout, cache)
        w *= 2
        return grads

    report = check_vjp(L.affine, backward, *affine_inputs())
    assert not report.ok and "mutated-cache" in kinds(report)


def test_backward_not_linear_in_dout_is_named():
    report = check_vjp(L.relu, lambda dout, x: np.abs(dout) * (x > 0), RNG.standard_normal(20))
    assert not report.ok and "nonlinear" in kinds(report)


def test_loss_backward_ignoring_dout_is_named():
    x = RNG.standard_normal((6, 4))
    y = RNG.integers(0, 4, 6)
    report = check_vjp(L.loss_forward, lambda dloss, dx: (dx, None), x, y)
    assert not report.ok and "ignores-dout" in kinds(report)
    assert check_vjp(L.loss_forward, L.loss_backward, x, y).ok


def test_unseeded_dropout_is_nondeterministic():
    def dropout(x):
        mask = np.random.default_rng().random(x.shape) < 0.5
        return x * mask / 0.5, mask

    report = check_vjp(dropout, lambda dout, mask: dout * mask / 0.5, RNG.standard_normal(50))
    assert not report.ok and kinds(report) == {"nondeterministic"}
    assert "seed" in str(report)


def test_seeded_dropout_passes():
    def dropout(x, seed=3):
        mask = np.random.default_rng(seed).random(x.shape) < 0.5
        return x * mask / 0.5, mask

    assert check_vjp(dropout, lambda dout, mask: dout * mask / 0.5, RNG.standard_normal(50)).ok


# --- 4. NaN / Inf -----------------------------------------------------------------
def test_nan_in_forward_output_is_reported():
    report = check_vjp(lambda x: (np.log(x), x), lambda d, x: d / x, np.array([1.0, -1.0, 2.0]))
    assert not report.ok and "nan" in kinds(report)
    assert "NaN" in str(report)


def test_nan_in_gradient_is_reported():
    def backward(dout, cache):
        dx, dw, db = L.affine_backward(dout, cache)
        dx[0, 0] = np.nan
        return dx, dw, db

    report = check_vjp(L.affine, backward, *affine_inputs())
    assert not report.ok and "nan" in kinds(report) and report.inputs[0].status == "NAN"


# --- 5. numerically awkward but correct ----------------------------------------------
def elementwise(f, df):
    return (lambda x: (f(x), x)), (lambda dout, x: dout * df(x))


AWKWARD = {
    "exp of large arguments": (np.exp, np.exp, RNG.uniform(50, 700, 30)),
    "log near 0": (np.log, lambda x: 1 / x, np.array([1e-9, 1e-6, 1e-3, 0.5, 3.0])),
    "sqrt near 0": (np.sqrt, lambda x: 0.5 / np.sqrt(x), np.array([1e-12, 1e-6, 1.0])),
    "steep tanh": (lambda x: np.tanh(100 * x), lambda x: 100 / np.cosh(100 * x) ** 2,
                   RNG.standard_normal(40) * 0.03),
    "values 1e3, outputs 1e7": (lambda x: 10 * x**2, lambda x: 20 * x, RNG.uniform(900, 1100, 25)),
}


@pytest.mark.parametrize("name", sorted(AWKWARD))
def test_no_false_alarm_on_awkward_elementwise(name):
    f, df, x = AWKWARD[name]
    check_vjp(*elementwise(f, df), x).raise_if_failed()


def test_saturated_sigmoid_with_tiny_gradients_passes():
    x = np.array([40.0, -40.0, 38.0, -39.5, 0.3])
    report = check_vjp(L.sigmoid, L.sigmoid_backward, x)
    report.raise_if_failed()


def test_logits_in_the_hundreds_pass():
    x = RNG.standard_normal((16, 10)) * 300
    y = RNG.integers(0, 10, 16)
    check_vjp(L.loss_forward, L.loss_backward, x, y).raise_if_failed()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_batchnorm_passes_in_float32_and_with_large_offsets(dtype, offset):
    x = (RNG.standard_normal((32, 16)) + offset).astype(dtype)
    gamma, beta = RNG.standard_normal(16).astype(dtype), RNG.standard_normal(16).astype(dtype)
    check_vjp(L.batchnorm, L.batchnorm_backward, x, gamma, beta).raise_if_failed()


def test_float32_end_to_end_affine_and_loss_pass():
    check_vjp(L.affine, L.affine_backward, *affine_inputs(64, 256, 128, np.float32)) \
        .raise_if_failed()
    x = (RNG.standard_normal((16, 10)) * 3).astype(np.float32)
    y = RNG.integers(0, 10, 16)
    check_vjp(L.loss_forward, L.loss_backward, x, y).raise_if_failed()


def test_float32_factor_two_bug_is_still_caught():
    x = (RNG.standard_normal((16, 10)) * 3).astype(np.float32)
    y = RNG.integers(0, 10, 16)
    report = check_vjp(L.loss_forward, lambda d, dx: (2 * d * dx, None), x, y)
    assert not report.ok


# --- 6. kinks ------------------------------------------------------------------------
def test_relu_at_exactly_zero_is_a_kink_not_a_bug():
    x = np.array([0.0, 0.0, 1.0, -1.0, 0.0, 2.0, -3.0, 0.0])
    report = check_vjp(L.relu, L.relu_backward, x)
    assert report.ok, str(report)
    assert {k.coord for k in report.kinks} == {(0,), (1,), (4,), (7,)}
    assert "kink" in str(report)


def test_abs_within_1e7_of_zero_passes():
    x = np.array([1e-8, -1e-8, 0.0, 3e-8, -5e-8, 1.0, -2.0])
    check_vjp(lambda x: (np.abs(x), x), lambda d, x: d * np.sign(x), x).raise_if_failed()


def test_max_pool_ties_are_never_failed():
    # overlapping windows (size 3, stride 1) with exact ties: the first-maximum rule is a
    # valid subgradient, yet at a coordinate where two tied windows meet it leaves that
    # coordinate's one-sided slopes, as a wrong split of a tie does; not proven either way
    x = np.array([[1.0, 1.0, 1.0, 2.0, 2.0, 0.0, 3.0, 3.0, 3.0, -1.0]])
    report = check_vjp(L.max_pool_1d, L.max_pool_1d_backward, x)
    assert report.verdict != "failed", str(report)
    assert report.kinks
    if report.verdict == "inconclusive":
        assert "outside the one-sided derivatives" in report.inputs[0].reason


def test_gradient_copied_to_every_tied_max_is_caught():
    x = np.array([[1.0, 1.0, 1.0, 2.0, 2.0, 0.0, 3.0, 3.0, 3.0, -1.0]])
    report = check_vjp(L.max_pool_1d, L.max_pool_1d_backward_all_ties, x)
    assert not report.ok and "ties" in kinds(report)


# --- 8. diagnosis ----------------------------------------------------------------------
def test_missing_division_by_n_is_named():
    x = RNG.standard_normal((16, 10))
    y = RNG.integers(0, 10, 16)
    report = check_vjp(L.loss_forward, lambda d, dx: (16 * d * dx, None), x, y)
    assert not report.ok and "factor" in kinds(report)
    assert "16 = size of axis 0" in str(report)


def test_sign_flip_is_named():
    report = check_vjp(L.sigmoid, lambda d, out: -d * out * (1 - out), RNG.standard_normal(30))
    assert "sign" in kinds(report)


def test_zero_gradient_is_named():
    def backward(dout, cache):
        dx, dw, db = L.affine_backward(dout, cache)
        return dx, np.zeros_like(dw), db

    report = check_vjp(L.affine, backward, *affine_inputs())
    assert "zeros" in kinds(report)


def test_transposed_gradient_is_named():
    def backward(dout, cache):
        x, w, b = cache
        return dout @ w.T, (x.T @ dout).T, dout.sum(0)

    report = check_vjp(L.affine, backward, *affine_inputs(6, 7, 7))
    assert "transpose" in kinds(report)


# --- API ------------------------------------------------------------------------------
def test_closure_style_forward_is_accepted():
    def forward(x, w):
        out = x @ w

        def backprop(dout):
            return dout @ w.T, x.T @ dout

        return out, backprop

    x, w = RNG.standard_normal((4, 3)), RNG.standard_normal((3, 2))
    assert check_vjp(forward, None, x, w).ok
    assert check_vjp(forward, x, w).ok  # backward omitted altogether


def test_tuple_outputs_use_one_dout_each():
    def forward(x):
        return (np.sin(x), x**2), x

    def backward(d1, d2, x):
        return d1 * np.cos(x) + 2 * x * d2

    assert check_vjp(forward, backward, RNG.standard_normal(7)).ok
    assert not check_vjp(forward, lambda d1, d2, x: d1 * np.cos(x), RNG.standard_normal(7)).ok


def test_wrt_limits_the_checked_inputs():
    def backward(dout, cache):
        dx, dw, db = L.affine_backward(dout, cache)
        return dx, dw * 3, db

    inputs = affine_inputs()
    assert check_vjp(L.affine, backward, *inputs, wrt=["x", "b"]).ok
    assert not check_vjp(L.affine, backward, *inputs, wrt=[1]).ok


def test_raise_if_failed_raises_gradient_error_with_the_table():
    def backward(dout, cache):
        dx, dw, db = L.affine_backward(dout, cache)
        return dx, dw, 2 * db

    report = check_vjp(L.affine, backward, *affine_inputs())
    with pytest.raises(GradientError) as info:
        report.raise_if_failed()
    assert isinstance(info.value, AssertionError)
    assert "max rel err" in str(info.value) and "FAIL" in str(info.value)


def test_check_grad_scalar_function():
    def f(x):
        return float(np.sum(x**3))

    def grad(x):
        return 3 * x**2

    x = RNG.standard_normal(10)
    assert check_grad(f, grad, x).ok
    assert not check_grad(f, lambda x: 3 * x, x).ok


def test_full_mode_measures_every_coordinate():
    x = RNG.standard_normal((3, 4))
    report = check_vjp(L.sigmoid, L.sigmoid_backward, x, mode="full")
    assert report.ok and report.inputs[0].numeric.shape == x.shape
    assert report.n_evals >= 4 * x.size
    out = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(report.inputs[0].numeric, (report.inputs[0].analytic), rtol=1e-7)
    assert np.all(np.sign(report.inputs[0].numeric) != 0) or out.size


def test_full_mode_in_small_chunks_gives_the_same_report(monkeypatch):
    """Full mode measures coordinates in memory-bounded chunks; chunking changes nothing."""
    from gradproof.check import localize

    x = RNG.standard_normal((6, 7))

    def buggy(dout, cache):
        dx = L.sigmoid_backward(dout, cache).copy()
        dx[4, 5] *= 1.001
        return dx

    whole = check_vjp(L.sigmoid, buggy, x, mode="full", seed=3)
    monkeypatch.setattr(localize, "CHUNK_BYTES", 1)  # chunks of 16 coordinates
    chunked = check_vjp(L.sigmoid, buggy, x, mode="full", seed=3)
    assert not whole.ok and whole.inputs[0].worst[0][0] == (4, 5)
    assert {**whole.to_dict(), "seconds": 0} == {**chunked.to_dict(), "seconds": 0}
    np.testing.assert_array_equal(whole.inputs[0].numeric, chunked.inputs[0].numeric)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"mode": "fast"}, "mode"), ({"method": "magic"}, "method"), ({"wrt": [7]}, "wrt"),
     ({"wrt": ["nope"]}, "wrt"), ({"n_directions": 0}, "n_directions"), ({"step": 2.0}, "step")],
)
def test_bad_options_raise_clear_errors(kwargs, match):
    with pytest.raises(gradproof.InputError, match=match):
        check_vjp(L.affine, L.affine_backward, *affine_inputs(), **kwargs)


def test_no_float_input_raises():
    with pytest.raises(gradproof.InputError, match="float"):
        check_vjp(lambda i: (i * 2, None), lambda d, c: None, np.arange(3))


def test_forward_that_does_not_return_a_pair_is_reported():
    report = check_vjp(lambda x: x * 2, lambda d, c: d, RNG.standard_normal(3))
    assert not report.ok and "(out, cache)" in str(report)


# --- 7. complex step ---------------------------------------------------------------
def _smooth(x):
    return np.tanh(x) * np.exp(x / 3), x


def _smooth_backward(dout, x):
    return dout * ((1 - np.tanh(x) ** 2) * np.exp(x / 3) + np.tanh(x) * np.exp(x / 3) / 3)


def test_complex_step_sees_a_1e9_error_that_central_differences_cannot():
    x = RNG.standard_normal((6, 5))

    def subtle(dout, x):
        return _smooth_backward(dout, x) * (1 + 1e-9)

    assert check_vjp(_smooth, _smooth_backward, x, method="complex").ok
    assert check_vjp(_smooth, subtle, x, method="fd").ok  # below central differences' error
    report = check_vjp(_smooth, subtle, x, method="complex")
    assert not report.ok and report.method == "complex"
    assert report.inputs[0].tol < 1e-12


def test_complex_step_falls_back_when_the_forward_is_not_analytic():
    x = RNG.standard_normal(9)
    report = check_vjp(lambda x: (np.abs(x), x), lambda d, x: d * np.sign(x), x, method="complex")
    assert report.ok and report.method == "fd"
    assert any("central differences were used" in n for n in report.notes)


def test_edge_inputs_are_handled():
    rng = np.random.default_rng(5)

    def scaled(s, x):
        return s * x, (s, x)

    # a 0-d input whose gradient comes back as a NumPy scalar
    assert check_vjp(scaled, lambda d, c: (np.sum(d * c[1]), d * c[0]),
                     np.array(2.0), rng.standard_normal(4)).ok
    # an empty batch, and values near the float64 limit
    assert check_vjp(lambda x, w: (x @ w, (x, w)), lambda d, c: (d @ c[1].T, c[0].T @ d),
                     np.zeros((0, 3)), rng.standard_normal((3, 2))).ok
    assert check_vjp(lambda x: (x * 1e5, x), lambda d, x: d * 1e5,
                     np.array([1e300, -1e300, 1.0])).ok


def _relu(x):
    return np.maximum(x, 0), x


def _relu_backward(dout, x):
    return dout * (x > 0)


@pytest.mark.parametrize("n", [64, 128])
def test_a_sparse_bug_is_found_in_an_input_dense_with_kinks(n):
    """ReLU of a ReLU's output: half the coordinates are exactly 0 (kinks). The
    kinks are bisected last, so they cannot use up the budget before the wrong
    coordinate among the smooth ones is found."""
    x = np.maximum(np.random.default_rng(n).standard_normal((n, n)), 0)
    positive = np.argwhere(x > 0)
    k = tuple(int(c) for c in positive[len(positive) // 3])

    def buggy(dout, x):
        g = _relu_backward(dout, x)
        g[k] *= 1.01
        return g

    if n <= 64:  # at 128 the correct check measures ~8,000 kinks one by one (~33,000 calls)
        assert check_vjp(_relu, _relu_backward, x).ok
    report = check_vjp(_relu, buggy, x)
    assert not report.ok
    assert report.inputs[0].worst[0][0] == k


def test_a_bug_at_an_exact_zero_of_a_smooth_function_is_found():
    """Exact zeros are only suspected kinks: where the function is smooth they
    are checked like any other coordinate."""
    rng = np.random.default_rng(5)
    x = np.where(rng.random((32, 32)) < 0.5, 0.0, rng.standard_normal((32, 32)))
    zeros = np.argwhere(x == 0)
    k = tuple(int(c) for c in zeros[len(zeros) // 2])

    def forward(x):
        return x**2 + x, x

    def buggy(dout, x):
        g = dout * (2 * x + 1)
        g[k] *= 1.01
        return g

    report = check_vjp(forward, buggy, x)
    assert not report.ok and report.inputs[0].worst[0][0] == k

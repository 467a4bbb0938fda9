"""Max and average pooling (2-D and 1-D): PyTorch as the oracle, the checker, ties, overlaps."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_oracle import assert_close, random_like, torch_vjp

import gradproof
from gradproof.errors import InputError, InputTypeError
from gradproof.nn import functional as F

TF = torch.nn.functional

POOLS_2D = {  # kind: (forward, backward, torch function)
    "max": (F.max_pool2d, F.max_pool2d_backward, TF.max_pool2d),
    "avg": (F.avg_pool2d, F.avg_pool2d_backward, TF.avg_pool2d),
}
POOLS_1D = {
    "max": (F.max_pool1d, F.max_pool1d_backward, TF.max_pool1d),
    "avg": (F.avg_pool1d, F.avg_pool1d_backward, TF.avg_pool1d),
}


@st.composite
def pool_cases(draw, spatial: int = 2, integers: bool = False):
    """Random ``(x, window, stride)``: windows 1-4 wide, strides 1-3 (overlapping included).

    With ``integers`` the values are small integers, so that windows hold ties.
    """
    window = tuple(draw(st.integers(1, 4)) for _ in range(spatial))
    stride = draw(st.integers(1, 3))
    size = tuple(draw(st.integers(k, 8)) for k in window)
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    shape = (N, C, *size)
    x = rng.integers(-2, 3, shape).astype(float) if integers else rng.standard_normal(shape)
    return x, window, stride


def pool2d(forward, window, stride):
    """The pooling forward with its options bound, for the checker."""

    def f(x):
        return forward(x, window[0], window[1], stride)

    return f


def pool1d(forward, window, stride):
    def f(x):
        return forward(x, window[0], stride)

    return f


def assert_matches_torch(forward, backward, torch_fn, x, window, stride, bind):
    out, cache = bind(forward, window, stride)(x)
    dout = random_like(out, seed=1)
    t_out, (t_dx,) = torch_vjp(
        torch_fn, [x], dout, kwargs={"kernel_size": window, "stride": stride}
    )
    assert_close(out, t_out, name="out")
    assert_close(backward(dout, cache), t_dx, name="dx")


# --- against PyTorch ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(POOLS_2D))
@settings(max_examples=20, deadline=None)
@given(case=pool_cases())
def test_pool2d_matches_torch(kind, case):
    assert_matches_torch(*POOLS_2D[kind], *case, bind=pool2d)


@pytest.mark.parametrize("kind", sorted(POOLS_1D))
@settings(max_examples=10, deadline=None)
@given(case=pool_cases(spatial=1))
def test_pool1d_matches_torch(kind, case):
    assert_matches_torch(*POOLS_1D[kind], *case, bind=pool1d)


@settings(max_examples=20, deadline=None)
@given(case=pool_cases(integers=True))
def test_max_pool2d_ties_go_to_the_first_maximum_like_torch(case):
    # small integers: most windows hold several equal maxima
    assert_matches_torch(*POOLS_2D["max"], *case, bind=pool2d)


@pytest.mark.parametrize("kind", sorted(POOLS_2D))
def test_pool2d_takes_a_stride_per_axis_like_torch(kind):
    x = np.random.default_rng(6).standard_normal((2, 3, 9, 8))
    assert_matches_torch(*POOLS_2D[kind], x, (2, 3), (1, 3), bind=pool2d)


# --- the checker -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(POOLS_2D))
@settings(max_examples=10, deadline=None)
@given(case=pool_cases())
def test_pool2d_passes_check_vjp(kind, case):
    forward, backward, _ = POOLS_2D[kind]
    x, window, stride = case
    gradproof.check_vjp(pool2d(forward, window, stride), backward, x).raise_if_failed()


@pytest.mark.parametrize("kind", sorted(POOLS_1D))
@settings(max_examples=5, deadline=None)
@given(case=pool_cases(spatial=1))
def test_pool1d_passes_check_vjp(kind, case):
    forward, backward, _ = POOLS_1D[kind]
    x, window, stride = case
    gradproof.check_vjp(pool1d(forward, window, stride), backward, x).raise_if_failed()


@pytest.mark.parametrize("window, stride", [((2, 2), 2), ((3, 3), 1), ((3, 2), 2)])
def test_max_pool2d_with_exact_ties_is_never_failed(window, stride):
    # constant windows: every element is a maximum (a kink); the first-maximum rule is a
    # valid subgradient. Where overlapping windows meet at a tie it can leave a
    # coordinate's one-sided slopes, as a wrong split does: inconclusive there, never failed
    x = np.repeat(np.arange(4.0), 16).reshape(1, 4, 4, 4)
    report = gradproof.check_vjp(pool2d(F.max_pool2d, window, stride), F.max_pool2d_backward, x)
    assert report.verdict != "failed", str(report)
    if stride >= window[0] and stride >= window[1]:  # no overlap: proven
        assert report.ok, str(report)


def test_pool_cs231n_signature_passes_check_vjp():
    x = np.random.default_rng(231).standard_normal((3, 2, 8, 8))
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    gradproof.check_vjp(
        F.max_pool_forward_naive, F.max_pool_backward_naive, x, pool_param
    ).raise_if_failed()
    out, _ = F.max_pool_forward_fast(x, pool_param)
    np.testing.assert_array_equal(out, F.max_pool2d(x, 2, 2, 2)[0])


# --- by hand: ties, overlaps -----------------------------------------------------------------
def test_max_pool2d_tie_sends_the_whole_gradient_to_the_first_maximum():
    x = np.array([[[[5.0, 5.0], [1.0, 5.0]]]])
    out, cache = F.max_pool2d(x, 2, 2, 2)
    dx = F.max_pool2d_backward(np.array([[[[3.0]]]]), cache)
    np.testing.assert_array_equal(out, [[[[5.0]]]])
    np.testing.assert_array_equal(dx, [[[[3.0, 0.0], [0.0, 0.0]]]])


def test_max_pool2d_gradient_sums_to_dout_in_every_window_with_ties():
    x = np.random.default_rng(0).integers(0, 2, (2, 3, 6, 6)).astype(float)  # many ties
    out, cache = F.max_pool2d(x, 3, 3, 3)
    dout = random_like(out, seed=2)
    dx = F.max_pool2d_backward(dout, cache)
    window_sums = dx.reshape(2, 3, 2, 3, 2, 3).sum(axis=(3, 5))
    np.testing.assert_allclose(window_sums, dout, rtol=0, atol=1e-15)
    assert np.count_nonzero(dx) == dout.size  # one element per window


def test_max_pool2d_overlapping_windows_accumulate_into_a_shared_maximum():
    # the centre is the maximum of all four 2x2 windows (stride 1): it gets all four gradients
    x = np.array([[[[0.0, 1.0, 0.0], [2.0, 9.0, 3.0], [0.0, 4.0, 0.0]]]])
    out, cache = F.max_pool2d(x, 2, 2, 1)
    np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), 9.0))
    dout = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dx = F.max_pool2d_backward(dout, cache)
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = 10.0
    np.testing.assert_array_equal(dx, expected)


def test_avg_pool2d_overlapping_windows_accumulate():
    out, cache = F.avg_pool2d(np.ones((1, 1, 3, 3)), 2, 2, 1)
    np.testing.assert_array_equal(out, np.ones((1, 1, 2, 2)))
    dx = F.avg_pool2d_backward(np.ones((1, 1, 2, 2)), cache)
    # each pixel gets 1/4 from every window covering it
    np.testing.assert_array_equal(dx, [[[[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]]]])


def test_pooling_ignores_rows_and_columns_that_fill_no_window():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    out, cache = F.max_pool2d(x, 2, 2, 2)
    np.testing.assert_array_equal(out, [[[[6.0, 8.0], [16.0, 18.0]]]])
    dx = F.max_pool2d_backward(np.ones((1, 1, 2, 2)), cache)
    assert dx[..., 4, :].sum() == 0 and dx[..., :, 4].sum() == 0


# --- dtypes and layouts -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(POOLS_2D))
def test_pool2d_float32_stays_float32(kind):
    forward, backward, _ = POOLS_2D[kind]
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 6)).astype(np.float32)
    out, cache = forward(x, 3, 3, 2)
    dx = backward(np.ones(out.shape, np.float32), cache)
    assert out.dtype == np.float32 and dx.dtype == np.float32 and dx.shape == x.shape


def test_max_pool2d_of_a_strided_view_matches_the_contiguous_copy():
    x = np.random.default_rng(4).standard_normal((6, 5, 3, 2)).transpose(3, 2, 0, 1)  # (2, 3, 6, 5)
    out, cache = F.max_pool2d(x, 2, 2, 2)
    out_c, cache_c = F.max_pool2d(np.ascontiguousarray(x), 2, 2, 2)
    dout = random_like(out, seed=5)
    np.testing.assert_array_equal(out, out_c)
    np.testing.assert_array_equal(
        F.max_pool2d_backward(dout, cache), F.max_pool2d_backward(dout, cache_c)
    )


# --- bad input ------------------------------------------------------------------------------
X = np.zeros((2, 3, 4, 4))

BAD_POOL = {
    "window taller than x": (lambda: F.max_pool2d(X, 5, 2, 2), InputError, "larger than"),
    "window wider than x": (lambda: F.avg_pool2d(X, 2, 5, 1), InputError, "larger than"),
    "stride 0": (lambda: F.max_pool2d(X, 2, 2, 0), InputError, "stride must be an int >= 1"),
    "pool_height 0": (lambda: F.max_pool2d(X, 0, 2, 2), InputError, "pool_height"),
    "float pool_width": (lambda: F.max_pool2d(X, 2, 2.0, 2), InputTypeError, "pool_width"),
    "x 3-D": (lambda: F.max_pool2d(X[0], 2, 2, 2), InputError, "x must have 4 dimensions"),
    "x a list": (lambda: F.max_pool2d([[1.0]], 2, 2, 2), InputTypeError, "x must be a float32"),
    "1-D window": (lambda: F.max_pool1d(X[0], 5), InputError, "pool_size (5) is larger"),
    "1-D x 4-D": (lambda: F.max_pool1d(X, 2), InputError, "(N, C, L)"),
    "pool_param key": (
        lambda: F.max_pool_forward_naive(X, {"pool_size": 2}),
        InputError,
        "pool_param has an unknown key 'pool_size'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_POOL))
def test_pool_bad_input_raises_error_naming_the_argument(case):
    call, error, message = BAD_POOL[case]
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_pool_backward_checks_dout_and_cache():
    out, cache = F.max_pool2d(X, 2, 2, 2)
    with pytest.raises(InputError, match=r"dout must have the shape of max_pool2d's output"):
        F.max_pool2d_backward(np.zeros((2, 3, 2, 3)), cache)
    with pytest.raises(InputTypeError, match="cache must be the cache returned by max_pool"):
        F.max_pool2d_backward(np.zeros(out.shape), {"x": X})

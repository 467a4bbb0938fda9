"""conv2d and conv1d, fast and naive: PyTorch as the oracle, the checker, small cases by hand.

Every float64 comparison with torch is normwise to 1e-10 (``assert_close``).
"""

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


@st.composite
def conv_cases(draw, spatial: int = 2, max_size: int = 7):
    """Random ``(x, w, b, stride, pad)`` whose windows fit: strides 1-3, padding 0-2."""
    stride = draw(st.sampled_from([1, 2, 3]))
    pad = draw(st.sampled_from([0, 1, 2]))
    N, C, Fo = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = [draw(st.integers(1, 4)) for _ in range(spatial)]
    size = [draw(st.integers(max(1, k - 2 * pad), max_size)) for k in kernel]
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((N, C, *size))
    w = rng.standard_normal((Fo, C, *kernel))
    b = rng.standard_normal(Fo)
    return x, w, b, stride, pad


def layer(forward, stride, pad):
    """``forward`` with its options bound: a function of the arrays only, for the checker."""

    def f(x, w, b):
        return forward(x, w, b, stride=stride, pad=pad)

    return f


# --- against PyTorch ----------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(conv_cases())
def test_conv2d_matches_torch_forward_and_gradients(case):
    x, w, b, stride, pad = case
    out, cache = F.conv2d(x, w, b, stride=stride, pad=pad)
    dout = random_like(out, seed=1)
    t_out, (t_dx, t_dw, t_db) = torch_vjp(
        TF.conv2d, [x, w, b], dout, kwargs={"stride": stride, "padding": pad}
    )
    dx, dw, db = F.conv2d_backward(dout, cache)
    assert_close(out, t_out, name="out")
    assert_close(dx, t_dx, name="dx")
    assert_close(dw, t_dw, name="dw")
    assert_close(db, t_db, name="db")


@settings(max_examples=15, deadline=None)
@given(conv_cases(spatial=1, max_size=12))
def test_conv1d_matches_torch_forward_and_gradients(case):
    x, w, b, stride, pad = case
    out, cache = F.conv1d(x, w, b, stride=stride, pad=pad)
    dout = random_like(out, seed=2)
    t_out, t_grads = torch_vjp(
        TF.conv1d, [x, w, b], dout, kwargs={"stride": stride, "padding": pad}
    )
    assert_close(out, t_out, name="out")
    for name, grad, expected in zip(("dx", "dw", "db"), F.conv1d_backward(dout, cache), t_grads):
        assert_close(grad, expected, name=name)


@settings(max_examples=15, deadline=None)
@given(conv_cases(max_size=6))
def test_conv2d_naive_and_fast_agree(case):
    x, w, b, stride, pad = case
    out, cache = F.conv2d(x, w, b, stride=stride, pad=pad)
    out_naive, cache_naive = F.conv2d_naive(x, w, b, stride=stride, pad=pad)
    dout = random_like(out, seed=3)
    assert_close(out_naive, out, rtol=1e-12, name="out")
    grads = F.conv2d_backward(dout, cache)
    grads_naive = F.conv2d_naive_backward(dout, cache_naive)
    for name, fast, naive in zip(("dx", "dw", "db"), grads, grads_naive):
        assert_close(naive, fast, rtol=1e-12, name=name)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), spatial=st.sampled_from([1, 2]))
def test_same_convolutions_by_shifted_copies_match_torch(data, spatial):
    # stride 1 and pad = k // 2 keep the size: im2col and col2im by shifted copies of the flat
    # image stack with the padding entries zeroed; images narrower than the kernel included,
    # the input channel-major (as a previous conv leaves it) or not
    k = data.draw(st.sampled_from([1, 3, 5, 7]))
    N, C, Fo = (data.draw(st.integers(1, 3)) for _ in range(3))
    size = [data.draw(st.integers(1, 6)) for _ in range(spatial)]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.standard_normal((C, N, *size)).swapaxes(0, 1)
    if data.draw(st.booleans()):
        x = np.ascontiguousarray(x)
    w, b = rng.standard_normal((Fo, C, *[k] * spatial)), rng.standard_normal(Fo)
    forward, backward = {2: (F.conv2d, F.conv2d_backward), 1: (F.conv1d, F.conv1d_backward)}[
        spatial
    ]
    out, cache = forward(x, w, b, stride=1, pad=k // 2)
    assert out.shape == (N, Fo, *size)
    dout = random_like(out, seed=4)
    torch_conv = TF.conv2d if spatial == 2 else TF.conv1d
    t_out, t_grads = torch_vjp(torch_conv, [x, w, b], dout, kwargs={"padding": k // 2})
    assert_close(out, t_out, name="out")
    grads = backward(dout, cache)
    for name, grad, expected in zip(("dx", "dw", "db"), grads, t_grads):
        assert_close(grad, expected, name=name)
    for first, again in zip(grads, backward(dout, cache)):  # the cache survives a backward
        np.testing.assert_array_equal(first, again)


# --- the checker -----------------------------------------------------------------------------
@settings(max_examples=10, deadline=None)
@given(conv_cases(max_size=6))
def test_conv2d_passes_check_vjp(case):
    x, w, b, stride, pad = case
    gradproof.check_vjp(layer(F.conv2d, stride, pad), F.conv2d_backward, x, w, b).raise_if_failed()


@settings(max_examples=5, deadline=None)
@given(conv_cases(max_size=5))
def test_conv2d_naive_passes_check_vjp(case):
    x, w, b, stride, pad = case
    report = gradproof.check_vjp(
        layer(F.conv2d_naive, stride, pad), F.conv2d_naive_backward, x, w, b
    )
    report.raise_if_failed()


@settings(max_examples=8, deadline=None)
@given(conv_cases(spatial=1, max_size=10))
def test_conv1d_passes_check_vjp(case):
    x, w, b, stride, pad = case
    gradproof.check_vjp(layer(F.conv1d, stride, pad), F.conv1d_backward, x, w, b).raise_if_failed()


def test_cs231n_signature_with_conv_param_dict_passes_check_vjp():
    rng = np.random.default_rng(231)
    x, w, b = (
        rng.standard_normal((4, 3, 5, 5)),
        rng.standard_normal((2, 3, 3, 3)),
        rng.standard_normal(2),
    )
    conv_param = {"stride": 1, "pad": 1}
    for forward, backward in (
        (F.conv_forward_naive, F.conv_backward_naive),
        (F.conv_forward_fast, F.conv_backward_fast),
    ):
        gradproof.check_vjp(forward, backward, x, w, b, conv_param).raise_if_failed()
    out_fast, _ = F.conv_forward_fast(x, w, b, conv_param)
    out, _ = F.conv2d(x, w, b, stride=1, pad=1)
    np.testing.assert_array_equal(out_fast, out)


# --- small cases by hand ------------------------------------------------------------------
def test_conv2d_by_hand_2x2_ones_filter_on_3x3():
    x = np.arange(9.0).reshape(1, 1, 3, 3)  # [[0 1 2] [3 4 5] [6 7 8]]
    w = np.ones((1, 1, 2, 2))
    b = np.array([1.0])
    for forward, backward in (
        (F.conv2d, F.conv2d_backward),
        (F.conv2d_naive, F.conv2d_naive_backward),
    ):
        out, cache = forward(x, w, b)
        # each output is the sum of a 2x2 window plus 1
        np.testing.assert_array_equal(out, [[[[9.0, 13.0], [21.0, 25.0]]]])
        dx, dw, db = backward(np.ones((1, 1, 2, 2)), cache)
        # dx counts the windows covering each pixel; dw sums the pixels under each tap
        np.testing.assert_array_equal(dx, [[[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]])
        np.testing.assert_array_equal(dw, [[[[8, 12], [20, 24]]]])
        np.testing.assert_array_equal(db, [4.0])


def test_conv2d_by_hand_padding_and_stride_2():
    # 1x1 filter of weight 2 with pad 1, stride 2 on a 3x3 image: the corners of the padded
    # 5x5 image are zeros; the output samples padded rows/cols 0, 2, 4
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    out, cache = F.conv2d(x, np.full((1, 1, 1, 1), 2.0), np.zeros(1), stride=2, pad=1)
    np.testing.assert_array_equal(out, [[[[0, 0, 0], [0, 10, 0], [0, 0, 0]]]])
    dx, dw, db = F.conv2d_backward(np.ones((1, 1, 3, 3)), cache)
    np.testing.assert_array_equal(dx, [[[[0, 0, 0], [0, 2, 0], [0, 0, 0]]]])
    np.testing.assert_array_equal(dw, [[[[5.0]]]])
    np.testing.assert_array_equal(db, [9.0])


def test_conv1d_by_hand_difference_filter():
    x = np.array([[[1.0, 4.0, 9.0, 16.0]]])
    w = np.array([[[-1.0, 1.0]]])  # out[i] = x[i+1] - x[i]
    out, cache = F.conv1d(x, w, np.zeros(1))
    np.testing.assert_array_equal(out, [[[3.0, 5.0, 7.0]]])
    dx, dw, db = F.conv1d_backward(np.ones((1, 1, 3)), cache)
    np.testing.assert_array_equal(dx, [[[-1.0, 0.0, 0.0, 1.0]]])
    np.testing.assert_array_equal(dw, [[[14.0, 29.0]]])


# --- dtypes, layouts, chaining ------------------------------------------------------------
def test_conv2d_float32_stays_float32_and_matches_float64():
    x, w, b, stride, pad = _fixed_case()
    out64, cache64 = F.conv2d(x, w, b, stride, pad)
    out32, cache32 = F.conv2d(*(a.astype(np.float32) for a in (x, w, b)), stride, pad)
    dout = random_like(out64, seed=4)
    grads64 = F.conv2d_backward(dout, cache64)
    grads32 = F.conv2d_backward(dout.astype(np.float32), cache32)
    assert out32.dtype == np.float32
    assert_close(out32, out64, rtol=1e-5, name="out")
    for name, g32, g64 in zip(("dx", "dw", "db"), grads32, grads64):
        assert g32.dtype == np.float32, name
        assert_close(g32, g64, rtol=1e-5, name=name)


def _fixed_case():
    rng = np.random.default_rng(7)
    return (
        rng.standard_normal((3, 2, 7, 6)),
        rng.standard_normal((4, 2, 3, 3)),
        rng.standard_normal(4),
        1,
        1,
    )


def test_conv2d_accepts_strided_inputs_and_chains_like_torch():
    # the fast conv returns a view in channel-major memory order; a second conv (stride 2)
    # must take it, and the output of one layer with a non-contiguous dout, as they come
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 5, 6, 2)).transpose(0, 3, 1, 2)  # (3, 2, 5, 6), not contiguous
    w1, b1 = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    w2, b2 = rng.standard_normal((3, 4, 2, 2)), rng.standard_normal(3)
    h, cache1 = F.conv2d(x, w1, b1, stride=1, pad=1)
    out, cache2 = F.conv2d(h, w2, b2, stride=2, pad=0)
    dout = random_like(out.shape[::-1], seed=5).T  # a transposed (non-contiguous) upstream
    dh, dw2, db2 = F.conv2d_backward(dout, cache2)
    dx, dw1, db1 = F.conv2d_backward(dh, cache1)

    def both(x, w1, b1, w2, b2):
        return TF.conv2d(TF.conv2d(x, w1, b1, padding=1), w2, b2, stride=2)

    t_out, t_grads = torch_vjp(both, [x, w1, b1, w2, b2], dout)
    assert_close(out, t_out, name="out")
    for name, grad, expected in zip(
        ("dx", "dw1", "db1", "dw2", "db2"), (dx, dw1, db1, dw2, db2), t_grads
    ):
        assert_close(grad, expected, name=name)


def test_conv2d_backward_leaves_dout_and_cache_unchanged_and_repeats():
    x, w, b, stride, pad = _fixed_case()
    out, cache = F.conv2d(x, w, b, stride, pad)
    dout = random_like(out, seed=6)
    dout_copy, cols_copy = dout.copy(), cache.cols.copy()
    first = F.conv2d_backward(dout, cache)
    second = F.conv2d_backward(dout, cache)
    np.testing.assert_array_equal(dout, dout_copy)
    np.testing.assert_array_equal(cache.cols, cols_copy)
    for a, b_ in zip(first, second):
        np.testing.assert_array_equal(a, b_)


# --- bad input ------------------------------------------------------------------------------
def _arrays(x_shape=(2, 3, 5, 5), w_shape=(4, 3, 3, 3), b_shape=(4,), dtype=np.float64):
    return np.zeros(x_shape, dtype), np.zeros(w_shape, dtype), np.zeros(b_shape, dtype)


BAD_CONV2D = {
    "channels differ": (
        lambda f: f(*_arrays(w_shape=(4, 2, 3, 3))),
        InputError,
        "C == x.shape[1] == 3",
    ),
    "window too large": (lambda f: f(*_arrays(x_shape=(1, 3, 2, 2))), InputError, "larger than"),
    "stride 0": (lambda f: f(*_arrays(), stride=0), InputError, "stride must be an int >= 1"),
    "negative pad": (lambda f: f(*_arrays(), pad=-1), InputError, "pad must be an int >= 0"),
    "float stride": (lambda f: f(*_arrays(), stride=1.5), InputTypeError, "stride"),
    "x 3-D": (lambda f: f(*_arrays(x_shape=(3, 5, 5))), InputError, "x must have 4 dimensions"),
    "w 3-D": (lambda f: f(*_arrays(w_shape=(4, 3, 3))), InputError, "w must have 4 dimensions"),
    "b shape": (lambda f: f(*_arrays(b_shape=(3,))), InputError, "b must have shape (F,) = (4,)"),
    "x a list": (lambda f: f([[[[1.0]]]], *_arrays()[1:]), InputTypeError, "x must be a float32"),
    "x ints": (lambda f: f(np.zeros((2, 3, 5, 5), int), *_arrays()[1:]), InputTypeError, "float32"),
    "mixed dtypes": (
        lambda f: f(np.zeros((2, 3, 5, 5), np.float32), *_arrays()[1:]),
        InputTypeError,
        "w must have the dtype of x (float32)",
    ),
}


@pytest.mark.parametrize("forward", [F.conv2d, F.conv2d_naive])
@pytest.mark.parametrize("case", sorted(BAD_CONV2D))
def test_conv2d_bad_input_raises_error_naming_the_argument(forward, case):
    call, error, message = BAD_CONV2D[case]
    with pytest.raises(error) as info:
        call(forward)
    assert message in str(info.value)


def test_conv1d_bad_input_names_the_signal_layout():
    x, w, b = np.zeros((2, 3, 4)), np.zeros((1, 3, 7)), np.zeros(1)
    with pytest.raises(InputError, match=r"window set by w \(7\) is larger .* L \+ 2\*pad = 6"):
        F.conv1d(x, w, b, pad=1)
    with pytest.raises(InputError, match=r"x must have 3 dimensions \(N, C, L\)"):
        F.conv1d(np.zeros((2, 3, 4, 4)), w, b)


def test_conv_param_with_unknown_key_is_an_error():
    with pytest.raises(InputError,
                       match=r"conv_param has an unknown key 'padding'; did you mean 'pad'"):
        F.conv_forward_fast(*_arrays(), {"stride": 1, "padding": 1})
    with pytest.raises(InputTypeError, match="conv_param must be a dict"):
        F.conv_forward_naive(*_arrays(), (1, 1))


def test_conv2d_backward_checks_dout_and_cache():
    out, cache = F.conv2d(*_arrays())
    with pytest.raises(
        InputError, match=r"dout must have the shape of conv2d's output \(2, 4, 3, 3\)"
    ):
        F.conv2d_backward(np.zeros((2, 4, 3, 2)), cache)
    with pytest.raises(InputTypeError, match="cache must be the cache returned by conv2d"):
        F.conv2d_backward(np.zeros(out.shape), (1, 2, 3))

"""Issue 10, "An OK is a certificate": one or more tests per way the checker was fooled.

Each section names the item of the issue's list it guards. The checker before
the issue (commit 6ea79b1) said OK to the issue's own examples of each item;
each bug here comes with its correct twin, which must stay ok. Items 6
(``numeric()``'s elementwise fast path) and 7 (``dout`` validated by every
backward) are tested in tests/nn/test_numeric_elementwise_probe.py and
tests/nn/test_dout_validation.py.

1. errors spread thinly (a column, a stride, one entry per row, a kernel tap, a border)
2. perturbed evaluations that fail (a domain edge, a forward that raises off the point)
3. float32-only code
4. a float64 forward that computes in float32
5. float16
then what the report says (ERROR, digits, cache), the three verdicts (Report,
raise_if_failed, CLI exit codes, JSON, HTML), and the pinned sensitivity: tests
that fail if the tolerance model loosens by 3x.

The layers are small NumPy functions written here (or in tests/check/layers.py),
not gradproof.nn or the zoo, so that the checker is tested on code it was not
tuned on.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import gradproof
from gradproof import check_vjp
from gradproof.check.html import render_html
from gradproof.cli import main

from .layers import affine, affine_backward, embedding, embedding_backward
from .layers import softmax_cross_entropy as softmax_loss
from .layers import softmax_cross_entropy_backward as softmax_loss_backward


# ----------------------------------------------------------------------
# layers: (out, cache) forwards and backward(dout, cache) -> grads
def layernorm(x, gamma, beta, eps=1e-5):
    """x (N, D), gamma and beta (D,) -> (N, D), each row normalised."""
    mu = x.mean(axis=1, keepdims=True)
    inv = 1 / np.sqrt(x.var(axis=1, keepdims=True) + eps)
    xhat = (x - mu) * inv
    return xhat * gamma + beta, (xhat, inv, gamma)


def layernorm_backward(dout, cache):
    xhat, inv, gamma = cache
    d = xhat.shape[1]
    dxhat = dout * gamma
    dx = inv / d * (d * dxhat - dxhat.sum(axis=1, keepdims=True)
                    - xhat * (dxhat * xhat).sum(axis=1, keepdims=True))
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def _heads(x, n_heads):
    n, t, c = x.shape
    return x.reshape(n, t, n_heads, c // n_heads).transpose(0, 2, 1, 3)


def _merge(x):
    n, h, t, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(n, t, h * d)


def attention(q, k, v, n_heads=8):
    """Multi-head attention, q, k, v (N, T, C) -> (N, T, C); head h owns features
    h*C/H .. (h+1)*C/H."""
    qh, kh, vh = _heads(q, n_heads), _heads(k, n_heads), _heads(v, n_heads)
    scale = 1 / np.sqrt(qh.shape[-1])
    scores = qh @ kh.swapaxes(-1, -2) * scale
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    a = e / e.sum(axis=-1, keepdims=True)
    return _merge(a @ vh), (qh, kh, vh, a, scale, n_heads)


def attention_backward(dout, cache):
    qh, kh, vh, a, scale, n_heads = cache
    douth = _heads(dout, n_heads)
    da = douth @ vh.swapaxes(-1, -2)
    ds = a * (da - (da * a).sum(axis=-1, keepdims=True))
    return (_merge(ds @ kh * scale), _merge(ds.swapaxes(-1, -2) @ qh * scale),
            _merge(a.swapaxes(-1, -2) @ douth))


def conv(x, w):
    """3x3 convolution, stride 1, zero padding 1: x (N, C, H, W), w (F, C, 3, 3) ->
    (N, F, H, W)."""
    n, _, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd))
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,fc->nfhw", xp[:, :, i:i + h, j:j + wd], w[:, :, i, j])
    return out, (x, w)


def conv_backward(dout, cache):
    x, w = cache
    _, _, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(3):
        for j in range(3):
            dw[:, :, i, j] = np.einsum("nfhw,nchw->fc", dout, xp[:, :, i:i + h, j:j + wd])
            dxp[:, :, i:i + h, j:j + wd] += np.einsum("nfhw,fc->nchw", dout, w[:, :, i, j])
    return dxp[:, :, 1:-1, 1:-1], dw


def temporal_affine(x, w, b):
    """x (N, T, D), w (D, M), b (M,) -> (N, T, M)."""
    return x @ w + b, (x, w)


def temporal_affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, np.einsum("ntd,ntm->dm", x, dout), dout.sum(axis=(0, 1))


def tanh(x):
    y = np.tanh(x)
    return y, y


def tanh_backward_times(factor):
    """tanh's backward with its derivative multiplied by ``factor`` (1: correct)."""
    def backward(dout, y):
        return dout * (1 - y * y) * factor
    return backward


def tanh_in_float32(x):
    """tanh computed in float32 whatever the input's dtype (a cast inside)."""
    y = np.tanh(x.astype(np.float32))
    return y, y


def tanh_in_float32_backward_times(factor):
    def backward(dout, y):
        return (dout * (1 - y * y) * np.float32(factor)).astype(np.float32)
    return backward


# ----------------------------------------------------------------------
# planting bugs
def planted(backward, input_index, region, factor):
    """``backward`` with gradient ``input_index`` multiplied by ``factor`` on ``region``
    (a NumPy index)."""
    def buggy(dout, cache):
        grads = list(backward(dout, cache))
        grads[input_index] = grads[input_index].copy()
        grads[input_index][region] *= factor
        return tuple(grads)
    return buggy


def scaled(backward, factor):
    """``backward`` with every gradient multiplied by ``factor``: a uniform relative error."""
    def buggy(dout, cache):
        grads = backward(dout, cache)
        if not isinstance(grads, tuple):
            return grads * factor
        return tuple(None if g is None else g * factor for g in grads)
    return buggy


def mask_of(shape, region) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[region] = True
    return mask


def assert_failed_inside(report, input_index, mask):
    """Failed (old main said OK), only at ``input_index``, every worst coordinate in ``mask``."""
    __tracebackhide__ = True
    assert not report.ok, f"a planted bug passed:\n{report}"
    assert report.verdict == "failed", str(report)
    target = report.inputs[input_index]
    assert target.verdict == "failed", str(report)
    assert [r.index for r in report.inputs if r.verdict == "failed"] == [input_index], str(report)
    coords = [c for c, _, _ in target.worst]
    assert coords, f"no worst coordinate reported:\n{report}"
    outside = [c for c in coords if not mask[c]]
    assert not outside, f"worst coordinates {outside} lie outside the planted region:\n{report}"


def assert_ok(report):
    __tracebackhide__ = True
    assert report.verdict == "ok" and report.ok, str(report)


def normal(rng, *shape, scale=1.0):
    return scale * rng.standard_normal(shape)


# ======================================================================
# 1. errors spread thinly across an input, at realistic sizes
def _affine_64x256(seed=0):
    rng = np.random.default_rng(seed)
    return normal(rng, 64, 256), normal(rng, 256, 128, scale=0.1), normal(rng, 128)


@pytest.mark.parametrize("factor", [0.5, 1.001], ids=["halved", "0.1% off"])
def test_affine_64x256_dw_column_40_wrong_fails_inside_the_column(factor):
    inputs = _affine_64x256()
    region = (slice(None), 40)
    report = check_vjp(affine, planted(affine_backward, 1, region, factor), *inputs)
    assert_failed_inside(report, 1, mask_of((256, 128), region))


def test_layernorm_64x512_dx_column_511_two_percent_off_fails_inside_the_column():
    rng = np.random.default_rng(0)
    inputs = normal(rng, 64, 512), 1 + normal(rng, 512, scale=0.1), normal(rng, 512)
    region = (slice(None), 511)
    report = check_vjp(layernorm, planted(layernorm_backward, 0, region, 1.02), *inputs)
    assert_failed_inside(report, 0, mask_of((64, 512), region))


def _label_entries_times(factor):
    def backward(dloss, cache):
        dx, _ = softmax_loss_backward(dloss, cache)
        y = cache[1]
        dx[np.arange(len(y)), y] *= factor
        return dx, None
    return backward


@pytest.mark.parametrize("n, c, factor", [(256, 100, 0.5), (128, 50, 1.01)])
def test_softmax_loss_label_entries_wrong_fails_at_label_entries(n, c, factor):
    rng = np.random.default_rng(0)
    x, y = normal(rng, n, c), rng.integers(0, c, size=n)
    report = check_vjp(softmax_loss, _label_entries_times(factor), x, y)
    assert_failed_inside(report, 0, mask_of((n, c), (np.arange(n), y)))
    assert any(p.kind == "pattern" and "y[n]" in p for p in report.problems), str(report)


@pytest.mark.parametrize("start, factor", [(0, 0.0), (5, 0.0), (5, 0.9)])
def test_attention_dv_every_16th_column_wrong_fails_inside_the_stride(start, factor):
    # (4, 16, 128) with 8 heads: every 16th feature is one feature of each head
    rng = np.random.default_rng(0)
    q, k, v = (normal(rng, 4, 16, 128) for _ in range(3))
    region = (..., slice(start, None, 16))
    report = check_vjp(attention, planted(attention_backward, 2, region, factor), q, k, v)
    assert_failed_inside(report, 2, mask_of(v.shape, region))


def test_embedding_dw_one_column_ten_percent_off_fails_inside_the_column():
    rng = np.random.default_rng(0)
    idx, w = rng.integers(0, 1000, size=(32, 20)), normal(rng, 1000, 64)
    region = (slice(None), 10)
    report = check_vjp(embedding, planted(embedding_backward, 1, region, 1.1), idx, w)
    assert_failed_inside(report, 1, mask_of(w.shape, region))


@pytest.mark.parametrize(
    "input_index, region, factor",
    [
        (1, (slice(None), 127), 1.01),  # the last column of dw
        (1, (slice(None), slice(None, None, 16)), 1.05),  # every 16th column of dw
        (1, (slice(None), slice(3, None, 8)), 0.98),  # every 8th column from 3
        (0, (slice(None), 200), 1.01),  # one column of dx
    ],
    ids=["dw[:, 127]", "dw[:, ::16]", "dw[:, 3::8]", "dx[:, 200]"],
)
def test_affine_64x256_thin_structures_fail_inside_the_structure(input_index, region, factor):
    inputs = _affine_64x256(seed=1)
    report = check_vjp(affine, planted(affine_backward, input_index, region, factor), *inputs)
    assert_failed_inside(report, input_index, mask_of(inputs[input_index].shape, region))


def test_smaller_affine_column_off_by_a_thousandth_fails_inside_the_column():
    rng = np.random.default_rng(2)
    inputs = normal(rng, 32, 100), normal(rng, 100, 50, scale=0.1), normal(rng, 50)
    region = (slice(None), 7)
    report = check_vjp(affine, planted(affine_backward, 1, region, 0.999), *inputs)
    assert_failed_inside(report, 1, mask_of((100, 50), region))


def _conv_inputs():
    rng = np.random.default_rng(1)
    return normal(rng, 2, 8, 16, 16), normal(rng, 8, 8, 3, 3, scale=0.2)


BORDER = np.zeros((2, 8, 16, 16), dtype=bool)
BORDER[..., [0, -1], :] = True
BORDER[..., :, [0, -1]] = True


@pytest.mark.parametrize(
    "input_index, region, factor",
    [
        (1, (slice(None), slice(None), 1, 2), 1.02),  # one kernel tap of every filter
        (1, (slice(None), 3), 0.97),  # one input channel of every filter
        (0, BORDER, 1.02),  # the border of the image (padding handled wrong)
        (0, (..., 15), 1.02),  # the last image column
        (0, (..., 0, slice(None)), 1.02),  # the first image row
    ],
    ids=["dw tap (1, 2)", "dw input channel 3", "dx border", "dx last column", "dx first row"],
)
def test_conv_thin_structures_fail_inside_the_structure(input_index, region, factor):
    inputs = _conv_inputs()
    report = check_vjp(conv, planted(conv_backward, input_index, region, factor), *inputs)
    assert_failed_inside(report, input_index, mask_of(inputs[input_index].shape, region))


def test_temporal_affine_one_time_step_of_dx_off_fails_inside_that_step():
    rng = np.random.default_rng(3)
    inputs = normal(rng, 16, 12, 64), normal(rng, 64, 32, scale=0.1), normal(rng, 32)
    region = (slice(None), 5, slice(None))
    report = check_vjp(temporal_affine, planted(temporal_affine_backward, 0, region, 1.01),
                       *inputs)
    assert_failed_inside(report, 0, mask_of(inputs[0].shape, region))


@pytest.mark.parametrize(
    "layer, input_index, region, text",
    [
        ("affine", 1, (slice(None), 40), "w[:, 40]"),
        ("conv", 1, (slice(None), slice(None), 1, 2), "w[:, :, 1, 2]"),
        ("conv", 1, (slice(None), 3), "w[:, 3, :, :]"),
    ],
)
def test_a_column_tap_or_channel_is_named_as_a_slice(layer, input_index, region, text):
    forward, backward, inputs = ((affine, affine_backward, _affine_64x256()) if layer == "affine"
                                 else (conv, conv_backward, _conv_inputs()))
    report = check_vjp(forward, planted(backward, input_index, region, 1.02), *inputs)
    slices = [p for p in report.problems if p.kind == "slice"]
    assert slices and text in slices[0], str(report)


@pytest.mark.parametrize(
    "layer, region, text",
    [
        ("attention", (..., slice(5, None, 16)), "v[:, :, 5::16]"),
        ("affine", (slice(None), slice(None, None, 16)), "w[:, ::16]"),
    ],
)
def test_every_16th_column_is_named_as_a_stride(layer, region, text):
    # The issue asks the report to name the pattern ("every 16th column of v"),
    # not to guess "one entry per row?".
    if layer == "attention":
        rng = np.random.default_rng(0)
        inputs = tuple(normal(rng, 4, 16, 128) for _ in range(3))
        report = check_vjp(attention, planted(attention_backward, 2, region, 0.9), *inputs)
    else:
        report = check_vjp(affine, planted(affine_backward, 1, region, 1.05), *_affine_64x256())
    assert not report.ok
    slices = [p for p in report.problems if p.kind == "slice"]
    assert slices and text in slices[0], str(report)
    assert "every 16th" in slices[0], str(report)


# ======================================================================
# 2. perturbed evaluations that fail: domain edges and forwards that raise
def power_1_5(a):
    return a**1.5, a


def power_1_5_backward_times(factor):
    def backward(dout, a):
        return factor * 1.5 * np.sqrt(a) * dout
    return backward


def _relu_output(shape, seed=0):
    """A ReLU's output: about half exact zeros, where x**1.5 is defined on one side only."""
    return np.maximum(np.random.default_rng(seed).standard_normal(shape), 0)


@pytest.mark.parametrize("shape", [(6,), (4, 5), (32, 64)])
def test_power_1_5_at_exact_zeros_with_a_gradient_twice_too_large_fails(shape):
    x = _relu_output(shape)
    assert np.count_nonzero(x == 0) > 0
    # the example: 3 sqrt(a), not 1.5 sqrt(a)
    report = check_vjp(power_1_5, power_1_5_backward_times(2.0), x)
    assert not report.ok, str(report)
    assert report.verdict == "failed", str(report)


@pytest.mark.parametrize("shape", [(6,), (4, 5), (32, 64)])
def test_power_1_5_at_exact_zeros_with_the_right_gradient_is_ok(shape):
    assert_ok(check_vjp(power_1_5, power_1_5_backward_times(1.0), _relu_output(shape)))


def _refuses_negative(a):
    if np.any(a < 0):
        raise ValueError("negative input")
    return a**1.5, a


def _point_with_a_zero():
    x = np.abs(np.random.default_rng(4).standard_normal((3, 4))) + 0.1
    x[1, 2] = 0.0
    return x


def test_a_forward_that_raises_off_the_point_with_a_wrong_gradient_fails():
    report = check_vjp(_refuses_negative, power_1_5_backward_times(2.0), _point_with_a_zero())
    assert not report.ok, str(report)
    assert report.verdict == "failed", str(report)


def test_a_forward_that_raises_off_the_point_with_the_right_gradient_is_ok():
    assert_ok(check_vjp(_refuses_negative, power_1_5_backward_times(1.0), _point_with_a_zero()))


def _defined_only_at(x0, how):
    """x**1.5 at ``x0``; NaN (or an error) at every other point."""
    def forward(a):
        if not np.array_equal(a, x0):
            if how == "raise":
                raise ValueError("negative input")
            return a**1.5 * np.nan, a
        return a**1.5, a
    return forward


@pytest.mark.parametrize("how, says", [("nan", "NaN"), ("raise", "raised")])
@pytest.mark.parametrize("factor", [1.0, 2.0])
def test_a_forward_undefined_everywhere_off_the_point_is_inconclusive(how, says, factor):
    x0 = _point_with_a_zero()
    report = check_vjp(_defined_only_at(x0, how), power_1_5_backward_times(factor), x0)
    assert not report.ok, str(report)
    assert report.verdict == "inconclusive", str(report)
    result = report.inputs[0]
    assert result.verdict == "inconclusive" and result.status == "inconclusive"
    assert "could not be measured" in result.reason and says in result.reason, result.reason
    if how == "raise":
        assert "ValueError: negative input" in result.reason, result.reason


# ======================================================================
# 3. float32-only code: a uniform 1 % error in tanh' is caught
@pytest.mark.parametrize("seed", range(10))
def test_float32_only_code_with_tanh_derivative_one_percent_off_fails(seed):
    x = np.random.default_rng(seed).standard_normal((32, 64)).astype(np.float32)
    # no float64 re-check: upcast=False, and a forward that casts inside
    no_upcast = check_vjp(tanh, tanh_backward_times(1.01), x, upcast=False, seed=seed)
    assert not no_upcast.ok, str(no_upcast)
    assert no_upcast.verdict == "failed", str(no_upcast)
    casts = check_vjp(tanh_in_float32, tanh_in_float32_backward_times(1.01), x, seed=seed)
    assert not casts.ok, str(casts)
    assert casts.verdict == "failed", str(casts)


@pytest.mark.parametrize("seed", range(3))
def test_float32_only_code_with_the_right_tanh_derivative_is_ok(seed):
    x = np.random.default_rng(seed).standard_normal((32, 64)).astype(np.float32)
    assert_ok(check_vjp(tanh, tanh_backward_times(1.0), x, upcast=False, seed=seed))
    casts = check_vjp(tanh_in_float32, tanh_in_float32_backward_times(1.0), x, seed=seed)
    assert_ok(casts)
    assert any("not re-checked in float64" in n for n in casts.notes), str(casts)


def _tanh_plus(offset):
    """float32 tanh plus a constant: the output's rounding (eps32 * offset) swamps the
    differences finite differences see."""
    def forward(a):
        return np.tanh(a) + np.float32(offset), a
    return forward


def _tanh_float32_backward_times(factor):
    def backward(dout, a):
        return (dout * (1 - np.tanh(a) ** 2) * factor).astype(np.float32)
    return backward


@pytest.mark.parametrize("offset, factor", [(1e2, 1.01), (1e3, 1.1), (1e4, 2.0)])
def test_float32_only_code_with_a_large_constant_output_never_certifies_a_wrong_gradient(
        offset, factor):
    # The gradient is not small next to how much the function moves, only next to
    # its constant part: a tolerance of 1 % (offset 1e2) to 70 % (1e4) proves
    # nothing; the honest verdicts are failed or inconclusive.
    x = np.random.default_rng(0).standard_normal((16, 32)).astype(np.float32)
    report = check_vjp(_tanh_plus(offset), _tanh_float32_backward_times(factor), x,
                       upcast=False)
    assert not report.ok, str(report)


# ======================================================================
# 4. a float64 forward that computes in float32
def tanh_cast_to_float32(x):
    y = np.tanh(x.astype(np.float32)).astype(np.float64)
    return y, y


def attention_cast_to_float32(q, k, v):
    out, cache = attention(*(a.astype(np.float32) for a in (q, k, v)))
    return out.astype(np.float64), cache


def attention_cast_backward_times(factor):
    def backward(dout, cache):
        dq, dk, dv = attention_backward(dout.astype(np.float32), cache)
        return dq.astype(np.float64) * factor, dk.astype(np.float64), dv.astype(np.float64)
    return backward


def _less_precise_note(report) -> str:
    notes = [n for n in report.notes if "less precise than its float64 inputs" in n]
    return notes[0] if notes else ""


@pytest.mark.parametrize("seed", range(3))
def test_a_float64_forward_computing_in_float32_is_noted_and_judged_at_float32(seed):
    x = np.random.default_rng(seed).standard_normal((16, 32))
    report = check_vjp(tanh_cast_to_float32, tanh_backward_times(1.0), x, seed=seed)
    note = _less_precise_note(report)
    assert "computes like float32" in note, str(report)
    assert_ok(report)  # its float32 rounding is not mistaken for a bug


@pytest.mark.parametrize("factor", [1.02, 1.05])
@pytest.mark.parametrize("seed", range(3))
def test_a_float64_forward_computing_in_float32_with_a_few_percent_bug_fails(seed, factor):
    x = np.random.default_rng(seed).standard_normal((16, 32))
    report = check_vjp(tanh_cast_to_float32, tanh_backward_times(factor), x, seed=seed)
    assert not report.ok, str(report)
    assert report.verdict == "failed", str(report)
    assert _less_precise_note(report), str(report)


@pytest.mark.parametrize("seed", range(2))
def test_attention_cast_to_float32_inside_a_float64_function(seed):
    rng = np.random.default_rng(seed)
    q, k, v = (normal(rng, 2, 8, 32) for _ in range(3))
    right = check_vjp(attention_cast_to_float32, attention_cast_backward_times(1.0), q, k, v,
                      seed=seed)
    assert _less_precise_note(right), str(right)
    assert_ok(right)
    wrong = check_vjp(attention_cast_to_float32, attention_cast_backward_times(1.03), q, k, v,
                      seed=seed)
    assert not wrong.ok, str(wrong)
    assert [r.verdict for r in wrong.inputs] == ["failed", "ok", "ok"], str(wrong)


def tanh_cast_to_float16(x):
    y = np.tanh(x.astype(np.float16)).astype(np.float64)
    return y, y


def tanh_cast_to_bfloat16(x):
    """bfloat16 by truncation: float32 with its low 16 bits cleared (8 mantissa bits)."""
    bits = x.astype(np.float32).view(np.uint32) & np.uint32(0xFFFF0000)
    y = np.tanh(bits.view(np.float32)).astype(np.float64)
    return y, y


@pytest.mark.parametrize("forward", [tanh_cast_to_float16, tanh_cast_to_bfloat16])
@pytest.mark.parametrize("seed", range(4))
def test_a_float64_forward_computing_in_half_precision_is_noted_and_never_failed_when_right(
        forward, seed):
    # At float64's steps such a forward does not move at all; that is low
    # precision, not a wrong gradient
    x = np.random.default_rng(seed).standard_normal((16, 32))
    report = check_vjp(forward, tanh_backward_times(1.0), x, seed=seed)
    assert report.verdict != "failed", str(report)
    assert _less_precise_note(report), str(report)


@pytest.mark.parametrize("forward", [tanh_cast_to_float16, tanh_cast_to_bfloat16])
def test_a_float64_forward_computing_in_half_precision_never_passes_a_sign_flip(forward):
    x = np.random.default_rng(0).standard_normal((16, 32))
    report = check_vjp(forward, tanh_backward_times(-1.0), x)
    assert not report.ok, str(report)


# ======================================================================
# 5. float16
def tanh_in_float16(x):
    y = np.tanh(x.astype(np.float16))
    return y, y


def tanh_in_float16_backward_times(factor):
    def backward(dout, y):
        return (dout * (1 - y * y) * factor).astype(np.float16)
    return backward


def _half(seed):
    return np.random.default_rng(seed).standard_normal((8, 16)).astype(np.float16)


@pytest.mark.parametrize("seed", range(3))
def test_float16_tanh_with_a_sign_flipped_backward_fails(seed):
    report = check_vjp(tanh, tanh_backward_times(-1.0), _half(seed), seed=seed)
    assert not report.ok, str(report)
    assert report.verdict == "failed", str(report)


@pytest.mark.parametrize("seed", range(3))
def test_float16_tanh_with_the_right_backward_is_ok(seed):
    report = check_vjp(tanh, tanh_backward_times(1.0), _half(seed), seed=seed)
    assert_ok(report)
    assert any("float64" in n for n in report.notes), str(report)  # proven by the re-check


@pytest.mark.parametrize("factor", [1.0, -1.0])
def test_float16_code_that_is_not_dtype_generic_is_inconclusive_never_ok(factor):
    report = check_vjp(tanh_in_float16, tanh_in_float16_backward_times(factor), _half(0))
    assert not report.ok, str(report)
    assert report.verdict == "inconclusive", str(report)
    assert "float16" in report.inputs[0].reason, str(report)


@pytest.mark.parametrize("factor", [1.0, -1.0])
def test_float16_without_the_float64_recheck_is_never_ok(factor):
    report = check_vjp(tanh, tanh_backward_times(factor), _half(0), upcast=False)
    assert not report.ok, str(report)
    assert report.verdict in ("inconclusive", "failed"), str(report)


# ======================================================================
# the report tells the truth about what happened
def _square(a):
    return a * a, a


def _forward_raises(a):
    raise RuntimeError("boom in forward")


def _backward_raises(dout, a):
    raise KeyError("boom in backward")


def _backward_raising_on_its_second_call():
    calls = []

    def backward(dout, a):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("second time")
        return 2 * a * dout
    return backward


@pytest.mark.parametrize(
    "forward, backward, stage, line",
    [
        (_forward_raises, lambda d, a: d, "the first forward call", "boom in forward"),
        (_square, _backward_raises, "the first backward call", "boom in backward"),
        (_square, _backward_raising_on_its_second_call(),
         "the repeat of the backward on the same cache", "second time"),
    ],
    ids=["forward", "backward", "backward repeat"],
)
def test_a_call_that_raises_shows_error_with_the_users_file_line_and_stage(
        forward, backward, stage, line):
    report = check_vjp(forward, backward, np.random.default_rng(0).standard_normal((3, 4)))
    assert not report.ok
    result = report.inputs[0]
    assert result.status == "ERROR" and result.verdict == "failed", str(report)
    assert f"{__file__}:" in result.reason, result.reason  # the user's file and line
    assert stage in result.reason and line in result.reason, result.reason
    row = [r for r in str(report).splitlines() if r.strip().startswith("0 ")][0]
    assert "ERROR" in row and " ok " not in row, str(report)


def test_a_5e_7_relative_error_is_printed_with_digits_that_differ():
    rng = np.random.default_rng(0)
    inputs = normal(rng, 8, 16), normal(rng, 16, 4), normal(rng, 4)
    report = check_vjp(affine, planted(affine_backward, 1, (3, 2), 1 + 5e-7), *inputs)
    assert not report.ok, str(report)
    row = [r for r in str(report).splitlines() if r.strip().startswith("1 ")][0]
    shown_a, shown_n = row.split("(3, 2): ")[1].split(" vs ")
    assert shown_a != shown_n, row  # once "analytic 0.108234 vs numeric 0.108234"
    analytic, numeric = report.inputs[1].worst[0][1:]
    assert abs(float(shown_a) - float(shown_n)) == pytest.approx(abs(analytic - numeric),
                                                                 rel=0.2)


def test_format_pair_shows_digits_up_to_the_difference():
    from gradproof.check.report import format_pair  # new in issue 10

    a, n = format_pair(0.108234, 0.108234 * (1 + 5e-7))
    assert a != n and float(a) != float(n)
    assert format_pair(1.0, 2.0) == ("1", "2")


def test_modified_its_cache_in_place_only_when_the_cache_changed():
    x = np.random.default_rng(0).standard_normal((4, 5))

    def scales_cache(dout, a):
        a *= 2  # the cached input, changed
        return a * dout

    def touches_cache(dout, a):
        a += 0.0  # written in place, values unchanged
        np.multiply(a, 1.0, out=a)
        return 2 * a * dout

    changed = check_vjp(_square, scales_cache, x)
    assert any(p.kind == "mutated-cache" for p in changed.problems), str(changed)
    unchanged = check_vjp(_square, touches_cache, x)
    assert_ok(unchanged)
    assert "cache in place" not in str(unchanged)


def test_a_cache_holding_nan_is_not_called_modified():
    x = np.random.default_rng(0).standard_normal((4, 5))

    def forward(a):
        return a * a, (a, np.array([np.nan, 1.0]))

    report = check_vjp(forward, lambda d, c: 2 * c[0] * d, x)
    assert_ok(report)
    assert "cache in place" not in str(report)


# ======================================================================
# three verdicts: Report, raise_if_failed, CLI, JSON, HTML
def _inconclusive_report():
    x0 = _point_with_a_zero()
    return check_vjp(_defined_only_at(x0, "nan"), power_1_5_backward_times(1.0), x0)


def _failed_report():
    rng = np.random.default_rng(0)
    inputs = normal(rng, 4, 5), normal(rng, 5, 3), normal(rng, 3)
    return check_vjp(affine, planted(affine_backward, 2, (0,), 2.0), *inputs)


def test_report_ok_is_false_for_inconclusive():
    report = _inconclusive_report()
    assert report.verdict == "inconclusive"
    assert report.ok is False
    assert report.inputs[0].ok is False


def test_raise_if_failed_raises_inconclusive_error_a_gradient_error_subclass():
    assert issubclass(gradproof.InconclusiveError, gradproof.GradientError)
    with pytest.raises(gradproof.InconclusiveError) as info:
        _inconclusive_report().raise_if_failed()
    assert "INCONCLUSIVE" in str(info.value)
    with pytest.raises(gradproof.GradientError) as info:
        _failed_report().raise_if_failed()
    assert not isinstance(info.value, gradproof.InconclusiveError)
    assert "FAILED" in str(info.value)


def test_json_carries_the_verdict_of_the_report_and_of_each_input():
    report = _inconclusive_report()
    data = json.loads(report.to_json())
    assert data["verdict"] == "inconclusive" and data["ok"] is False
    assert data["inputs"][0]["verdict"] == "inconclusive"
    assert data["inputs"][0]["reason"]
    assert _failed_report().to_dict()["verdict"] == "failed"


def test_text_and_html_show_inconclusive_plainly():
    report = _inconclusive_report()
    text = str(report)
    assert text.startswith("gradproof: INCONCLUSIVE")
    assert "not proven" in text
    page = render_html(report)
    assert "gradproof: INCONCLUSIVE" in page
    assert 'class="gp-inconclusive"' in page
    assert "OK" not in page.split("</h1>")[0]


CLI_LAYERS = '''
import numpy as np

def cube(x):
    return x ** 3, x

def cube_backward(dout, x):
    return 3 * x ** 2 * dout

def wrong_cube(x):
    return x ** 3, x

def wrong_cube_backward(dout, x):
    return 3.01 * x ** 2 * dout

_BASE = []

def fragile(x):
    """Defined only at the point it was first called with (NaN everywhere else)."""
    if not _BASE:
        _BASE.append(x.copy())
    if not np.array_equal(x, _BASE[0]):
        return x * np.nan, x
    return x ** 3, x

def fragile_backward(dout, x):
    return 3 * x ** 2 * dout
'''


@pytest.fixture()
def cli_dir(tmp_path, monkeypatch):
    (tmp_path / "certlayers.py").write_text(CLI_LAYERS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    for name in [n for n in sys.modules if n == "certlayers" or n.startswith("gradproof_user_")]:
        del sys.modules[name]


@pytest.mark.parametrize("function, status, headline",
                         [("cube", 0, "OK"), ("wrong_cube", 1, "FAILED"),
                          ("fragile", 3, "INCONCLUSIVE")])
def test_cli_exit_status_is_0_ok_1_failed_3_inconclusive(cli_dir, capsys, function, status,
                                                         headline):
    assert main(["check", f"certlayers.py:{function}", "-i", "x=4,5"]) == status
    assert f"gradproof: {headline} {function}" in capsys.readouterr().out


def test_cli_json_carries_the_inconclusive_verdict(cli_dir, capsys):
    assert main(["check", "certlayers.py:fragile", "-i", "x=4,5", "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "inconclusive" and data["ok"] is False


def test_cli_usage_error_exits_2(cli_dir, capsys):
    assert main(["check", "certlayers.py:nope", "-i", "x=4,5"]) == 2


# ======================================================================
# sensitivity pinned: these fail if the tolerance model loosens by 3x
# (today's worst over these seeds, measured at commit d29b8ca, is in each comment;
# the bounds are about 2x that, so a 3x looser model exceeds them)
SEEDS = range(8)


def _pinned_tols(forward, backward, make_inputs, **options):
    tols = []
    for seed in SEEDS:
        report = check_vjp(forward, backward, *make_inputs(np.random.default_rng(seed)),
                           seed=seed, **options)
        assert_ok(report)
        tols += [r.tol for r in report.inputs if r.checked]
    return np.array(tols)


def _affine_16x32(rng):
    return normal(rng, 16, 32), normal(rng, 32, 8, scale=0.3), normal(rng, 8)


def test_float64_affine_tolerance_is_pinned_under_2e_8():
    # rounding-dominated (truncation is ~0 for a linear map); today's worst 9.3e-9
    tols = _pinned_tols(affine, affine_backward, _affine_16x32)
    assert tols.max() < 2e-8, tols


def test_float64_tanh_tolerance_at_a_given_step_is_pinned_under_1e_8():
    # truncation-dominated: step 1e-4 is far above the rounding-optimal step;
    # today's worst 4.5e-9
    tols = _pinned_tols(tanh, tanh_backward_times(1.0),
                        lambda rng: (normal(rng, 16, 32),), step=1e-4)
    assert tols.max() < 1e-8, tols


def _tanh_backward_in_float32(dout, y):
    """A backward that computes in float32 for a float64 forward (mixed precision)."""
    return (dout.astype(np.float32) * (1 - y.astype(np.float32) ** 2)).astype(np.float64)


def test_float64_tanh_with_a_float32_backward_tolerance_is_pinned_under_4e_6():
    # dominated by the backward's own rounding; today's worst 1.9e-6
    tols = _pinned_tols(tanh, _tanh_backward_in_float32, lambda rng: (normal(rng, 16, 32),))
    assert tols.max() < 4e-6, tols


def test_float32_only_tanh_tolerance_is_pinned_under_1_25e_3():
    # float32 rounding and truncation, balanced by the step's adaptation (which
    # damps a looser factor: 3x the truncation's gives 1.55e-3); today's worst 6.9e-4
    tols = _pinned_tols(tanh, tanh_backward_times(1.0),
                        lambda rng: (normal(rng, 32, 64).astype(np.float32),), upcast=False)
    assert tols.max() < 1.25e-3, tols


PINNED_LAYERS = {
    "affine": (affine, affine_backward, _affine_16x32),
    "tanh": (tanh, tanh_backward_times(1.0), lambda rng: (normal(rng, 16, 32),)),
    "softmax loss": (softmax_loss, softmax_loss_backward,
                     lambda rng: (normal(rng, 16, 10), rng.integers(0, 10, size=16))),
    "layer norm": (layernorm, layernorm_backward,
                   lambda rng: (normal(rng, 16, 32), 1 + normal(rng, 32, scale=0.1),
                                normal(rng, 32))),
}


@pytest.mark.parametrize("error", [1e-7, -1e-7])
@pytest.mark.parametrize("layer", list(PINNED_LAYERS))
def test_a_uniform_relative_error_of_1e_7_in_float64_is_caught(layer, error):
    forward, backward, make_inputs = PINNED_LAYERS[layer]
    for seed in SEEDS:
        inputs = make_inputs(np.random.default_rng(seed))
        report = check_vjp(forward, scaled(backward, 1 + error), *inputs, seed=seed)
        assert report.verdict == "failed", f"seed {seed}:\n{report}"


@pytest.mark.parametrize("error", [3e-3, -3e-3])
def test_a_uniform_relative_error_of_3e_3_in_float32_only_code_is_caught(error):
    for seed in SEEDS:
        x = np.random.default_rng(seed).standard_normal((32, 64)).astype(np.float32)
        report = check_vjp(tanh, tanh_backward_times(1 + error), x, upcast=False, seed=seed)
        assert report.verdict == "failed", f"seed {seed}:\n{report}"
        casts = check_vjp(tanh_in_float32, tanh_in_float32_backward_times(1 + error), x,
                          seed=seed)
        assert casts.verdict == "failed", f"seed {seed}:\n{casts}"


def test_a_relative_error_of_5e_6_in_a_float32_backward_is_caught():
    # the backward's own rounding (1.9e-6 at worst) must not hide a 5e-6 error
    def wrong(dout, y):
        return _tanh_backward_in_float32(dout, y) * (1 + 5e-6)

    for seed in SEEDS:
        x = np.random.default_rng(seed).standard_normal((16, 32))
        report = check_vjp(tanh, wrong, x, seed=seed)
        assert report.verdict == "failed", f"seed {seed}:\n{report}"

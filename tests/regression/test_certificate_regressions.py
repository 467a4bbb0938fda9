"""Issue 10: the checker once said OK to what it had not proven. Named after what they guard."""

import numpy as np
import pytest

import gradproof
from gradproof import check_vjp
from gradproof.testing import assert_vjp


def softmax_loss(x, y):
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(y)), y].mean(), (np.exp(log_p), y)


def softmax_loss_backward_off_by_1e_7(dloss, cache):
    p, y = cache
    dx = p.copy()
    dx[np.arange(len(y)), y] -= 1
    return dloss * dx / len(y) * (1 + 1e-7), None


def test_a_confirmed_projection_failure_that_no_block_shows_is_failed_not_noise():
    # A uniform 1e-7 error: every projection of the whole input sees it, no block
    # of coordinates does on its own. It was reported as "one projection exceeded
    # its tolerance but no block of coordinates did on its own; treated as noise"
    # and the verdict was OK.
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 10)), rng.integers(0, 10, size=16)
    report = check_vjp(softmax_loss, softmax_loss_backward_off_by_1e_7, x, y)
    assert not report.ok, str(report)
    assert report.verdict == "failed"
    unlocated = [p for p in report.problems if p.kind == "unlocated"]
    assert unlocated and "confirmed on a second draw" in unlocated[0], str(report)
    assert "treated as noise" not in str(report)


def test_assert_vjp_raises_when_nothing_could_be_measured():
    # Every perturbed evaluation NaN: the input was read as out of domain and the
    # check passed with error 0 and tolerance 0.
    x0 = np.abs(np.random.default_rng(0).standard_normal((3, 4)))

    def forward(a):
        return (a**1.5 if np.array_equal(a, x0) else a * np.nan), a

    with pytest.raises(gradproof.InconclusiveError, match="could not be measured"):
        assert_vjp(forward, lambda d, a: 1.5 * np.sqrt(a) * d, x0)


def test_an_unconfirmed_float32_failure_is_not_made_ok_by_the_float64_recheck():
    """float32 saw a projection fail and could not confirm it; the float64 re-check of
    the same code agrees with the numerical gradient. Before, the verdict became ok:
    a float32-only error (overflow, cancellation, a float32 branch) would pass as
    proven. It stays inconclusive."""
    from gradproof.check.judge import UNCONFIRMED, Judgement, judge_witness
    from gradproof.check.report import InputResult

    unconfirmed = InputResult(0, "x", (4,), "float32", verdict="inconclusive",
                              status="inconclusive",
                              reason=f"{UNCONFIRMED} (0.02 vs 0.005) but neither a fresh draw "
                                     "nor any block of coordinates did")
    witness = InputResult(0, "x", (4,), "float64", verdict="ok", status="ok")
    judged = judge_witness(Judgement(unconfirmed), witness, [], 2.4e-5, 40, "float32")
    assert judged.result.verdict == "inconclusive"
    assert any("stays unexplained" in n for n in judged.notes)
    # a float32 check that was inconclusive only for its resolution is settled by float64
    too_wide = InputResult(0, "x", (4,), "float32", verdict="inconclusive",
                           status="inconclusive", reason="the tolerance (0.02 relative) ...")
    assert judge_witness(Judgement(too_wide), witness, [], 2.4e-5, 40,
                         "float32").result.verdict == "ok"


def test_a_float64_error_below_the_floor_does_not_turn_an_unproven_float32_check_ok():
    """The float64 re-check found the gradient off, by less than float32 resolves; the
    float32 check itself proved nothing. Before, that became ok."""
    from gradproof.check.judge import Judgement, judge_witness
    from gradproof.check.report import InputResult

    unproven = InputResult(0, "x", (4,), "float32", verdict="inconclusive",
                           status="inconclusive", reason="the tolerance (0.02 relative) ...")
    witness = InputResult(0, "x", (4,), "float64", verdict="failed", status="FAIL",
                          max_rel_error=1e-5, tol=1e-8)
    judged = judge_witness(Judgement(unproven), witness, [], 2.4e-5, 40, "float32")
    assert judged.result.verdict == "inconclusive"


def _tanh_backward_float32(bug: float, mask: np.ndarray):
    """A tanh backward that computes and returns float32 whatever its inputs' dtype,
    wrong by ``bug`` (relative) where ``mask`` is set."""

    def backward(dout, x):
        g = dout.astype(np.float32) * (1 - np.tanh(x.astype(np.float32)) ** 2)
        return (g * np.where(mask, np.float32(bug), np.float32(1))).astype(np.float32)

    return backward


def test_a_float32_only_backward_is_still_rechecked_in_float64():
    # The backward returned float32 even for float64 inputs, so the float64 re-check was
    # skipped ("the gradient is not a float64 array"), and a 0.3 % error on 5 % of the
    # coordinates, under float32's projection resolution (~7e-4 here) but 30 x above
    # what one float32 coordinate resolves, was OK. Its gradient is now upcast for the
    # re-check, whose tolerance includes the backward's measured rounding.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((128, 256)).astype(np.float32)
    mask = rng.random(x.shape) < 0.05
    wrong = check_vjp(lambda x: (np.tanh(x), x), _tanh_backward_float32(1.003, mask), x)
    assert wrong.verdict == "failed", str(wrong)
    assert "run in float64" in str(wrong)
    right = check_vjp(lambda x: (np.tanh(x), x), _tanh_backward_float32(1.0, mask), x)
    assert right.verdict == "ok", str(right)
    assert any("its gradient upcast" in n for n in right.notes), right.notes

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

"""The three demos: the bad runs' detectors fire within the first epoch, the fixes silence them."""

from __future__ import annotations

import pytest

from gradproof.cli import main
from gradproof.diagnose.demos import DEMOS, run_demo


@pytest.fixture(scope="module", params=sorted(DEMOS))
def demo(request):
    return request.param, run_demo(request.param)


def test_bad_runs_fire_their_detectors_within_the_first_epoch(demo):
    name, results = demo
    bad = [r for r in results if r.spec.role == "bad"]
    assert bad
    for result in bad:
        for kind in result.spec.expect:
            fired = result.fired(kind)
            assert fired, f"{name}: {result.spec.label} did not fire {kind}: {result.findings}"
            assert min(f.step for f in fired) < result.steps_per_epoch


def test_fixes_remove_the_warning(demo):
    name, results = demo
    fixes = [r for r in results if r.spec.role == "fix"]
    assert fixes
    for result in fixes:
        for kind in result.spec.expect:
            assert not result.fired(kind), f"{name}: {result.spec.label}: {result.fired(kind)}"


def test_a_healthy_run_is_quiet_on_every_detector():
    [_, healthy] = run_demo("relu-lr")
    assert healthy.spec.role == "fix" and healthy.findings == []
    assert healthy.val_acc[-1] > 0.8


def test_the_fixes_also_train_better(demo):
    name, results = demo
    by_label = {r.spec.label: r for r in results}
    if name == "rnn-long":
        # after one epoch both plain RNNs are near chance on 200 validation sequences (which
        # one scores higher flips with rounding); what clipping changes is the optimisation
        bad, fix = "rnn, Wh gain 2, SGD lr 0.1", "rnn, Wh gain 2, SGD lr 0.1, clip_norm 1"
        assert by_label[fix].train_loss[-1] < 0.95 * by_label[bad].train_loss[-1]
        return
    bad, fix = results[0].spec.label, results[1].spec.label
    assert by_label[fix].val_acc[-1] > by_label[bad].val_acc[-1]


def test_the_command_prints_warnings_and_exits_0_when_all_is_as_expected(capsys):
    assert main(["diagnose", "sigmoid-init"]) == 0
    out = capsys.readouterr().out
    assert "WARNING saturation" in out and "epoch 1" in out and "no warnings" in out

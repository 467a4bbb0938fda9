"""The JSON of `gradproof grade --json`: version 1, the documented keys and types only."""

from __future__ import annotations

STATUSES = {"correct", "wrong", "not-implemented", "error", "timeout"}

# key -> type, for the required keys (docs/grade.md); extra keys are listed as optional
SUBMISSION = {"path": str, "name": str, "score": float, "functions": list, "problems": list,
              "notes": list, "output": str, "seconds": float}
FUNCTION = {"name": str, "status": str, "findings": list, "file": str}
FUNCTION_OPTIONAL = {"seconds": float, "parts": dict}
FINDING = {"kind": str, "message": str}


def _check(obj: dict, required: dict, optional: dict | None = None) -> None:
    optional = optional or {}
    assert set(required) <= set(obj), f"missing {set(required) - set(obj)} in {obj}"
    assert set(obj) <= set(required) | set(optional), f"unexpected {set(obj) - set(required)}"
    for key, kind in {**required, **optional}.items():
        if key in obj:
            value = obj[key]
            ok = isinstance(value, (int, float)) if kind is float else isinstance(value, kind)
            assert ok and not isinstance(value, bool), f"{key}: {value!r} is not {kind}"


def test_top_level_keys(class_run):
    data = class_run["json"]
    assert set(data) == {"version", "submissions", "summary"}
    assert data["version"] == 1


def test_submissions_functions_and_findings_follow_the_schema(class_run):
    for s in class_run["json"]["submissions"]:
        _check(s, SUBMISSION)
        assert 0.0 <= s["score"] <= 1.0
        for p in s["problems"]:
            _check(p, FINDING)
        for f in s["functions"]:
            _check(f, FUNCTION, FUNCTION_OPTIONAL)
            assert f["status"] in STATUSES
            for finding in f["findings"]:
                _check(finding, FINDING)
                assert finding["message"]


def test_one_entry_per_function_with_its_own_name(class_run):
    for s in class_run["json"]["submissions"]:
        keys = [(f["file"], f["name"]) for f in s["functions"]]
        assert len(keys) == len(set(keys))
    alice = next(s for s in class_run["json"]["submissions"] if s["name"] == "alice")
    names = {f["name"] for f in alice["functions"]}
    assert {"batchnorm_backward_alt", "lstm_step_forward", "svm_loss_naive"} <= names


def test_score_is_the_fraction_of_correct_functions(class_run):
    for s in class_run["json"]["submissions"]:
        n = len(s["functions"])
        correct = sum(f["status"] == "correct" for f in s["functions"])
        assert s["score"] == (round(correct / n, 4) if n else 0.0)


def test_losses_report_their_parts(class_run):
    bob = next(s for s in class_run["json"]["submissions"] if s["name"] == "bob")
    loss = next(f for f in bob["functions"] if f["name"] == "softmax_loss")
    assert loss["parts"] == {"value": "correct", "gradient": "wrong"}


def test_summary_counts_every_status(class_run):
    summary = class_run["json"]["summary"]
    assert set(summary) == {"submissions", "mean_score", "functions", "common_findings"}
    for f in summary["functions"]:
        assert set(f) == {"name"} | STATUSES
    for entry in summary["common_findings"]:
        assert set(entry) == {"function", "kind", "students", "example"}

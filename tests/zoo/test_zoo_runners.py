"""The zoo's runners and table: each tool runs a case and the totals add up.

Verdicts asserted here are those of the comparison tools (scipy, CS231n,
torch), never gradproof's (the checker's own tests own those).
"""

from __future__ import annotations

import numpy as np
import pytest

from gradproof.zoo import cases
from gradproof.zoo.runners import (
    CountingForward,
    ToolResult,
    checked_elements,
    jacobian_calls,
    numerical_gradient_array,
    rel_error,
    run_case,
)
from gradproof.zoo.table import format_matrix, format_summary, main, summarize

ZOO = cases()
COMPARED = ["torch_full", "torch_fast", "scipy", "cs231n"]


@pytest.mark.parametrize("tool", COMPARED)
def test_comparison_tool_passes_a_correct_case_and_flags_a_factor_2_bug(tool):
    assert run_case(tool, ZOO["l2_reg"]).status == "passed"
    assert run_case(tool, ZOO["l2_reg_no_factor_2"]).status == "flagged"


@pytest.mark.parametrize("tool", COMPARED)
def test_comparison_tool_counts_forward_calls(tool):
    result = run_case(tool, ZOO["l2_reg"])  # w (4, 3): 12 elements
    minimum = {"torch_full": 24, "torch_fast": 2, "scipy": 13, "cs231n": 24}[tool]
    assert result.forward_calls >= minimum


def test_a_tool_that_crashes_counts_as_flagged_with_the_error():
    result = run_case("cs231n", ZOO["affine_forgets_db"])  # 2 gradients for 3 inputs
    assert result.status == "error" and result.flagged
    assert "IndexError" in result.detail


def test_gradproof_runner_reports_calls_and_time():
    result = run_case("gradproof", ZOO["affine"])
    assert result.tool == "gradproof" and result.forward_calls > 0 and result.seconds > 0


def test_unknown_tool_is_an_input_error():
    with pytest.raises(ValueError, match="tool must be one of"):
        run_case("jax", ZOO["affine"])


def test_counting_forward_counts_and_passes_through():
    counted = CountingForward(lambda x: (2 * x, None))
    assert counted(3)[0] == 6 and counted(1)[0] == 2 and counted.calls == 2


def test_numerical_gradient_array_of_a_cubic_and_restores_x():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = numerical_gradient_array(lambda: float(np.sum(x**3)), x, 1e-5)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-8)
    np.testing.assert_array_equal(x, [[1.0, -2.0], [0.5, 3.0]])


def test_rel_error_is_cs231n_formula():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])) == pytest.approx(0.2 / 4.2)
    assert rel_error(np.zeros(2), np.zeros(2)) == 0.0


def _result(tool, case, status):
    if status == "not_run":
        return ToolResult(tool, case, status, "too large", 0, 0.0, estimated_calls=1000,
                          estimated_seconds=2.0)
    return ToolResult(tool, case, status, "", forward_calls=10, seconds=0.5)


def test_summary_counts_catches_misses_and_false_alarms():
    selected = {n: ZOO[n] for n in ["affine", "affine_dw_transposed", "relu_exact_zeros",
                                    "mul_swapped"]}
    results = [_result("t", "affine", "passed"), _result("t", "affine_dw_transposed", "error"),
               _result("t", "relu_exact_zeros", "flagged"), _result("t", "mul_swapped", "passed")]
    (s,) = summarize(results, selected)
    assert (s.bugs_caught, s.bugs_total, s.false_alarms, s.clean_total) == (1, 2, 1, 2)
    assert s.missed == ["mul_swapped"] and s.false == ["relu_exact_zeros"]
    assert (s.forward_calls, s.seconds) == (40, 2.0)
    matrix = format_matrix(results, selected)
    assert "| mul_swapped | dense | bug | **pass** (wrong) |" in matrix
    assert "| affine | dense | correct | pass |" in matrix


def test_main_prints_the_table_and_writes_markdown(tmp_path, capsys):
    path = tmp_path / "zoo.md"
    status = main(["--tools", "cs231n", "scipy", "--case", "l2_reg", "--case",
                   "l2_reg_no_lambda", "--markdown", str(path), "--verbose"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "| cs231n | 1 / 1 | 0 / 1 | 0 | - |" in printed
    assert "| l2_reg_no_lambda | dense | bug | FLAG | FLAG |" in path.read_text()


def test_main_rejects_an_unknown_case(capsys):
    assert main(["--case", "no_such_case", "--tools", "cs231n"]) == 2


# --- cost, the size limit, and gradproof's three verdicts -----------------------------


def test_jacobian_calls_grow_with_the_checked_elements_for_the_full_tools_only():
    case = ZOO["l2_reg"]  # w (4, 3)
    assert checked_elements(case) == 12
    full = [jacobian_calls(t, case) for t in ("torch_full", "scipy", "cs231n")]
    assert full == [(24, 1), (12, 0), (24, 0)]  # torch_full: one backward per output (1)
    assert jacobian_calls("gradproof", case) is None
    assert jacobian_calls("torch_fast", case) is None


@pytest.mark.parametrize("tool", ["torch_full", "scipy", "cs231n"])
def test_a_full_tool_is_not_run_on_a_case_over_max_elements(tool):
    result = run_case(tool, ZOO["l2_reg"], max_elements=11)
    assert result.status == "not_run" and not result.ran and not result.flagged
    assert result.forward_calls == 0 and result.seconds == 0.0
    forward_calls, backward_calls = jacobian_calls(tool, ZOO["l2_reg"])
    assert (result.estimated_calls, result.estimated_backward_calls) == (forward_calls,
                                                                         backward_calls)
    assert result.estimated_seconds > 0
    assert f"{forward_calls} forward" in result.detail


def test_a_full_tool_runs_on_a_case_at_max_elements():
    assert run_case("cs231n", ZOO["l2_reg"], max_elements=12).status == "passed"


@pytest.mark.parametrize("tool", ["gradproof", "torch_fast"])
def test_gradproof_and_torch_fast_always_run(tool):
    result = run_case(tool, ZOO["l2_reg_no_factor_2"], max_elements=0)
    assert result.ran and result.status == "flagged" and result.forward_calls > 0


def test_a_negative_max_elements_is_an_input_error():
    with pytest.raises(ValueError, match="max_elements must be >= 0"):
        run_case("cs231n", ZOO["l2_reg"], max_elements=-1)


class _FakeReport:
    def __init__(self, verdict):
        self.verdict, self.problems, self.inputs = verdict, [], []

    def __str__(self):
        return f"gradproof: {self.verdict.upper()}"


@pytest.mark.parametrize("verdict, status", [("ok", "passed"), ("failed", "flagged"),
                                             ("inconclusive", "inconclusive")])
def test_gradproof_status_is_the_report_verdict(monkeypatch, verdict, status):
    import gradproof

    monkeypatch.setattr(gradproof, "check_vjp", lambda *a, **k: _FakeReport(verdict))
    result = run_case("gradproof", ZOO["l2_reg"])
    assert result.status == status and result.flagged == (verdict != "ok")


def test_gradproof_runner_passes_upcast(monkeypatch):
    import gradproof

    seen = {}

    def fake(*args, **options):
        seen.update(options)
        return _FakeReport("ok")

    monkeypatch.setattr(gradproof, "check_vjp", fake)
    run_case("gradproof", ZOO["l2_reg"], upcast=False)
    assert seen["upcast"] is False


def _accounting_selection():
    names = ["affine", "relu_exact_zeros", "l2_reg", "mul_swapped", "affine_dw_transposed",
             "l2_reg_no_factor_2"]
    return {n: ZOO[n] for n in names}


def test_summary_counts_inconclusive_on_a_bug_as_caught_and_on_a_clean_case_apart():
    selected = _accounting_selection()
    statuses = {"affine": "inconclusive", "relu_exact_zeros": "passed", "l2_reg": "flagged",
                "mul_swapped": "inconclusive", "affine_dw_transposed": "flagged",
                "l2_reg_no_factor_2": "passed"}
    (s,) = summarize([_result("gradproof", n, st) for n, st in statuses.items()], selected)
    assert (s.bugs_caught, s.bugs_inconclusive, s.bugs_run, s.bugs_total) == (2, 1, 3, 3)
    assert (s.false_alarms, s.clean_inconclusive, s.clean_run, s.clean_total) == (1, 1, 3, 3)
    assert s.missed == ["l2_reg_no_factor_2"] and s.false == ["l2_reg"]
    assert s.inconclusive == ["affine"]
    text = format_summary([s])
    assert "| gradproof | 2 / 3 (failed 1, inconclusive 1) | 1 / 3 | 1 | - |" in text
    assert "gradproof verdicts: ok 2, failed 2, inconclusive 2 (of 6 cases)" in text
    matrix = format_matrix([_result("gradproof", n, st) for n, st in statuses.items()], selected)
    assert "| affine | dense | correct | *INCONCLUSIVE* (unproven) |" in matrix
    assert "| mul_swapped | dense | bug | INCONCLUSIVE |" in matrix


def test_summary_counts_not_run_cases_apart_from_caught_and_false_alarms():
    selected = _accounting_selection()
    statuses = {"affine": "not_run", "relu_exact_zeros": "passed", "l2_reg": "passed",
                "mul_swapped": "not_run", "affine_dw_transposed": "not_run",
                "l2_reg_no_factor_2": "flagged"}
    (s,) = summarize([_result("cs231n", n, st) for n, st in statuses.items()], selected)
    assert (s.bugs_caught, s.bugs_run, s.bugs_total, s.not_run_bugs) == (1, 1, 3, 2)
    assert (s.false_alarms, s.clean_run, s.clean_total, s.not_run_clean) == (0, 2, 3, 1)
    assert s.missed == [] and s.false == []
    assert (s.not_run_calls, s.not_run_seconds) == (3000, 6.0)
    assert (s.forward_calls, s.seconds) == (30, 1.5)
    text = format_summary([s], max_elements=100)
    assert "| cs231n | 1 / 1 | 0 / 2 | 0 | 3 (2 bugs, 1 clean): 3,000 forward calls, >= 6 s |" \
        in text
    assert "more than 100 checked elements" in text
    matrix = format_matrix([_result("cs231n", n, st) for n, st in statuses.items()], selected)
    assert "| mul_swapped | dense | bug | not run (1000 forward calls) |" in matrix


def test_main_limits_the_full_tools_and_still_runs_gradproof(capsys):
    status = main(["--tools", "gradproof", "cs231n", "--case", "l2_reg", "--case",
                   "l2_reg_no_factor_2", "--max-elements", "5"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "| gradproof | 1 / 1 | 0 / 1 | 0 | - |" in printed
    assert "| cs231n | 0 / 0 | 0 / 0 | 0 | 2 (1 bugs, 1 clean): 48 forward calls" in printed
    assert "gradproof verdicts: ok 1, failed 1, inconclusive 0 (of 2 cases)" in printed


def test_main_max_elements_none_runs_every_tool(capsys):
    main(["--tools", "cs231n", "--case", "l2_reg", "--max-elements", "none"])
    assert "| cs231n | 0 / 0 | 0 / 1 | 0 | - |" in capsys.readouterr().out


def test_torch_fast_does_not_compute_full_jacobians_for_its_message_on_a_failure():
    case = ZOO["conv_dw_ignores_stride"]  # gradcheck's message would cost 2 calls per element
    result = run_case("torch_fast", case)
    assert result.status == "flagged"
    assert result.forward_calls < checked_elements(case)

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
    numerical_gradient_array,
    rel_error,
    run_case,
)
from gradproof.zoo.table import format_matrix, main, summarize

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
    assert "| cs231n | 1 / 1 | 0 / 1 |" in printed
    assert "| l2_reg_no_lambda | dense | bug | FLAG | FLAG |" in path.read_text()


def test_main_rejects_an_unknown_case(capsys):
    assert main(["--case", "no_such_case", "--tools", "cs231n"]) == 2

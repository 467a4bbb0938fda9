"""`gradproof grade tests/grade/sample_submissions/`: every fixture function gets its status."""

from __future__ import annotations

import pytest

# student -> {(file, function): status}; every function the fixtures define is listed
LAYERS = ("affine_forward", "affine_backward", "relu_forward", "relu_backward",
          "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
          "layernorm_forward", "layernorm_backward", "dropout_forward", "dropout_backward",
          "conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive",
          "max_pool_backward_naive", "spatial_batchnorm_forward", "spatial_batchnorm_backward",
          "spatial_groupnorm_forward", "spatial_groupnorm_backward", "svm_loss", "softmax_loss")
RNN = ("rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward",
       "word_embedding_forward", "word_embedding_backward", "temporal_affine_forward",
       "temporal_affine_backward", "temporal_softmax_loss", "lstm_step_forward",
       "lstm_step_backward", "lstm_forward", "lstm_backward")

EXPECTED: dict[str, dict[tuple[str, str], str]] = {
    "alice": {
        **{("cs231n/layers.py", f): "correct" for f in LAYERS},
        **{("cs231n/rnn_layers.py", f): "correct" for f in RNN},
        **{("cs231n/classifiers/linear_svm.py", f): "correct"
           for f in ("svm_loss_naive", "svm_loss_vectorized")},
        **{("cs231n/classifiers/softmax.py", f): "correct"
           for f in ("softmax_loss_naive", "softmax_loss_vectorized")},
    },
    "bob": {("layers.py", f): s for f, s in {
        "affine_forward": "correct", "affine_backward": "wrong",
        "relu_forward": "correct", "relu_backward": "wrong",
        "batchnorm_forward": "correct", "batchnorm_backward": "wrong",
        "batchnorm_backward_alt": "wrong",
        "max_pool_forward_naive": "correct", "max_pool_backward_naive": "wrong",
        "softmax_loss": "wrong"}.items()},
    "carol": {("layers.py", f): s for f, s in {
        "batchnorm_forward": "correct", "batchnorm_backward_alt": "wrong",
        "layernorm_forward": "wrong", "layernorm_backward": "wrong",
        "spatial_batchnorm_forward": "correct", "spatial_batchnorm_backward": "wrong",
        "word_embedding_forward": "correct", "word_embedding_backward": "wrong",
        "svm_loss": "correct", "relu_forward": "wrong", "relu_backward": "correct"}.items()},
    "dave": {
        **{("cs231n/layers.py", f): "not-implemented" for f in (
            "affine_backward", "relu_forward", "relu_backward", "batchnorm_forward",
            "batchnorm_backward", "batchnorm_backward_alt", "dropout_forward",
            "dropout_backward", "conv_forward_naive", "conv_backward_naive", "svm_loss")},
        ("cs231n/layers.py", "affine_forward"): "correct",
        ("cs231n/classifiers/linear_svm.py", "svm_loss_naive"): "not-implemented",
        ("cs231n/classifiers/linear_svm.py", "svm_loss_vectorized"): "not-implemented",
    },
    "erin": {
        ("layers.py", "affine_forward"): "correct", ("layers.py", "affine_backward"): "correct",
        ("layers.py", "conv_forward_naive"): "correct",
        ("layers.py", "conv_backward_naive"): "timeout",
        ("layers.py", "max_pool_forward_naive"): "error",
        ("layers.py", "max_pool_backward_naive"): "error",
        ("rnn_layers.py", "lstm_step_forward"): "correct",
        ("rnn_layers.py", "lstm_step_backward"): "correct",
    },
    "frank": {("layers.py", "affine_forward"): "error", ("layers.py", "affine_backward"): "error"},
    "grace": {("layers.py", f): s for f, s in {
        "affine_forward": "correct", "affine_backward": "error",
        "relu_forward": "error", "relu_backward": "error"}.items()},
    "heidi_linear_svm": {("heidi_linear_svm.py", f): s for f, s in {
        "svm_loss_naive": "correct", "svm_loss_vectorized": "wrong",
        "softmax_loss_naive": "correct", "softmax_loss_vectorized": "wrong"}.items()},
    "ivan": {("layers.py", f): "correct" for f in (
        "affine_forward", "affine_backward", "relu_forward", "relu_backward",
        "batchnorm_forward", "batchnorm_backward_alt", "dropout_forward", "dropout_backward",
        "max_pool_forward_naive", "max_pool_backward_naive", "spatial_groupnorm_forward",
        "spatial_groupnorm_backward", "softmax_loss")},
    "mallory_exit": {("layers.py", f): s for f, s in {
        "affine_forward": "wrong", "affine_backward": "error",
        "relu_forward": "correct", "relu_backward": "error"}.items()},
    "mallory_forge": {("layers.py", f): s for f, s in {
        "affine_forward": "wrong", "affine_backward": "wrong",
        "relu_forward": "correct", "relu_backward": "wrong"}.items()},
    "mallory_patch": {("layers.py", "relu_forward"): "error",
                      ("layers.py", "relu_backward"): "error"},
}


def _submission(run, name):
    found = [s for s in run["json"]["submissions"] if s["name"] == name]
    names = [s["name"] for s in run["json"]["submissions"]]
    assert len(found) == 1, f"{name} not graded once: {names}"
    return found[0]


def _function(run, student, name):
    return next(f for f in _submission(run, student)["functions"] if f["name"] == name)


def _kinds(run, student, name):
    return {f["kind"] for f in _function(run, student, name)["findings"]}


def _text(run, student, name):
    return " ".join(f["message"] for f in _function(run, student, name)["findings"])


def test_the_run_exits_0_with_json(class_run):
    assert class_run["returncode"] == 0, class_run["stderr"][-3000:]
    assert class_run["json"]["version"] == 1


def test_every_student_is_a_submission(class_run):
    names = [s["name"] for s in class_run["json"]["submissions"]]
    assert names == sorted(EXPECTED)


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_every_fixture_function_has_its_expected_status(class_run, student):
    functions = _submission(class_run, student)["functions"]
    got = {(f["file"], f["name"]): f["status"] for f in functions}
    assert got == EXPECTED[student]


def test_the_complete_submission_scores_1(class_run):
    assert _submission(class_run, "alice")["score"] == 1.0
    assert _submission(class_run, "dave")["score"] == pytest.approx(1 / 14, abs=1e-4)


def test_write_into_dout_names_the_line(class_run):
    text = _text(class_run, "bob", "relu_backward")
    assert "inplace-dout" in _kinds(class_run, "bob", "relu_backward")
    assert "layers.py line 25" in text and "dx[x <= 0] = 0" in text


def test_write_into_the_input_names_the_line(class_run):
    assert "inplace-input" in _kinds(class_run, "carol", "relu_forward")
    assert "x[x < 0] = 0" in _text(class_run, "carol", "relu_forward")


def test_bias_gradient_with_an_extra_axis(class_run):
    assert "db has shape (1, M) = (1, 5), expected (M,) = (5,)" in _text(class_run, "bob",
                                                                         "affine_backward")


def test_spatial_dgamma_shape_is_spoken_in_letters(class_run):
    assert "dgamma has shape (1, C, 1, 1) = (1, 3, 1, 1), expected (C,) = (3,)" in _text(
        class_run, "carol", "spatial_batchnorm_backward")


def test_missing_one_over_n_is_named(class_run):
    # the checker's diagnosis names the factor and the axis it comes from
    text = _text(class_run, "bob", "batchnorm_backward_alt")
    assert "6" in text and "times too large" in text
    assert "missing 1/N" in _text(class_run, "heidi_linear_svm", "softmax_loss_vectorized")


def test_eps_mismatch_is_explained(class_run):
    text = _text(class_run, "carol", "batchnorm_backward_alt")
    assert "is eps used in the forward but not in the backward" in text


def test_unbiased_variance_is_explained(class_run):
    assert "unbiased" in _text(class_run, "carol", "layernorm_forward")


def test_pooling_with_assignment_for_accumulation_fails_on_overlapping_windows(class_run):
    text = _text(class_run, "bob", "max_pool_backward_naive")
    assert "overlapping windows" in text and "(the notebook's)" not in text


def test_repeated_words_catch_assignment_for_accumulation(class_run):
    assert "[case: repeated words]" in _text(class_run, "carol", "word_embedding_backward")


def test_missing_variance_path_is_wrong_in_dx_only(class_run):
    text = _text(class_run, "bob", "batchnorm_backward")
    assert "dx" in text and "dgamma" not in text and "dbeta" not in text


def test_regularization_convention_is_told_and_its_gradient_checked(class_run):
    assert "0.5 * reg" in _text(class_run, "heidi_linear_svm", "svm_loss_naive")
    assert "the regularization term of dW is 2 * reg * W" in _text(
        class_run, "heidi_linear_svm", "svm_loss_vectorized")


def test_templates_are_not_implemented_with_a_reason(class_run):
    assert "(None, None, None)" in _text(class_run, "dave", "affine_backward")
    assert "untouched template" in _text(class_run, "dave", "dropout_forward")
    assert "NotImplementedError" in _text(class_run, "dave", "batchnorm_backward")
    assert "dW all zeros" in _text(class_run, "dave", "svm_loss_naive")


def test_infinite_loop_times_out_and_the_rest_is_graded(class_run):
    assert "did not finish within 4 s" in _text(class_run, "erin", "conv_backward_naive")
    assert _function(class_run, "erin", "lstm_step_backward")["status"] == "correct"


def test_exception_names_the_file_and_line(class_run):
    text = _text(class_run, "erin", "max_pool_forward_naive")
    assert "raised ValueError" in text and "layers.py line 50" in text


def test_syntax_error_is_a_file_problem(class_run):
    problems = _submission(class_run, "frank")["problems"]
    assert problems and problems[0]["kind"] == "syntax-error"
    assert "line 5" in problems[0]["message"]


def test_memory_bombs_are_errors_not_crashes(class_run):
    assert "out-of-memory" in _kinds(class_run, "grace", "affine_backward")
    assert "out-of-memory" in _kinds(class_run, "grace", "relu_forward")


def test_exits_and_forged_results_never_make_correct(class_run):
    assert "exit" in _kinds(class_run, "mallory_exit", "affine_backward")
    assert "crash" in _kinds(class_run, "mallory_exit", "relu_backward")
    output = _submission(class_run, "mallory_exit")["output"]
    assert '"status": "correct"' in output  # the forgery was printed, and only captured
    # what it wrote into every descriptor reached its own reply pipe, was skipped, and said
    assert "they were skipped" in _text(class_run, "mallory_exit", "affine_forward")


def test_monkeypatching_the_grader_is_detected(class_run):
    for name in ("relu_forward", "relu_backward"):
        assert _kinds(class_run, "mallory_patch", name) == {"tampering"}
    assert "numpy.allclose" in _text(class_run, "mallory_patch", "relu_forward")


def test_printed_output_is_captured(class_run):
    assert "affine_forward: x has shape" in _submission(class_run, "erin")["output"]


def test_class_summary_puts_the_most_missed_functions_first(class_run):
    summary = class_run["json"]["summary"]
    assert summary["submissions"] == len(EXPECTED)
    first = summary["functions"][0]
    assert first["wrong"] + first["error"] + first["timeout"] >= 2
    assert summary["common_findings"][0]["students"] >= 1


def test_other_years_conventions_are_accepted_and_said(class_run):
    assert "DROPPING" in _text(class_run, "ivan", "dropout_forward")
    assert "gamma and beta of shape (C,)" in _text(class_run, "ivan", "spatial_groupnorm_backward")

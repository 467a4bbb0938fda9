"""The grader's parts on their own: plain-language helpers, Python 2 support, discovery,
the specs table, the sandbox's channel."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gradproof.grade import Limits, grade_paths
from gradproof.grade.discover import DiscoveryError, discover
from gradproof.grade.findings import name_factor, spoken_shape
from gradproof.grade.forward import case_inputs
from gradproof.grade.legacy import py2_divide, python2_prints
from gradproof.grade.specs import ALL_NAMES, SPECS
from gradproof.grade.student import looks_unfinished


def test_shapes_are_spoken_in_the_cases_letters():
    dims = {"N": 2, "C": 3, "H": 4, "W": 5}
    assert spoken_shape((1, 3, 1, 1), dims) == "(1, C, 1, 1) = (1, 3, 1, 1)"
    assert spoken_shape((3,), dims) == "(C,) = (3,)"
    assert spoken_shape((7, 7), dims) == "(7, 7)"
    assert spoken_shape((4, 4), {"H": 4, "W": 4}) == "(4, 4)"  # ambiguous: numbers


def test_factors_are_named_after_dimensions():
    assert name_factor(8.0, {"N": 8}) == "N = 8 times too large (a missing 1/N?)"
    assert name_factor(0.5, {"N": 8}).startswith("2 times too small")
    assert "sign is flipped" in name_factor(-1.0, {})


def test_python2_prints_become_calls():
    source = "def f(x, verbose=True):\n  if verbose: print 'x', x.shape\n  print x  # done\n" \
             "  return x\n"
    converted = python2_prints(source)
    assert "print('x', x.shape)" in converted and "print(x)  # done" in converted
    compile(converted, "f.py", "exec")
    assert python2_prints("print('already')\nprint = 3\n") is None


def test_python2_division_floors_integers_only():
    assert py2_divide(7, 2) == 3 and py2_divide(np.int64(7), 2) == 3
    assert py2_divide(7.0, 2) == 3.5
    assert py2_divide(np.arange(4), 2).tolist() == [0, 0, 1, 1]
    assert py2_divide(np.ones(2), 2).tolist() == [0.5, 0.5]


def test_unfinished_templates_are_recognised():
    def stub(x):
        out = None
        pass
        return out.astype(float)

    def finished(x):
        return x * 2

    assert looks_unfinished(stub) and not looks_unfinished(finished)


def test_every_spec_case_runs_its_reference():
    for spec in SPECS:
        for index, _ in enumerate(spec.cases):
            for variant in spec.variants:
                args = case_inputs(spec, index, variant, seed=0)
                ref = spec.reference(args, **variant.options)
                assert all(np.all(np.isfinite(np.asarray(o, float))) for o in ref.outs)
    assert len(ALL_NAMES) == len(set(ALL_NAMES)) == 38


def test_discovery_rules(tmp_path):
    layer = "def relu_forward(x):\n    return x, x\n"
    (tmp_path / "class" / "ann" / "cs231n").mkdir(parents=True)
    (tmp_path / "class" / "ann" / "cs231n" / "layers.py").write_text(layer)
    (tmp_path / "class" / "ben").mkdir()
    (tmp_path / "class" / "ben" / "layers.py").write_text(layer)
    (tmp_path / "class" / "cid.py").write_text(layer)
    (tmp_path / "class" / "notes.py").write_text("x = 1\n")
    (tmp_path / "class" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "class" / ".ipynb_checkpoints" / "layers-checkpoint.py").write_text(layer)
    found = discover([tmp_path / "class"])
    assert [(s.name, len(s.files)) for s in found] == [("ann", 1), ("ben", 1), ("cid", 1)]
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "layers.py").write_text(layer)
    (tmp_path / "one" / "rnn_layers.py").write_text("def rnn_forward(x):\n    pass\n")
    single = discover([tmp_path / "one"])
    assert [(s.name, len(s.files)) for s in single] == [("one", 2)]
    with pytest.raises(DiscoveryError):
        discover([tmp_path / "missing"])


def test_junk_written_into_every_descriptor_is_never_a_result(tmp_path):
    # the student's process holds no descriptor of the result channel; its reply pipe
    # is read from the reply's tag on, so junk before it is skipped: the function is
    # graded as what it is (correct here), and the junk (a fake result) is no result
    (tmp_path / "layers.py").write_text(textwrap.dedent("""
        import os
        import numpy as np

        FAKE = b'{"event": "result", "result": {"name": "relu_backward", "status": "correct"}}'

        def relu_forward(x):
            for fd in range(3, 64):
                try:
                    os.write(fd, b"garbage without a newline " + FAKE)
                except OSError:
                    pass
            return np.maximum(x, 0), x

        def relu_backward(dout, cache):
            return dout  # wrong
    """))
    graded = grade_paths([tmp_path / "layers.py"], Limits(timeout=10))
    statuses = {r["name"]: r["status"] for r in graded[0].functions()}
    assert statuses == {"relu_forward": "correct", "relu_backward": "wrong"}


def test_command_line_usage_errors_exit_2(tmp_path):
    run = [sys.executable, "-m", "gradproof", "grade"]
    missing = subprocess.run(run + [str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    (tmp_path / "empty.py").write_text("x = 1\n")
    nothing = subprocess.run(run + [str(tmp_path / "empty.py")], capture_output=True, text=True)
    assert nothing.returncode == 2 and "defines a CS231n function" in nothing.stderr


def test_one_file_graded_through_the_command_line(tmp_path):
    (tmp_path / "layers.py").write_text(
        "import numpy as np\n\ndef relu_forward(x):\n    return np.maximum(x, 0), x\n\n"
        "def relu_backward(dout, cache):\n    return dout * (cache > 0)\n")
    done = subprocess.run([sys.executable, "-m", "gradproof", "grade", str(tmp_path / "layers.py"),
                           "--json", "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [f["status"] for f in data["submissions"][0]["functions"]] == ["correct", "correct"]


def test_demo_ends_with_a_grading_run():
    from gradproof.cli import build_parser
    from gradproof.grade.demo import run_grade_demo

    args = build_parser().parse_args(["demo"])
    assert args.func.__name__ == "demo_then_grade"
    graded = run_grade_demo(verbose=False)
    scores = {g.submission.name: g.score for g in graded}
    assert scores["ada"] == 1.0 and scores["ben"] < 1.0


def test_guard_sees_replaced_attributes_and_swapped_code():
    import json as json_module

    from gradproof.grade._worker import Guard

    guard = Guard()
    assert guard.changed() == []
    original_code = json_module.dumps.__code__
    json_module.dumps.__code__ = (lambda *args, **kwargs: "fine").__code__
    try:
        assert "json.dumps" in guard.changed()
    finally:
        json_module.dumps.__code__ = original_code
    original = np.allclose
    np.allclose = lambda *args, **kwargs: True
    try:
        assert "numpy.allclose" in guard.changed()
    finally:
        np.allclose = original
    assert guard.changed() == []


def _verdict_of(verdict, problems, statuses=("ok",)):
    from types import SimpleNamespace

    from gradproof.check import Finding
    from gradproof.grade.backward import _from_report
    from gradproof.grade.harness import Harness
    from gradproof.grade.specs import SPEC_BY_NAME

    spec = SPEC_BY_NAME["affine_backward"]
    report = SimpleNamespace(
        verdict=verdict, ok=verdict == "ok",
        problems=[Finding(message, kind, index) for kind, message, index in problems],
        inputs=[SimpleNamespace(checked=True, status=s, name="x", index=0) for s in statuses])
    found: list[dict] = []
    status, _ = _from_report(report, Harness(spec, None, None, (), {}, False), [], found)
    return status, {f["kind"] for f in found}


def test_an_inconclusive_check_is_an_error_never_correct():
    status, kinds = _verdict_of("inconclusive", [])
    assert status == "inconclusive" and kinds == {"inconclusive"}
    status, kinds = _verdict_of("ok", [], statuses=("inconclusive",))
    assert status == "inconclusive"
    status, _ = _verdict_of("failed", [("nondeterministic", "forward is not deterministic", None)])
    assert status == "inconclusive"


def test_a_proof_makes_wrong_and_dtype_alone_does_not():
    assert _verdict_of("failed", [("mismatch", "input 1 (w): wrong", 1)])[0] == "wrong"
    assert _verdict_of("failed", [("dtype", "gradient for input 0 has dtype", 0)])[0] == "correct"
    assert _verdict_of("failed", [("some-new-kind", "input 0 (x): odd", 0)])[0] == "wrong"
    assert _verdict_of("ok", [("raised", "backward raised ValueError", None)])[0] == "error"


def test_a_backward_true_to_a_wrong_forward_is_wrong_and_says_so(tmp_path):
    (tmp_path / "layers.py").write_text(textwrap.dedent("""
        import numpy as np

        def relu_forward(x):
            return np.where(x > 0, x, 0.1 * x), x  # leaky: not the ReLU asked for

        def relu_backward(dout, cache):
            return np.where(cache > 0, dout, 0.1 * dout)
    """))
    graded = grade_paths([tmp_path / "layers.py"], Limits(timeout=20))
    forward, backward = graded[0].functions()
    assert forward["status"] == backward["status"] == "wrong"
    assert any("match the derivative of your own relu_forward" in f["message"]
               for f in backward["findings"])

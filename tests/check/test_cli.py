"""``gradproof check MODULE:FUNCTION``, run as a user types it: exit status, output, errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradproof import __version__
from gradproof.check.terminal import format_report, use_color
from gradproof.cli import main
from gradproof.commands.check import UsageError, parse_input_spec
from tests.report_schema import validate


def load_json(text: str) -> dict:
    """The one JSON document the command printed, validated against the schema."""
    document = json.loads(text)
    validate(document)
    return document

BIN = Path(sys.executable).parent
LAYERS = '''
import numpy as np

def affine(x, w, b):
    return x @ w + b, (x, w)

def affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)

def buggy_affine(x, w, b):
    return x @ w + b, (x, w)

def buggy_affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.mean(axis=0)  # BUG: mean, not sum

def swish(x):
    s = 1 / (1 + np.exp(-x))
    return x * s, lambda dout: dout * (s + x * s * (1 - s))

def loss_forward(x, y):
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(len(y)), y]).mean(), (p, y)

def loss_backward(dloss, cache):
    p, y = cache
    dx = p.copy()
    dx[np.arange(len(y)), y] -= 1
    return dloss * dx / len(y), None

def no_backward(x):
    return 2 * x, None

CONSTANT = 3

print("mylayer imported")  # a module that prints at import


def chatty(x):
    print("forward called")
    return x * 2, None


def chatty_backward(dout, cache):
    return 2 * dout


def crashing(x):
    return _helper(x), None


def crashing_backward(dout, cache):
    return dout


def _helper(x):
    raise RuntimeError("boom in helper")


def crashing_in_backward(x):
    return 2 * x, x


def crashing_in_backward_backward(dout, cache):
    return dout @ cache  # shapes do not match
'''
AFFINE_INPUTS = ["--input", "x=4,10", "--input", "w=10,3", "--input", "b=3"]


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    (tmp_path / "mylayer.py").write_text(LAYERS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the command adds the file's folder
    yield tmp_path
    for name in [n for n in sys.modules if n == "mylayer" or n.startswith("gradproof_user_")]:
        del sys.modules[name]  # the next test's mylayer.py lives in another folder


def gradproof(*args, cwd, env=None):
    """Run the installed ``gradproof`` command as a user would."""
    return subprocess.run([str(BIN / "gradproof"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


# ----------------------------------------------------------------------
# as a user types it
def test_correct_layer_exits_0_and_buggy_layer_exits_1(workdir):
    ok = gradproof("check", "mylayer.py:affine", *AFFINE_INPUTS, cwd=workdir)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "gradproof: OK affine" in ok.stdout
    bad = gradproof("check", "mylayer.py:buggy_affine", *AFFINE_INPUTS, cwd=workdir)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "gradproof: FAILED buggy_affine" in bad.stdout
    assert "input 2 (b)" in bad.stdout  # the wrong gradient is named
    assert "\x1b[" not in ok.stdout + bad.stdout  # not a terminal: no colour


def test_shell_script_gates_on_the_exit_status(workdir):
    script = workdir / "gate.sh"
    script.write_text(
        "set -u\n"
        "for f in affine buggy_affine; do\n"
        "  if gradproof check mylayer.py:$f --input x=4,10 --input w=10,3 --input b=3 "
        ">/dev/null; then\n"
        "    echo \"$f: passed\"\n"
        "  else\n"
        "    echo \"$f: caught ($?)\"\n"
        "  fi\n"
        "done\n"
    )
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(script)], cwd=workdir, capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.stdout.splitlines() == ["affine: passed", "buggy_affine: caught (1)"]


def test_json_output_is_the_report_dict(workdir):
    done = gradproof("check", "mylayer.py:buggy_affine", *AFFINE_INPUTS, "--json",
                     "--html", "r.html", cwd=workdir)
    assert done.returncode == 1
    report = load_json(done.stdout)  # stdout holds only the JSON
    assert report["ok"] is False
    assert [r["name"] for r in report["inputs"]] == ["x", "w", "b"]
    assert [r["ok"] for r in report["inputs"]] == [True, True, False]
    assert "r.html" in done.stderr
    page = (workdir / "r.html").read_text()
    assert page.count('class="gp-heatmap"') == 3  # the small full check for the heat maps


def test_module_syntax_int_labels_float32_and_closure_style(workdir, capsys):
    assert main(["check", "mylayer:loss_forward", "--input", "x=5,7",
                 "--input", "y=5:int:0..7"]) == 0  # loss_forward -> loss_backward
    out = capsys.readouterr().out
    assert "int64" in out and "skipped" in out
    assert main(["check", "mylayer.py:swish", "-i", "x=3,4:float32", "--mode", "full"]) == 0
    out = capsys.readouterr().out
    assert "float32" in out and "also checked in float64" in out
    assert main(["check", "mylayer.py:swish", "-i", "x=3,4:float32", "--no-upcast"]) == 0
    assert "float64" not in capsys.readouterr().out
    assert main(["check", "mylayer.py:affine", "--backward", "buggy_affine_backward",
                 *AFFINE_INPUTS]) == 1


def test_inputs_are_ordered_by_the_functions_parameters(workdir, capsys):
    assert main(["check", "mylayer.py:affine", "-i", "b=3", "-i", "w=10,3", "-i", "x=4,10",
                 "--json"]) == 0
    report = load_json(capsys.readouterr().out)
    assert [r["shape"] for r in report["inputs"]] == [[4, 10], [10, 3], [3]]


def test_workers_give_the_serial_report(workdir, capsys):
    main(["check", "mylayer.py:buggy_affine", *AFFINE_INPUTS, "--json"])
    serial = load_json(capsys.readouterr().out)
    assert main(["check", "mylayer.py:buggy_affine", *AFFINE_INPUTS, "--json",
                 "--workers", "2"]) == 1
    parallel = load_json(capsys.readouterr().out)
    # the worker processes import mylayer too: its print is captured once more per worker
    assert parallel["captured"]["stdout"].count("mylayer imported") >= 1
    assert {**serial, "seconds": 0, "captured": None} == \
        {**parallel, "seconds": 0, "captured": None}


# ----------------------------------------------------------------------
# usage errors: exit 2 and a message that names the cause
@pytest.mark.parametrize(
    "argv, expected",
    [
        (["missing.py:affine", "-i", "x=3"], "file not found: 'missing.py'"),
        (["nomodule_xyz:affine", "-i", "x=3"], "no module or file named 'nomodule_xyz'"),
        (["mylayer.py:afine", "-i", "x=3"], "function 'afine' not found in mylayer.py"),
        (["mylayer.py", "-i", "x=3"], "expected MODULE:FUNCTION"),
        (["mylayer.py:CONSTANT", "-i", "x=3"], "CONSTANT in mylayer.py is int, not a function"),
        (["mylayer.py:affine", "-i", "x=4,ten", "-i", "w=10,3", "-i", "b=3"], "'x=4,ten'"),
        (["mylayer.py:affine", "-i", "x=4,,10", "-i", "w=10,3", "-i", "b=3"], "'x=4,,10'"),
        (["mylayer.py:affine", "-i", "x=,4", "-i", "w=10,3", "-i", "b=3"], "'x=,4'"),
        (["mylayer.py:affine", "-i", "x4,10"], "--input 'x4,10'"),
        (["mylayer.py:affine", "-i", "x=4,10:float16"], "unknown dtype 'float16'"),
        (["mylayer.py:affine", "-i", "x=4:int:5..1"], "must have LOW < HIGH"),
        (["mylayer.py:affine", "-i", "x=4,10", "-i", "w=10,3"], "needs an --input for b"),
        (["mylayer.py:affine", "-i", "q=4"], "affine has no parameter 'q'"),
        (["mylayer.py:affine"], "no --input given"),
        (["mylayer.py:affine", *AFFINE_INPUTS, "--backward", "nope"], "--backward nope"),
        (["mylayer.py:no_backward", "-i", "x=3"], "no backward for no_backward"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(workdir, capsys, argv, expected):
    assert main(["check", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradproof check: error:")
    assert expected in err
    assert main(["check", *argv, "--json"]) == 2
    document = load_json(capsys.readouterr().out)  # --json: still only JSON on stdout
    assert document["error"]["kind"] == "usage" and expected in document["error"]["message"]
    assert document["exit_status"] == 2


def test_bad_option_value_exits_2(workdir):
    done = gradproof("check", "mylayer.py:affine", *AFFINE_INPUTS, "--mode", "fast",
                     cwd=workdir)
    assert done.returncode == 2 and "--mode" in done.stderr


def test_trailing_comma_is_a_one_dimensional_shape():
    assert parse_input_spec("x=4,").shape == (4,)
    assert parse_input_spec("x=(4, 3)").shape == (4, 3)


def test_version_names_the_package():
    done = subprocess.run([str(BIN / "gradproof"), "--version"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.startswith(f"gradproof {__version__} (Python ")


# ----------------------------------------------------------------------
# the user's output and exceptions
def test_json_holds_only_json_and_the_modules_output_is_captured(workdir):
    done = gradproof("check", "mylayer.py:chatty", "-i", "x=3", "--json", cwd=workdir)
    assert done.returncode == 0, done.stderr
    document = load_json(done.stdout)  # nothing but the JSON document on stdout
    assert document["captured"]["stdout"].splitlines()[0] == "mylayer imported"
    assert "forward called" in document["captured"]["stdout"]
    assert document["exit_status"] == 0 and document["traceback"] is None
    text = gradproof("check", "mylayer.py:chatty", "-i", "x=3", cwd=workdir)
    assert text.stdout.startswith("gradproof: OK chatty")  # the prints come after the table
    assert "output of the checked code" in text.stdout and "  | mylayer imported" in text.stdout


def test_the_tutorials_prints_do_not_reach_json_stdout():
    root = Path(__file__).resolve().parents[2]
    done = gradproof("check", "examples/tutorial.py:swish", "-i", "x=8,16", "--json", cwd=root)
    document = load_json(done.stdout)
    assert "bug caught: True" in document["captured"]["stdout"]


@pytest.mark.parametrize("json_flag", [False, True])
def test_a_crash_in_the_forward_shows_the_users_traceback_and_exits_4(workdir, json_flag):
    done = gradproof("check", "mylayer.py:crashing", "-i", "x=3",
                     *(["--json"] if json_flag else []), cwd=workdir)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "the checked code raised (exit status 4)" in done.stderr
    assert "mylayer.py\", line" in done.stderr and "in _helper" in done.stderr
    assert "RuntimeError: boom in helper" in done.stderr
    assert "gradproof/check" not in done.stderr  # the checker's frames are left out
    if json_flag:
        document = load_json(done.stdout)
        assert document["exit_status"] == 4 and "in _helper" in document["traceback"]
        assert document["inputs"][0]["status"] == "ERROR"
    else:
        assert "ERROR" in done.stdout


def test_a_crash_in_the_backward_shows_its_traceback(workdir, capsys):
    assert main(["check", "mylayer.py:crashing_in_backward", "-i", "x=3,2"]) == 4
    err = capsys.readouterr().err
    assert "in crashing_in_backward_backward" in err and "ValueError" in err


def test_a_crash_at_import_exits_4_with_its_traceback(workdir, capsys):
    (workdir / "broken.py").write_text("print('about to fail')\n1 / 0\n")
    assert main(["check", "broken.py:f", "-i", "x=3", "--json"]) == 4
    out, err = capsys.readouterr()
    document = load_json(out)
    assert document["error"]["kind"] == "user-code"
    assert "ZeroDivisionError" in document["traceback"] and "line 2" in document["traceback"]
    assert document["captured"]["stdout"] == "about to fail\n"
    assert "broken.py\", line 2" in err


def test_parse_input_spec():
    spec = parse_input_spec("y=4:int:0..10")
    assert (spec.name, spec.shape, spec.dtype, spec.low, spec.high) == ("y", (4,), "int64", 0, 10)
    assert parse_input_spec("s=").shape == ()
    assert parse_input_spec("x=2,3:float32:0.5..2").dtype == "float32"
    with pytest.raises(UsageError, match="'x=2,-3'"):
        parse_input_spec("x=2,-3")


# ----------------------------------------------------------------------
# colour
class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_colour_only_on_a_terminal_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert use_color(_Stream(tty=True)) is True
    assert use_color(_Stream(tty=False)) is False
    assert use_color(_Stream(tty=False), "always") is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(_Stream(tty=True)) is False
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert use_color(_Stream(tty=True)) is False


def test_coloured_report_has_the_same_content(workdir, capsys):
    import numpy as np
    import rich  # noqa: F401  (the [cli] extra, part of the dev extra)

    from gradproof import check_vjp
    from gradproof.nn import functional as F

    x = np.random.default_rng(0).standard_normal((3, 4))
    report = check_vjp(F.relu, lambda dout, cache: 2 * F.relu_backward(dout, cache), x)
    coloured = format_report(report, color=True)
    assert "\x1b[" in coloured and "FAILED" in coloured
    assert format_report(report, color=False) == str(report)
    assert main(["check", "mylayer.py:buggy_affine", *AFFINE_INPUTS, "--color", "always"]) == 1
    assert "\x1b[1;31mFAILED" in capsys.readouterr().out


def test_help_texts_say_what_the_demo_holds_and_show_no_markup(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "three of them buggy" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["diagnose", "--help"])
    text = capsys.readouterr().out
    assert "``" not in text and "gradproof diagnose relu-lr" in text
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "3 inconclusive" in text and "4 the checked code raised" in text


def test_a_timeout_spent_at_import_is_a_json_error_of_kind_timeout(workdir, capsys):
    (workdir / "slow.py").write_text("import time\ntime.sleep(30)\n\n"
                                     "def f(x):\n    return x, None\n")
    assert main(["check", "slow.py:f", "-i", "x=3", "--json", "--timeout", "0.5"]) == 3
    document = load_json(capsys.readouterr().out)
    assert document["error"]["kind"] == "timeout" and document["exit_status"] == 3


def test_full_mode_over_its_cap_is_a_usage_error_unless_forced(workdir, monkeypatch, capsys):
    from gradproof.check import engine

    monkeypatch.setattr(engine, "FULL_WARN_CALLS", 20)
    monkeypatch.setattr(engine, "FULL_MAX_CALLS", 40)  # 4 x 12 coordinates is over it
    assert main(["check", "mylayer.py:swish", "-i", "x=3,4", "--mode", "full"]) == 2
    assert "force" in capsys.readouterr().err
    assert main(["check", "mylayer.py:swish", "-i", "x=3,4", "--mode", "full",
                 "--force-full"]) == 0

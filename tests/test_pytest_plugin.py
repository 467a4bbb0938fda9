"""The pytest plugin: a failing gradient check fails the test and prints the report's table."""

from __future__ import annotations

import os
import subprocess
import sys

# Imported here so they outlive each in-process inner session: pytester restores
# sys.modules afterwards, and NumPy's C core cannot be imported twice.
import numpy  # noqa: F401
import pytest

import gradproof.pytest_plugin  # noqa: F401

pytest_plugins = ["pytester"]

LAYERS = '''
import numpy as np

def scale(x, w):
    return x * w, (x, w)

def scale_backward(dout, cache):
    x, w = cache
    return dout * w, dout * x

def scale_backward_doubled_dw(dout, cache):
    x, w = cache
    return dout * w, 2 * dout * x

def make_inputs(rng, shape):
    return rng.standard_normal(shape), rng.standard_normal(shape)
'''


# The documented activation; the installed entry point has the same name, so naming
# the plugin again is harmless.
LOAD = ("-p", "gradproof.pytest_plugin")


def run(pytester, test_source, *args):
    pytester.makepyfile(layers=LAYERS, test_user=test_source)
    # hypothesis's plugin costs seconds per inner session and is not needed there
    return pytester.runpytest(*LOAD, "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                              *args)


def test_failing_check_fails_the_test_with_the_report_table(pytester):
    result = run(pytester, '''
from layers import *

def test_scale(gradcheck):
    rng = np.random.default_rng(0)
    gradcheck.vjp(scale, scale_backward_doubled_dw, *make_inputs(rng, (3, 4)))
''')
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*GradientError: gradproof: FAILED*",
        "*input*name*shape*dtype*status*max rel err*tol*",
        "*1*w*(3, 4)*float64*FAIL*",
    ])


def test_correct_check_passes_through_the_fixture(pytester):
    result = run(pytester, '''
from layers import *

def test_scale(gradcheck):
    rng = np.random.default_rng(0)
    report = gradcheck.vjp(scale, scale_backward, *make_inputs(rng, (3, 4)))
    assert report.ok and [r.name for r in report.inputs] == ["x", "w"]
''')
    result.assert_outcomes(passed=1)


def test_shapes_failure_names_every_failing_shape(pytester):
    result = run(pytester, '''
from layers import *

def backward_wrong_for_big_inputs(dout, cache):
    dx, dw = scale_backward(dout, cache)
    return (dx, 2 * dw) if dx.size > 4 else (dx, dw)

def test_scale_shapes(gradcheck):
    gradcheck.shapes(scale, backward_wrong_for_big_inputs, make_inputs,
                     shapes=[(1, 2), (3, 3), (2, 2), (5,)])
''')
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*gradient check failed for 2 of 4 shapes*",
                                 "*shape (3, 3) (shape index 1, seed 1)*",
                                 "*shape (5,) (shape index 3, seed 3)*"])
    assert "shape (1, 2)" not in result.stdout.str()


def test_seed_option_reaches_the_fixture_and_the_report(pytester):
    result = run(pytester, '''
from layers import *

def test_seed(gradcheck):
    report = gradcheck.vjp(scale, scale_backward, *make_inputs(np.random.default_rng(0), 3))
    assert gradcheck.seed == 7 and report.seed == 7
''', "--gradproof-seed=7")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("value", ["-1", "abc"])
def test_a_bad_seed_option_is_one_usage_error_not_a_failure_per_test(pytester, value):
    result = run(pytester, """
def test_nothing(gradcheck):
    pass
""", f"--gradproof-seed={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gradproof-seed must be an int >= 0*"])


# ----------------------------------------------------------------------
# The documented activations, each in a fresh pytest process (as a user runs them)
USER_TEST = """
import numpy as np
from layers import scale, scale_backward_doubled_dw, make_inputs
from gradproof.testing import assert_vjp
from gradproof import check_vjp

def test_fixture(gradcheck):
    x, w = make_inputs(np.random.default_rng(0), (3, 4))
    gradcheck.vjp(scale, scale_backward_doubled_dw, x, w)  # FIXTURE LINE

def test_assert_vjp():
    x, w = make_inputs(np.random.default_rng(0), (3, 4))
    assert_vjp(scale, scale_backward_doubled_dw, x, w)  # ASSERT LINE

def test_raise_if_failed():
    x, w = make_inputs(np.random.default_rng(0), (3, 4))
    check_vjp(scale, scale_backward_doubled_dw, x, w).raise_if_failed()  # REPORT LINE
"""


def _fresh_pytest(tmp_path, *args, conftest=None):
    (tmp_path / "layers.py").write_text(LAYERS)
    (tmp_path / "test_user.py").write_text(USER_TEST)
    if conftest is not None:
        (tmp_path / "conftest.py").write_text(conftest)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "-p", "no:hypothesispytest", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("how", ["command line -p", "conftest pytest_plugins"])
def test_documented_activations_work_in_a_fresh_pytest(tmp_path, how):
    if how == "command line -p":
        code, out = _fresh_pytest(tmp_path, "-p", "gradproof.pytest_plugin")
    else:
        code, out = _fresh_pytest(tmp_path,
                                  conftest='pytest_plugins = ["gradproof.pytest_plugin"]\n')
    assert "already registered" not in out, out
    assert code == 1 and "3 failed" in out, out
    assert "GradientError: gradproof: FAILED scale" in out


def test_traceback_ends_at_the_users_line_not_in_the_library(tmp_path):
    code, out = _fresh_pytest(tmp_path, "-p", "gradproof.pytest_plugin", "--tb=long")
    assert code == 1, out
    for marker in ("FIXTURE LINE", "ASSERT LINE", "REPORT LINE"):
        assert f"# {marker}" in out, marker
    # the last source line shown for each failure is the user's: no gradproof frame
    for frame in ("def raise_if_failed", "def assert_vjp", "def vjp(self",
                  "gradproof/check/report.py", "gradproof/testing.py",
                  "gradproof/pytest_plugin.py"):
        assert frame not in out, frame
    assert out.count("test_user.py:") >= 3

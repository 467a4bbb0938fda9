"""The pytest plugin: a failing gradient check fails the test and prints the report's table."""

from __future__ import annotations

# Imported here so they outlive each in-process inner session: pytester restores
# sys.modules afterwards, and NumPy's C core cannot be imported twice.
from importlib.metadata import entry_points

import numpy  # noqa: F401

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


# Once pyproject.toml declares the pytest11 entry point the plugin loads itself;
# naming it again with -p would register it twice.
AUTOLOADED = any(ep.value == "gradproof.pytest_plugin" for ep in entry_points(group="pytest11"))
LOAD = () if AUTOLOADED else ("-p", "gradproof.pytest_plugin")


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

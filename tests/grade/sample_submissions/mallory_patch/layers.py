"""mallory_patch (written for gradproof's tests): wrong code that monkeypatches the grader
and NumPy at import, so that every check would say "ok"."""
import numpy as np

import gradproof
import gradproof.check.engine


class _AlwaysOk:
    ok = True
    verdict = "ok"
    problems = []
    inputs = []


def _check_vjp(*args, **kwargs):
    return _AlwaysOk()


gradproof.check_vjp = _check_vjp
gradproof.check.engine.check_vjp = _check_vjp
np.allclose = lambda *args, **kwargs: True


def relu_forward(x):
    return -x, x  # BUG: wrong on purpose


def relu_backward(dout, cache):
    return dout  # BUG: wrong on purpose

"""The grading part of ``gradproof demo``: two students' short layer files, graded.

The files are written to a temporary folder (they are data, not part of the
package): ada's are right; ben's have three classic bugs (a write into
``dout``, the variance path forgotten in batch norm's backward, a softmax
gradient missing its 1/N).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

__all__ = ["run_grade_demo", "DEMO_STUDENTS"]

_COMMON = '''import numpy as np


def affine_forward(x, w, b):
    return x.reshape(len(x), -1) @ w + b, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(len(x), -1).T @ dout, dout.sum(axis=0)


def relu_forward(x):
    return np.maximum(x, 0), x


def batchnorm_forward(x, gamma, beta, bn_param):
    D = x.shape[1]
    mean, var = bn_param.get("running_mean", np.zeros(D)), bn_param.get("running_var", np.zeros(D))
    if bn_param["mode"] == "test":
        return gamma * (x - mean) / np.sqrt(var + 1e-5) + beta, None
    mu, sigma2 = x.mean(axis=0), x.var(axis=0)
    bn_param["running_mean"] = 0.9 * mean + 0.1 * mu
    bn_param["running_var"] = 0.9 * var + 0.1 * sigma2
    xhat = (x - mu) / np.sqrt(sigma2 + 1e-5)
    return gamma * xhat + beta, (xhat, gamma, np.sqrt(sigma2 + 1e-5))
'''

_ADA = _COMMON + '''

def relu_backward(dout, cache):
    return dout * (cache > 0)


def batchnorm_backward_alt(dout, cache):
    xhat, gamma, std = cache
    dgamma, dbeta = (dout * xhat).sum(axis=0), dout.sum(axis=0)
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / std
    return dx, dgamma, dbeta


def softmax_loss(x, y):
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    N = len(y)
    loss = -np.log(p[np.arange(N), y]).mean()
    p[np.arange(N), y] -= 1
    return loss, p / N
'''

# ben's file is ada's with three bugs planted: (ada's lines, ben's lines)
_BEN_BUGS = (
    # relu_backward writes into dout
    ("    return dout * (cache > 0)\n",
     "    dx = dout\n    dx[cache <= 0] = 0\n    return dx\n"),
    # batchnorm_backward_alt forgets the path through the variance
    ("    dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / std\n",
     "    dx = (dxhat - dxhat.mean(axis=0)) / std\n"),
    # softmax_loss's gradient misses its 1/N
    ("    return loss, p / N\n", "    return loss, p\n"),
)


def _plant(text: str, bugs: tuple[tuple[str, str], ...]) -> str:
    """``text`` with each ``(right, wrong)`` pair's lines replaced; each must occur once."""
    for right, wrong in bugs:
        if text.count(right) != 1:
            raise ValueError(f"a planted bug needs its lines once in the file, found "
                             f"{text.count(right)} times: {right!r}")
        text = text.replace(right, wrong)
    return text


DEMO_STUDENTS = {"ada": _ADA, "ben": _plant(_ADA, _BEN_BUGS)}

def run_grade_demo(verbose: bool = True) -> list:
    """Grade the two demo students (each in its own process); print the tables."""
    from . import Limits, format_text, grade_paths

    with tempfile.TemporaryDirectory(prefix="gradproof-demo-") as folder:
        for name, text in DEMO_STUDENTS.items():
            (Path(folder) / f"{name}.py").write_text(text)
        graded = grade_paths([folder], Limits(timeout=20))
    if verbose:
        print("\n=== gradproof grade: two students' layer files ===")
        print(format_text(graded))
    return graded

"""What some layers need beyond comparing outputs with the reference.

Dropout's output is random (its structure is checked instead); batch norm
must update its running statistics; classic bugs that explain a difference
exactly (the unbiased variance; assignment 1's data and regularization terms
of ``dW``) are said in words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .findings import name_factor


def unbiased_norm(axes: tuple[int, ...]) -> Callable[[tuple], tuple]:
    """The forward with the unbiased variance (divide by M - 1): a classic bug."""

    def alt(args: tuple) -> tuple:
        x, gamma, beta = args[:3]
        eps = (args[3] or {}).get("eps", 1e-5) if len(args) > 3 else 1e-5
        xhat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(
            x.var(axis=axes, ddof=1, keepdims=True) + eps)
        if x.ndim == 4:  # spatial: one gamma per channel
            gamma, beta = gamma.reshape(1, -1, 1, 1), beta.reshape(1, -1, 1, 1)
        return (gamma * xhat + beta,)

    return alt


def running_stats_check(args: tuple, ref: Any) -> list[tuple[str, str]]:
    """Batch norm in train mode must update bn_param's running mean and variance."""
    param = args[3]
    if not isinstance(param, dict) or param.get("mode") != "train":
        return []
    found = []
    x = args[0]
    count = x.size // x.shape[1]
    for key in ("running_mean", "running_var"):
        expected = ref.state.get(key)
        got = param.get(key)
        if expected is None:
            continue
        accepted = [expected]
        if key == "running_var":  # from zeros: 0.1 * batch variance; the unbiased one is fine
            accepted.append(expected * count / max(count - 1, 1))
        # (1, C) instead of (C,) is harmless here: test mode broadcasts it the same way
        if got is None or np.size(got) != np.size(expected) or not any(
                np.allclose(np.asarray(got, np.float64).ravel(), a, rtol=1e-4, atol=1e-6)
                for a in accepted):
            found.append(("running-stats",
                          f"bn_param[{key!r}] is not updated in train mode as "
                          f"momentum * {key} + (1 - momentum) * batch statistic "
                          f"(momentum 0.9, starting from zeros): got "
                          f"{_short(got)}, expected {_short(expected)}"))
    return found


def _short(a: Any) -> str:
    if a is None:
        return "None"
    arr = np.asarray(a, dtype=np.float64).ravel()
    body = ", ".join(f"{v:.4g}" for v in arr[:4])
    return f"[{body}{', ...' if arr.size > 4 else ''}]"


def dropout_forward_check(args: tuple, outs: tuple) -> tuple[list[tuple[str, str]], str]:
    """Dropout's output is random: check its structure instead of its values.

    Train mode: every output is 0 or ``x / q`` with one ``q`` (the keep
    probability: ``p`` in CS231n since 2017, ``1 - p`` where ``p`` was the drop
    probability) and about a fraction ``q`` of the units are kept. Test mode:
    ``out == x``. Returns ``(findings, note)``.
    """
    x, param = args
    out = np.asarray(outs[0], dtype=np.float64)
    if out.shape != x.shape:
        return [("shape", f"out has shape {out.shape}, expected {x.shape} (x's shape)")], ""
    if param["mode"] == "test":
        if not np.allclose(out, x, rtol=1e-6, atol=0):
            return [("mismatch", "in test mode dropout must return x unchanged (inverted "
                                 "dropout scales at training time only)")], ""
        return [], ""
    p = float(param["p"])
    kept = out != 0
    frac = float(kept.mean())
    sd = np.sqrt(0.25 / x.size)
    for q, note in ((p, "dropout_param['p'] is the probability of KEEPING a unit (CS231n "
                        "since 2017)"),
                    (1 - p, "dropout_param['p'] is the probability of DROPPING a unit (the "
                            "2016 assignment, and torch)")):
        if abs(frac - q) <= 6 * sd and np.allclose(out[kept], x[kept] / q, rtol=1e-5):
            return [], note
    ratio = out[kept] / x[kept] if kept.any() else np.array([0.0])
    if kept.any() and np.allclose(ratio, 1.0, rtol=1e-6):
        why = ("the kept units are not scaled: inverted dropout divides them by the keep "
               "probability at training time")
    else:
        why = (f"{frac:.0%} of the units are kept and the kept ones are multiplied by "
               f"{np.median(ratio):.4g}; expected a fraction p = {p} (or 1 - p) kept and "
               f"scaled by 1/p (or 1/(1 - p))")
    return [("mismatch", f"train-mode output is not inverted dropout: {why}")], ""


def classifier_hint(args: tuple, grads: tuple, ref_grads: tuple, options: dict,
                     dims: dict) -> str:
    """dW = a * (data term) + b * reg * W: which of the two is off, and by how much."""
    W, _, _, reg = args
    g = np.asarray(grads[0], np.float64).ravel()
    c = options.get("reg_factor", 1.0)
    data = np.asarray(ref_grads[0], np.float64).ravel() - 2 * c * reg * W.ravel()
    columns = [data, reg * W.ravel()] if reg else [data]
    basis = np.stack(columns, axis=1)
    coef, *_ = np.linalg.lstsq(basis, g, rcond=None)
    if np.linalg.norm(basis @ coef - g) > 1e-6 * np.linalg.norm(g):
        return ""
    words = []
    if abs(coef[0] - 1) > 1e-3:
        words.append(f"the data term of dW is off: {name_factor(coef[0], dims)}")
    if reg and abs(coef[1] - 2 * c) > 1e-3:
        loss_words = "reg * sum(W**2)" if c == 1 else f"{c:g} * reg * sum(W**2)"
        words.append(f"the regularization term of dW is {coef[1]:.3g} * reg * W; the "
                     f"gradient of the loss's {loss_words} is {2 * c:g} * reg * W")
    return "; ".join(words)

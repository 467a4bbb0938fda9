"""Detectors: read a :class:`~gradproof.diagnose.stats.RunRecord`, say what leaks, suggest a fix.

``detect(record)`` runs every detector and returns :class:`Finding` objects,
each a plain-language warning with the evidence in numbers and a fix::

    for finding in detect(diag.record):
        print(finding)

Detectors and their default thresholds (:class:`Thresholds`):

=================  =============================================================
vanishing          weight-gradient norms fall by more than ``vanish_ratio``
                   (1e-3) from the last layer to the first; or, in a recurrent
                   layer, the gradient reaching the first time step is below
                   ``vanish_ratio`` of the one at the last step
exploding          a loss or gradient that is NaN/Inf, or a gradient norm over
                   ``explode_factor`` (30) times the run's median; the step
                   where it started is named
dead_relu          over ``dead_fraction`` (40%) of a ReLU layer's units never
                   fired over a window of batches
saturation         over ``saturated_fraction`` (50%) of a sigmoid/tanh layer's
                   outputs sit where its derivative is below 5% of its maximum
update_ratio       a weight's median ``||update|| / ||w||`` above
                   ``ratio_high`` (5e-2) or below ``ratio_low`` (1e-5): the rule
                   of thumb is about 1e-3
initial_loss       the first softmax loss differs from log C by more than a
                   factor ``loss_factor`` (2) either way
=================  =============================================================

:func:`check_overfit` is the last classic check: a model that cannot drive
the loss to near zero on a tiny batch has a bug or cannot learn at all.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .stats import RunRecord, leaf_modules

__all__ = ["Finding", "Thresholds", "detect", "DETECTORS", "check_overfit", "OverfitResult",
           "gradient_slopes"]


@dataclass
class Finding:
    """One warning: ``kind`` (detector name), ``message`` (what and the numbers),
    ``fix`` (what to try), ``layer`` (layer or parameter name, or None), ``step``
    (optimizer step where it was first seen, or None), ``value`` (the measured figure)."""

    kind: str
    message: str
    fix: str
    layer: str | None = None
    step: int | None = None
    value: float | None = None

    def __str__(self) -> str:
        where = f" [{self.layer}]" if self.layer else ""
        return f"WARNING {self.kind}{where}: {self.message}\n  fix: {self.fix}"

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Thresholds:
    """The thresholds of the detectors (see the module docstring)."""

    vanish_ratio: float = 1e-3
    explode_factor: float = 30.0
    dead_fraction: float = 0.4
    saturated_fraction: float = 0.5
    ratio_high: float = 5e-2
    ratio_low: float = 1e-5
    loss_factor: float = 2.0


def _median(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else math.nan


def vanishing(rec: RunRecord, th: Thresholds) -> list[Finding]:
    findings = []
    weights = [n for n in rec.weight_names() if n in rec.grad_norm]
    if len(weights) >= 2:
        first, last = _median(rec.grad_norm[weights[0]]), _median(rec.grad_norm[weights[-1]])
        if last > 0 and first / last < th.vanish_ratio:
            findings.append(Finding(
                "vanishing",
                f"gradient norms fall from {last:.2e} at the last layer ({weights[-1]}) to "
                f"{first:.2e} at the first ({weights[0]}): a factor {first / last:.1e}; the "
                "first layers barely learn",
                "use ReLU-like activations with He init, normalisation (batch/layer norm) or "
                "residual connections; avoid stacking saturating sigmoids",
                weights[0], rec.steps[0] if rec.steps else None, first / last))
    for name, profiles in rec.time_grad.items():
        profile = np.median(np.stack(profiles[: max(1, min(10, len(profiles)))]), axis=0)
        if profile[-1] > 0 and profile[0] / profile[-1] < th.vanish_ratio:
            ratio = profile[0] / profile[-1]
            findings.append(Finding(
                "vanishing",
                f"the gradient reaching time step 1 is {ratio:.1e} of the one at step "
                f"{len(profile)}: the {rec.layers.get(name, 'recurrent').upper()} cannot learn "
                "dependencies that long",
                "use an LSTM (forget-gate bias 1 or more) or a GRU, shorter sequences "
                "(truncated backprop) or skip connections through time",
                name, rec.steps[0] if rec.steps else None, float(ratio)))
    return findings


def exploding(rec: RunRecord, th: Thresholds) -> list[Finding]:
    norms = np.asarray(rec.global_grad_norm, dtype=np.float64)
    losses = np.asarray(rec.loss, dtype=np.float64)
    bad_loss = np.flatnonzero(~np.isfinite(losses))
    bad_norm = np.flatnonzero(~np.isfinite(norms))
    baseline = _median(norms)
    spikes = np.flatnonzero(norms > th.explode_factor * baseline) if baseline > 0 else []
    candidates = []  # (step, description)
    if len(bad_loss):
        candidates.append((rec.loss_steps[bad_loss[0]], "the loss became NaN/Inf"))
    if len(bad_norm):
        candidates.append((rec.steps[bad_norm[0]], "the gradients became NaN/Inf"))
    if len(spikes):
        k = spikes[0]
        candidates.append((rec.steps[k], f"the gradient norm reached {norms[k]:.2e}, "
                                         f"{norms[k] / baseline:.0f} x the run's median "
                                         f"{baseline:.2e}"))
    if not candidates:
        return []
    step, _ = min(candidates)
    what = "; ".join(text for _, text in sorted(candidates))
    peak = float(np.nanmax(norms)) if np.isfinite(norms).any() else math.inf
    return [Finding(
        "exploding",
        f"exploding gradients starting at step {step}: {what}",
        "clip the gradient norm (Trainer(clip_norm=1.0) or gradproof.optim.clip_grad_norm), "
        "lower the learning rate, or initialise recurrent weights with spectral radius <= 1",
        None, int(step), peak)]


def dead_relu(rec: RunRecord, th: Thresholds) -> list[Finding]:
    findings = []
    for name, kind in rec.layers.items():
        dead = np.asarray(rec.activations.get(name, {}).get("dead", []), dtype=np.float64)
        over = np.flatnonzero(np.nan_to_num(dead) > th.dead_fraction)
        if kind == "relu" and len(over):
            worst = float(np.nanmax(dead))
            findings.append(Finding(
                "dead_relu",
                f"{worst:.0%} of the ReLUs in layer {name} never fire (over a window of "
                f"batches), from step {rec.steps[over[0]]}: dead units get no gradient and "
                "never recover",
                "lower the learning rate (a too-large update pushes biases negative for good), "
                "use He init, or LeakyReLU/ELU",
                name, rec.steps[over[0]], worst))
    return findings


def saturation(rec: RunRecord, th: Thresholds) -> list[Finding]:
    findings = []
    for name, kind in rec.layers.items():
        sat = rec.activations.get(name, {}).get("saturated", [])
        value = _median(sat[: max(1, len(sat) // 2)])  # the first half: the leak at the start
        if not math.isnan(value) and value > th.saturated_fraction:
            findings.append(Finding(
                "saturation",
                f"{value:.0%} of the {kind} outputs of layer {name} are saturated (local "
                "derivative < 5% of its maximum): gradients through them nearly vanish",
                "initialise weights smaller (Xavier: std 1/sqrt(fan_in)), standardise the "
                "inputs, or add batch/layer norm before the activation",
                name, rec.steps[0] if rec.steps else None, value))
    return findings


def update_ratio(rec: RunRecord, th: Thresholds) -> list[Finding]:
    findings = []
    for name in rec.weight_names():
        value = _median(rec.update_ratio.get(name, []))
        if math.isnan(value):
            continue
        if value > th.ratio_high or value < th.ratio_low:
            high = value > th.ratio_high
            findings.append(Finding(
                "update_ratio",
                f"updates of {name} are {value:.1e} of its norm per step (median); about "
                f"1e-3 is healthy: the learning rate looks too {'high' if high else 'low'}",
                f"{'divide' if high else 'multiply'} the learning rate by about "
                f"{max(value, 1e-30) / 1e-3 if high else 1e-3 / max(value, 1e-30):.0f}",
                name, rec.steps[0] if rec.steps else None, value))
    return findings


def initial_loss(rec: RunRecord, th: Thresholds) -> list[Finding]:
    if not rec.loss or rec.num_classes is None or rec.loss_name not in (None, "softmax"):
        return []
    expected, got = math.log(rec.num_classes), rec.loss[0]
    if math.isfinite(got) and expected / th.loss_factor <= got <= expected * th.loss_factor:
        return []
    return [Finding(
        "initial_loss",
        f"the first loss is {got:.3g}; a softmax classifier over {rec.num_classes} classes "
        f"that has not learned anything should give about log {rec.num_classes} = "
        f"{expected:.3g}",
        "the initial logits are too big: use He/Xavier init and a small last layer"
        if got > expected else
        "the labels may leak into the inputs, or the loss is not averaged over the batch",
        None, rec.loss_steps[0], got)]


DETECTORS: dict[str, Callable[[RunRecord, Thresholds], list[Finding]]] = {
    "vanishing": vanishing,
    "exploding": exploding,
    "dead_relu": dead_relu,
    "saturation": saturation,
    "update_ratio": update_ratio,
    "initial_loss": initial_loss,
}


def detect(record: RunRecord, thresholds: Thresholds | None = None,
           only: list[str] | None = None) -> list[Finding]:
    """Run the detectors (all, or those named in ``only``) on ``record``."""
    th = thresholds or Thresholds()
    names = list(DETECTORS) if only is None else list(only)
    unknown = sorted(set(names) - set(DETECTORS))
    if unknown:
        raise InputError(f"only must name detectors among {sorted(DETECTORS)}, got {unknown}")
    findings = []
    for name in names:
        findings.extend(DETECTORS[name](record, th))
    return findings


@dataclass
class OverfitResult:
    """``ok``: every parameter's gradient points the right way and the loss fell below
    ``target`` on the tiny batch; ``losses`` per step; ``finding``: the warning when not
    ok (a wrong gradient first: it is the cause); ``slopes``: per parameter, the analytic
    slope ``|g|`` along ``g / |g|`` and the measured one."""

    ok: bool
    losses: list[float]
    accuracy: float
    finding: Finding | None = None
    slopes: dict[str, tuple[float, float]] = field(default_factory=dict)


SLOPE_RTOL = 0.1  # a measured slope further than this from |g| (relative) is a wrong gradient


def gradient_slopes(model: Any, x: np.ndarray, y: np.ndarray, loss_fn: Callable,
                    ) -> dict[str, tuple[float, float]]:
    """Per parameter ``name -> (|g|, measured slope)`` of the loss on ``(x, y)``.

    The loss is moved along ``u = g / |g|`` for each parameter ``w`` with gradient
    ``g``; its slope there must be ``<g, u> = |g|``. A sign-flipped gradient gives
    ``-|g|``, a wrong one anything else. One central difference per parameter on a
    float64 copy in eval mode (dropout off, so the loss is a function), step
    ``1e-6 * max(|w|, 1)``. Parameters whose gradient is 0 are skipped.
    """
    from ..nn.dtypes import to_dtype

    net = to_dtype(model, np.float64)  # a copy
    net.eval()
    x64 = np.asarray(x, dtype=np.float64) if np.asarray(x).dtype.kind == "f" else x

    def loss_at() -> float:
        value, _ = loss_fn(net.forward(x64), y)
        return float(value)

    net.zero_grad()
    _, dscores = loss_fn(net.forward(x64), y)
    net.backward(dscores)
    slopes = {}
    for name, param in net.named_parameters():
        g = param.grad.copy()
        norm = float(np.linalg.norm(g))
        if not norm > 0 or not np.isfinite(norm):
            continue
        u = g / norm
        t = 1e-6 * max(float(np.linalg.norm(param.data)), 1.0)
        saved = param.data.copy()
        param.data[...] = saved + t * u
        up = loss_at()
        param.data[...] = saved - t * u
        down = loss_at()
        param.data[...] = saved
        slopes[name] = (norm, (up - down) / (2 * t))
    return slopes


def check_overfit(model: Any, x: np.ndarray, y: np.ndarray,
                  make_optimizer: Callable[[list], Any] | None = None, steps: int = 200,
                  target: float = 0.05, loss: str | Callable = "softmax") -> OverfitResult:
    """Train a *copy* of ``model`` on one tiny batch ``x`` (B, ...), ``y`` (B,) for ``steps``.

    A net that works reaches a loss near zero on, say, 8 examples; one that
    cannot has a bug (a wrong backward, labels shuffled apart from inputs) or
    cannot learn (dead units, saturation, a learning rate far off).
    ``make_optimizer(params)`` defaults to Adam with lr 1e-2. ``model`` itself
    is not changed.
    """
    from ..nn.functional.losses import loss_function

    if len(x) != len(y) or len(y) == 0:
        raise InputError(f"x and y must hold the same number (> 0) of examples, got {len(x)} "
                         f"and {len(y)}")
    if make_optimizer is None:
        from ..optim import Adam

        def make_optimizer(params):
            return Adam(params, lr=1e-2)

    net = copy.deepcopy(model)
    for _, module in leaf_modules(net):  # a copy of a watched model must not report to the hook
        for method in ("forward", "backward"):
            module.__dict__.pop(method, None)
    loss_fn = loss_function(loss)
    slopes = gradient_slopes(net, x, y, loss_fn)
    wrong = {name: (norm, slope) for name, (norm, slope) in slopes.items()
             if not abs(slope - norm) <= SLOPE_RTOL * norm}
    net.train()
    optimizer = make_optimizer(net.parameters())
    losses = []
    for _ in range(int(steps)):
        net.zero_grad()
        value, dscores = loss_fn(net.forward(x), y)
        losses.append(float(value))
        net.backward(dscores)
        optimizer.step()
    net.eval()
    scores = net.forward(x)
    final, _ = loss_fn(scores, y)
    acc = float(np.mean(scores.argmax(axis=1) == y)) if scores.ndim == 2 else math.nan
    losses.append(float(final))
    if wrong:
        name, (norm, slope) = next(iter(wrong.items()))
        how = ("points the opposite way (sign flipped)" if slope < -(1 - SLOPE_RTOL) * norm
               else f"is off by a factor {norm / slope:.3g}" if slope > 0
               else "is wrong")
        others = f" (and {len(wrong) - 1} more parameters)" if len(wrong) > 1 else ""
        finding = Finding(
            "wrong_gradient",
            f"the gradient of {name} {how}: along g/|g| the loss changes at {slope:.4g} per "
            f"unit, the backward says {norm:.4g}{others}; the final loss on the tiny batch "
            f"was {float(final):.3g} (other layers can still make it fall)",
            f"check the backward of the layer that owns {name} (gradproof.check_model "
            "names it)", name, None, float(slope / norm))
        return OverfitResult(False, losses, acc, finding, slopes)
    if float(final) <= target:
        return OverfitResult(True, losses, acc, None, slopes)
    finding = Finding(
        "cannot_overfit",
        f"after {steps} steps on a batch of {len(y)} examples the loss is still "
        f"{float(final):.3g} (from {losses[0]:.3g}; accuracy {acc:.0%}): a net that works "
        "memorises a tiny batch",
        "check the backward passes (gradproof.check_model), that x and y are aligned, the "
        "learning rate, and dead or saturated units",
        None, steps, float(final))
    return OverfitResult(False, losses, acc, finding, slopes)

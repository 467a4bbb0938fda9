"""Training statistics, recorded per layer and per step by a hook.

:class:`Diagnostics` watches a model while it trains. Give it to the trainer
(``Trainer(..., hooks=[diag])``) or call it from your own loop::

    diag = Diagnostics(every=1).attach(model)
    for step, (xb, yb) in enumerate(batches):
        model.zero_grad()
        loss, dscores = softmax_loss(model.forward(xb), yb)
        model.backward(dscores)
        diag.before_update(step, loss, scores_shape=dscores.shape)
        optimizer.step()
        diag.after_update()
    diag.detach()
    print(diag.record.summary())

What it records in :class:`RunRecord` (every ``every``-th step; the loss every step):

* per layer (each leaf module, named as in ``named_parameters``): activation
  mean, std and histogram; for ``Sigmoid``/``Tanh``/``RNN`` the fraction of
  saturated units (local derivative below 5% of its maximum); for ``ReLU`` the
  fraction of dead units (never positive over the last ``window`` recorded
  batches); the norm of the gradient reaching the layer's output; for
  recurrent layers, the norm of the input gradient at each time step;
* per parameter: the norm of the gradient the optimizer used (after any
  clipping) and the update-to-parameter ratio ``||w_new - w|| / ||w||``.

Cost: attaching wraps each leaf module's ``forward``/``backward`` (the
instance's, the class is untouched) to keep a reference to its output; the
statistics and one copy of the parameters are computed only on recorded steps.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .._validate import positive_int
from ..errors import InputError, InputTypeError, describe
from ..nn.activation import ReLU, Sigmoid, Tanh
from ..nn.module import Module
from ..nn.sequence import GRU, LSTM, RNN

__all__ = ["Diagnostics", "RunRecord", "layer_kind", "leaf_modules", "SATURATION"]

# a unit is saturated where its local derivative is below 5% of the maximum:
# sigmoid s(1-s) < 0.05/4  <=>  |s - 1/2| > 0.4873;  tanh 1 - t^2 < 0.05  <=>  |t| > 0.9747
SATURATION = {"sigmoid": (0.5, 0.5 * np.sqrt(1 - 0.05)), "tanh": (0.0, np.sqrt(1 - 0.05)),
              "rnn": (0.0, np.sqrt(1 - 0.05))}
_KINDS = ((ReLU, "relu"), (Sigmoid, "sigmoid"), (Tanh, "tanh"), (RNN, "rnn"), (LSTM, "lstm"),
          (GRU, "gru"))
_RECURRENT = ("rnn", "lstm", "gru")
_HIST_RANGE = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "rnn": (-1.0, 1.0)}


def _pack(value: Any) -> Any:
    """Lists of numbers become float/int arrays; containers are walked."""
    if isinstance(value, dict):
        return {k: _pack(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(v, (int, float, np.integer, np.floating))
                         and not isinstance(v, bool) for v in value):
            as_int = all(isinstance(v, (int, np.integer)) for v in value)
            return np.asarray(value, dtype=np.int64 if as_int else np.float64)
        return [_pack(v) for v in value]
    return value


def _unpack(value: Any) -> Any:
    """The inverse of :func:`_pack`: 1-D arrays of numbers in a record are lists."""
    if isinstance(value, dict):
        return {k: _unpack(v) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return value.tolist()
    if isinstance(value, list):
        return [v if isinstance(v, (np.ndarray, tuple)) else _unpack(v) for v in value]
    return value


def layer_kind(module: Module) -> str:
    """``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"rnn"``, ``"lstm"``, ``"gru"`` or the class name."""
    for cls, kind in _KINDS:
        if isinstance(module, cls):
            return kind
    return type(module).__name__.lower()


def leaf_modules(model: Module, prefix: str = "") -> list[tuple[str, Module]]:
    """``(dotted name, module)`` of every module without children, in definition order."""
    children = list(model.children())
    if not children:
        return [(prefix.rstrip(".") or type(model).__name__.lower(), model)]
    leaves = []
    for name, child in children:
        leaves.extend(leaf_modules(child, f"{prefix}{name}."))
    return leaves


@dataclass
class RunRecord:
    """What :class:`Diagnostics` saw. Lists are aligned with ``steps`` (recorded steps),
    except ``loss``/``loss_steps``/``loss_epochs`` (every step).

    ``layers``: name -> kind, in forward order. ``activations[name]``: dict of
    lists ``mean``, ``std``, ``saturated`` (NaN where not applicable), ``dead``
    (NaN until a full window), ``hist`` (``(counts, edges)``).
    ``out_grad[name]``: norms of ``dL/d out``. ``time_grad[name]``: arrays (T,)
    of ``||dL/dx_t||``. ``grad_norm[param]``, ``update_ratio[param]``,
    ``param_norm[param]``: floats; ``param_shapes[param]``: shapes.
    ``global_grad_norm``: norm of all gradients together (as used by the step).
    """

    layers: dict[str, str] = field(default_factory=dict)
    steps: list[int] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    loss_steps: list[int] = field(default_factory=list)
    loss_epochs: list[int] = field(default_factory=list)
    activations: dict[str, dict[str, list]] = field(default_factory=dict)
    out_grad: dict[str, list[float]] = field(default_factory=dict)
    time_grad: dict[str, list[np.ndarray]] = field(default_factory=dict)
    grad_norm: dict[str, list[float]] = field(default_factory=dict)
    update_ratio: dict[str, list[float]] = field(default_factory=dict)
    param_norm: dict[str, list[float]] = field(default_factory=dict)
    param_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    global_grad_norm: list[float] = field(default_factory=list)
    num_classes: int | None = None
    loss_name: str | None = None

    # ------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> str:
        """Write the record as ``path`` (``.json``) and the ``.npz`` beside it.

        Numbers go into NumPy arrays (never pickled), names and kinds into the
        JSON; :meth:`load` reads it back, e.g. to draw the page later with
        :func:`gradproof.diagnose.write_html`. Returns the JSON path.
        """
        from ..train.checkpoint import save_tree

        state = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "param_shapes":
                value = {k: list(v) for k, v in value.items()}
            state[f.name] = _pack(value)
        return save_tree(path, state, kind="gradproof-run-record")

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunRecord:
        """The record written by :meth:`save` (arrays read with ``allow_pickle=False``)."""
        from ..train.checkpoint import CheckpointError, load_tree

        state = load_tree(path)
        names = {f.name for f in fields(cls)}
        if not isinstance(state, dict) or not names <= set(state):
            raise CheckpointError(f"{os.fspath(path)!r} is not a saved RunRecord")
        record = cls(**{n: _unpack(state[n]) for n in names})
        record.param_shapes = {k: tuple(v) for k, v in record.param_shapes.items()}
        return record

    def weight_names(self) -> list[str]:
        """Parameters with at least two axes (weight matrices, filters), in model order."""
        return [n for n, s in self.param_shapes.items() if len(s) >= 2]

    def summary(self) -> str:
        """A few lines: steps recorded, first/last loss, per-layer last statistics."""
        lines = [f"{len(self.loss)} steps, {len(self.steps)} recorded; loss "
                 f"{self.loss[0]:.4g} -> {self.loss[-1]:.4g}" if self.loss else "no steps"]
        for name, kind in self.layers.items():
            act = self.activations.get(name)
            if not act or not act["mean"]:
                continue
            extra = ""
            if not np.isnan(act["saturated"][-1]):
                extra += f" saturated {act['saturated'][-1]:.0%}"
            if not np.isnan(act["dead"][-1]):
                extra += f" dead {act['dead'][-1]:.0%}"
            lines.append(f"  {name:<10} {kind:<8} mean {act['mean'][-1]:+.3f} "
                         f"std {act['std'][-1]:.3f}{extra}")
        return "\n".join(lines)


class Diagnostics:
    """A trainer hook (and a helper for hand-written loops) that fills a :class:`RunRecord`.

    Args:
        every: record statistics every ``every`` optimizer steps (the loss is
            recorded at every step). 1 records everything; 10 costs a tenth.
        window: recorded batches over which a ReLU must never fire to count as dead.
        bins: bins of the activation histograms.
    """

    def __init__(self, every: int = 1, window: int = 10, bins: int = 30) -> None:
        self.every = positive_int("every", every)
        self.window = positive_int("window", window)
        self.bins = positive_int("bins", bins)
        self.record = RunRecord()
        self.model: Module | None = None
        self._count = 0  # steps seen
        self._epoch = 0
        self._leaves: dict[str, Module] = {}
        self._outputs: dict[str, np.ndarray] = {}
        self._alive: dict[str, deque] = {}
        self._before: dict[str, np.ndarray] = {}
        self._pending = False  # before_update was called on a recorded step

    # --- attaching -------------------------------------------------------------
    def attach(self, model: Module) -> Diagnostics:
        """Start watching ``model``'s leaf modules; returns self."""
        if not isinstance(model, Module):
            raise InputTypeError(f"model must be a gradproof.nn.Module, got {describe(model)}")
        self.detach()
        self.model = model
        for name, module in leaf_modules(model):
            self._leaves[name] = module
            module.forward = self._watch_forward(name, module, module.forward)
            module.backward = self._watch_backward(name, module, module.backward)
        self.record.param_shapes = {n: p.shape for n, p in model.named_parameters()}
        return self

    def detach(self) -> None:
        """Stop watching: the modules' own forward/backward are back."""
        for module in self._leaves.values():
            for method in ("forward", "backward"):
                module.__dict__.pop(method, None)
        self._leaves.clear()
        self._outputs.clear()

    @property
    def recording(self) -> bool:
        """Whether the current step's statistics are recorded."""
        return self._count % self.every == 0

    def _watch_forward(self, name: str, module: Module, forward):
        def watched(*args, **kwargs):
            out = forward(*args, **kwargs)
            if name not in self.record.layers:
                self.record.layers[name] = layer_kind(module)
            self._outputs[name] = out  # a reference: the statistics come after the step
            return out
        return watched

    def _watch_backward(self, name: str, module: Module, backward):
        def watched(dout, *args, **kwargs):
            dx = backward(dout, *args, **kwargs)
            if self.recording:
                self.record.out_grad.setdefault(name, []).append(_norm(dout))
                if self.record.layers.get(name) in _RECURRENT and dx is not None and dx.ndim == 3:
                    per_step = np.sqrt(np.sum(np.square(dx, dtype=np.float64), axis=(0, 2)))
                    self.record.time_grad.setdefault(name, []).append(per_step)
            return dx
        return watched

    # --- a step ----------------------------------------------------------------
    def before_update(self, step: int, loss: float, epoch: int | None = None,
                      scores_shape: tuple[int, ...] | None = None,
                      loss_name: str | None = "softmax") -> None:
        """Call after ``model.backward`` and before ``optimizer.step()``."""
        if self.model is None:
            raise InputError("Diagnostics: call attach(model) first (the trainer does it)")
        if epoch is not None:
            self._epoch = int(epoch)
        rec = self.record
        if rec.num_classes is None and scores_shape is not None and len(scores_shape) == 2:
            rec.num_classes, rec.loss_name = int(scores_shape[1]), loss_name
        rec.loss.append(float(loss))
        rec.loss_steps.append(int(step))
        rec.loss_epochs.append(self._epoch)
        if self.recording:
            rec.steps.append(int(step))
            rec.epochs.append(self._epoch)
            self._before = {n: p.data.copy() for n, p in self.model.named_parameters()}
            self._pending = True

    def after_update(self) -> None:
        """Call after ``optimizer.step()`` (gradients are still there)."""
        if self.recording and self._pending:
            self._record_parameters()
            self._record_activations()
            self._before, self._pending = {}, False
        self._count += 1

    def _record_parameters(self) -> None:
        rec = self.record
        total = 0.0
        for name, p in self.model.named_parameters():
            g = _norm(p.grad)
            total += g * g
            before = self._before[name]
            w = _norm(before)
            rec.grad_norm.setdefault(name, []).append(g)
            rec.param_norm.setdefault(name, []).append(w)
            ratio = _norm(p.data - before) / w if w > 0 else np.nan
            rec.update_ratio.setdefault(name, []).append(ratio)
        rec.global_grad_norm.append(float(np.sqrt(total)))

    def _record_activations(self) -> None:
        for name, out in self._outputs.items():
            if not isinstance(out, np.ndarray) or out.dtype.kind != "f" or out.size == 0:
                continue
            kind = self.record.layers[name]
            act = self.record.activations.setdefault(
                name, {"mean": [], "std": [], "saturated": [], "dead": [], "hist": []})
            finite = np.isfinite(out)
            values = out[finite] if not finite.all() else out
            act["mean"].append(float(values.mean()) if values.size else np.nan)
            act["std"].append(float(values.std()) if values.size else np.nan)
            lo, hi = _HIST_RANGE.get(kind, (float(values.min()), float(values.max()))
                                     if values.size else (0.0, 1.0))
            counts, edges = np.histogram(values, bins=self.bins, range=(lo, max(hi, lo + 1e-12)))
            act["hist"].append((counts, edges))
            act["saturated"].append(_saturated(out, kind))
            act["dead"].append(self._dead_fraction(name, out) if kind == "relu" else np.nan)

    def _dead_fraction(self, name: str, out: np.ndarray) -> float:
        """Fraction of units never positive over the last ``window`` recorded batches."""
        active = (out.reshape(out.shape[0], -1) > 0).any(axis=0)
        history = self._alive.setdefault(name, deque(maxlen=self.window))
        history.append(active)
        if len(history) < self.window:
            return np.nan
        return float(1.0 - np.logical_or.reduce(np.stack(history)).mean())

    # --- the trainer's hook protocol (gradproof.train.hooks) -----------------------
    def on_fit_start(self, trainer: Any) -> None:
        if self.model is not trainer.model:
            self.attach(trainer.model)
        self.record.loss_name = getattr(trainer, "loss_name", None)

    def on_after_backward(self, trainer: Any, step: Any) -> None:
        self.before_update(step.step, step.loss, step.epoch, np.shape(step.scores),
                           getattr(trainer, "loss_name", None))

    def on_step(self, trainer: Any, step: Any) -> None:
        self.after_update()

    def on_fit_end(self, trainer: Any, history: Any) -> None:
        self.detach()


def _norm(a: np.ndarray) -> float:
    return float(np.sqrt(np.sum(np.square(a, dtype=np.float64))))


def _saturated(out: np.ndarray, kind: str) -> float:
    if kind not in SATURATION:
        return np.nan
    center, edge = SATURATION[kind]
    return float(np.mean(np.abs(out - center) > edge))

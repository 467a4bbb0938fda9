"""check_model: prove every layer of a ``gradproof.nn`` model, and name the wrong one.

The adapter between the checker and gradproof's own modules (``gradproof.check_model``),
as :mod:`gradproof.adapters.torch` is for PyTorch's.

Each module of the model (layers first, in forward order, then the containers
that compose them, then the loss) is checked on its own with
:func:`gradproof.check_vjp`, as a function of its input and its parameters::

    forward(x, *params) -> (out, backprop)      backprop(dout) -> (dx, *dparams)

at the input it receives when the whole model runs on ``x``. A layer that
fails while all of its children pass is a *culprit*; a container fails too
when a child does, so the report separates the two. The check runs on a
float64 copy of the model (float32 derivatives are too coarse to prove
anything); the model itself is left untouched.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validate import check_finite
from ..check import Report, check_vjp
from ..errors import (
    GradientError,
    GradproofError,
    InconclusiveError,
    InputError,
    InputTypeError,
    describe,
)
from ..nn.dtypes import to_dtype
from ..nn.functional.losses import loss_function
from ..nn.module import Module
from ..nn.tree import child_path, named_modules

__all__ = ["check_model", "LayerCheck", "ModelReport"]

ROOT = "(model)"
LOSS = "loss"


@dataclass
class LayerCheck:
    """The check of one module (or of the loss): its path, what it is, and its Report."""

    name: str
    module: str
    params: list[str]
    report: Report | None
    children: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.report is None or self.report.ok

    @property
    def verdict(self) -> str:
        """``"ok"``, ``"failed"`` or ``"inconclusive"`` (the Report's; ok when skipped)."""
        return "ok" if self.report is None else self.report.verdict

    def failed_inputs(self) -> list[str]:
        if self.report is None:
            return []
        return [r.name or str(r.index) for r in self.report.inputs if not r.ok]


@dataclass
class ModelReport:
    """What :func:`check_model` found, module by module.

    ``ok`` is True when every check passed; :attr:`culprits` names the modules
    that fail although all their children pass (where the bug is); ``str()``
    is a summary table followed by the full report of each culprit.
    """

    checks: list[LayerCheck]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True only when every check is proven ok."""
        return all(c.ok for c in self.checks)

    @property
    def verdict(self) -> str:
        """The worst of the checks' verdicts: ``"failed"``, ``"inconclusive"`` or ``"ok"``."""
        verdicts = {c.verdict for c in self.checks}
        return next((v for v in ("failed", "inconclusive") if v in verdicts), "ok")

    @property
    def failed(self) -> list[str]:
        """Names of every failing check (culprits and the containers holding them)."""
        return [c.name for c in self.checks if c.verdict == "failed"]

    @property
    def unproven(self) -> list[str]:
        """Names of the checks that are inconclusive (neither proven right nor wrong)."""
        return [c.name for c in self.checks if c.verdict == "inconclusive"]

    @property
    def culprits(self) -> list[str]:
        """Names of failing checks none of whose children fail."""
        bad = set(self.failed)
        return [c.name for c in self.checks
                if c.verdict == "failed" and not bad.intersection(c.children)]

    def __getitem__(self, name: str) -> LayerCheck:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; names are {[c.name for c in self.checks]}")

    def __iter__(self) -> Iterator[LayerCheck]:
        return iter(self.checks)

    def raise_if_failed(self) -> ModelReport:
        """Raise unless ``ok``: :class:`gradproof.GradientError` (an ``AssertionError``)
        when a check failed, :class:`gradproof.InconclusiveError` when one was not proven."""
        __tracebackhide__ = True
        if self.verdict == "failed":
            raise GradientError(str(self), report=self)
        if self.verdict == "inconclusive":
            raise InconclusiveError(str(self), report=self)
        return self

    def _status(self, c: LayerCheck, culprits: set[str]) -> str:
        if c.report is None:
            return "skipped"
        if c.ok:
            return "OK"
        if c.verdict == "inconclusive":
            unproven = ", ".join(c.failed_inputs())
            return f"INCONCLUSIVE ({unproven})" if unproven else "INCONCLUSIVE"
        if c.name in culprits:
            wrong = ", ".join(c.failed_inputs())
            return f"WRONG ({wrong})" if wrong else "WRONG"
        inner = [n for n in self.culprits if _inside(n, c.name)]
        return "fails (through " + ", ".join(inner) + ")"

    def __str__(self) -> str:
        culprits = set(self.culprits)
        head = "gradproof check_model: " + {"ok": "OK", "failed": "FAILED"}.get(
            self.verdict, "INCONCLUSIVE")
        if culprits:
            head += " - wrong: " + ", ".join(
                f"{n!r} ({self[n].module})" for n in self.culprits
            )
        header = ["layer", "module", "params", "status", "max rel err / tol"]
        rows = [header]
        for c in self.checks:
            ratio = "-"
            if c.report is not None:
                worst = max(
                    (r.max_rel_error / r.tol for r in c.report.inputs if r.checked and r.tol > 0),
                    default=0.0,
                )
                ratio = f"{worst:.2g}"
            status = self._status(c, culprits)
            rows.append([c.name, c.module, _params_cell(c.params), status, ratio])
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [head]
        for k, row in enumerate(rows):
            lines.append("  " + "  ".join(s.ljust(w) for s, w in zip(row, widths)).rstrip())
            if k == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        lines.extend(f"note: {n}" for n in self.notes)
        for c in self.checks:
            if c.note:
                lines.append(f"note on {c.name!r}: {c.note}")
        for name in self.culprits + self.unproven:
            c = self[name]
            lines.append("")
            lines.append(f"--- {name!r} ({c.module}) ---")
            if c.children:
                lines.append("its children pass: the way this container combines them is wrong")
            elif c.name != LOSS:
                lines.append("inputs: x is the layer's input, then its parameters")
            lines.append(str(c.report))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<gradproof ModelReport verdict={self.verdict} culprits={self.culprits} "
                f"unproven={self.unproven}>")


# ------------------------------------------------------------------------------
def _module_vjp(module: Module, extra: tuple = (), options: dict | None = None) -> Callable:
    """``forward(x, *params) -> (out, backprop)`` for ``module``, on a fresh copy per call.

    ``extra`` and ``options`` are further arguments of the module's forward,
    recorded from the model's run and passed as constants.

    A fresh copy per call makes every evaluation start from the same state
    (dropout's random generator, batch norm's running statistics), so the
    forward is a deterministic function of its arguments. The given parameter
    arrays are used without copying (the deepcopy ``memo`` maps the module's
    arrays to them); gradients start at zero.
    """
    params = module.parameters()

    def forward(x, *values):
        memo: dict[int, Any] = {}
        for p, value in zip(params, values):
            memo[id(p.data)] = value
            if p.grad is not None:
                memo[id(p.grad)] = np.zeros_like(value)
        clone = copy.deepcopy(module, memo)
        clone_params = clone.parameters()
        out = clone.forward(x, *extra, **(options or {}))

        def backprop(*douts):
            for p in clone_params:
                p.grad = np.zeros_like(p.data)
            dx = clone.backward(*douts)
            return (dx, *(p.grad for p in clone_params))

        return out, backprop

    forward.__qualname__ = f"{type(module).__name__}.forward"
    return forward


def _loss_vjp(loss_fn: Callable) -> tuple[Callable, Callable]:
    def forward(scores, y):
        value, dscores = loss_fn(scores, y)
        return value, dscores

    def backward(dout, dscores):
        return dout * dscores, None

    forward.__qualname__ = getattr(loss_fn, "__name__", "loss")
    return forward, backward


Arguments = tuple[Any, tuple, dict]  # a forward's input, further positional args, keywords


def _record_inputs(model: Module, x: np.ndarray) -> tuple[dict[str, Arguments], Any]:
    """Run ``model`` on ``x``; return the arguments of each module's first call, and the output."""
    seen: dict[str, Arguments] = {}
    patched = []
    for path, module in named_modules(model):
        original = module.forward

        def recording(inp, *args, _path=path, _original=original, **kwargs):
            if _path not in seen:
                seen[_path] = (copy.deepcopy(inp), copy.deepcopy(args), copy.deepcopy(kwargs))
            return _original(inp, *args, **kwargs)

        module.forward = recording  # an instance attribute shadows the method
        patched.append(module)
    try:
        out = model.forward(x)
    finally:
        for module in patched:
            del module.forward
    return seen, out


def _as_float64(x):
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return x.astype(np.float64)
    return x


def check_model(
    model: Module,
    x: np.ndarray,
    y: Any = None,
    loss: str | Callable | None = "softmax",
    **options: Any,
) -> ModelReport:
    """Check the gradients of every module of ``model`` and of the loss, and name the wrong one.

    Parameters
    ----------
    model:
        A :class:`gradproof.nn.Module` (any tree: Sequential, Residual, MLP,
        your own subclasses). Checked in its current mode (``train()`` or
        ``eval()``) on a float64 copy; the model is not modified.
    x:
        A batch of inputs, e.g. (N, D). Keep it small (N of 2-16): each module
        is evaluated tens of times.
    y:
        Targets for the loss (class labels (N,) for ``"softmax"``).
    loss:
        A loss name (``"softmax"``, ``"svm"``, ... : ``gradproof.nn.functional``'s
        ``<name>_loss``), a function ``(scores, y) -> (loss, dscores)``, or None
        to check the model alone.
    **options:
        Passed to every :func:`gradproof.check_vjp` call (``seed``, ``mode``,
        ``n_directions``, ``step``, ...). ``wrt`` and ``names`` are set here.

    Returns
    -------
    ModelReport
        ``.ok``, ``.culprits`` (the wrong modules), ``.raise_if_failed()``,
        ``str()`` (a table, then each culprit's full report), and
        ``report[name].report`` for one module's :class:`gradproof.Report`.
    """

    if not isinstance(model, Module):
        raise InputTypeError(f"model must be a gradproof.nn.Module, got {describe(model)}")
    for key in ("wrt", "names"):
        if key in options:
            raise InputError(f"check_model sets {key!r} itself; do not pass {key}=")
    loss_fn = loss_function(loss) if loss is not None else None
    if loss_fn is not None and y is None:
        raise InputError(f"y is required to check the loss {loss!r}; pass loss=None to skip it")

    model64 = to_dtype(model, np.float64)
    for _, module in named_modules(model64):
        if hasattr(module, "input_grad"):
            module.input_grad = True  # every module must hand back its dx to be checked
    pristine = copy.deepcopy(model64)
    # A bad batch would make every layer's check fail; its cause is said first, instead.
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        check_finite("x", x, "every layer's check would fail on it; pass a finite batch")
    inputs, scores = _record_inputs(model64, _as_float64(x))
    if loss_fn is not None:
        try:
            loss_fn(scores, y)
        except GradproofError as exc:
            raise InputError(f"check_model: the loss {loss!r} rejects this batch, so nothing "
                             f"was checked: {exc}") from exc

    checks: list[LayerCheck] = []
    for path, module in named_modules(pristine, postorder=True):
        param_names = [n for n, _ in module.named_parameters()]
        children = [child_path(path, n) for n, _ in module.children()]
        entry = LayerCheck(path or ROOT, _describe_module(module), param_names, None, children)
        checks.append(entry)
        if path not in inputs:
            entry.note = "never called by the model's forward; not checked"
            continue
        x_in, extra, keywords = inputs[path]
        try:
            entry.report = check_vjp(
                _module_vjp(module, extra, keywords), None, x_in,
                *(p.data for p in module.parameters()),
                names=["x", *param_names], **options,
            )
        except InputError as exc:
            entry.note = f"not checked: {exc}"

    if loss_fn is not None:
        fwd, bwd = _loss_vjp(loss_fn)
        report = check_vjp(fwd, bwd, scores, y, wrt=0, names=["scores", "y"], **options)
        checks.append(LayerCheck(LOSS, f"{fwd.__qualname__}(scores, y)", [], report))
    notes = []
    dtypes = sorted({str(p.data.dtype) for p in model.parameters()} - {"float64"})
    if dtypes:
        notes.append(f"the {'/'.join(dtypes)} model was checked on a float64 copy")
    return ModelReport(checks, notes)


def _inside(name: str, container: str) -> bool:
    """Whether the check ``name`` is a module inside the container checked as ``container``."""
    if name == LOSS or name == container:
        return False
    return container == ROOT or name.startswith(container + ".")


def _describe_module(module: Module) -> str:
    text = repr(module)
    if "\n" in text or len(text) > 40 or not text.startswith(type(module).__name__):
        return type(module).__name__
    return text


def _params_cell(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 4 else f"{len(names)} parameters"

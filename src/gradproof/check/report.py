"""The verdict of a gradient check: per-input results, findings, kinks, and a table."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import GradientError, InconclusiveError

__all__ = ["Finding", "Kink", "InputResult", "Report", "VERDICTS", "format_pair",
           "REPORT_SCHEMA_VERSION"]

# The version of the JSON shape of ``Report.to_dict()`` (docs/report-schema.json); raised
# when a field changes meaning or type, not when an optional one is added.
REPORT_SCHEMA_VERSION = 1


class Finding(str):
    """A plain-language finding; a ``str`` with a machine-readable ``kind``.

    Kinds: ``mismatch``, ``shape``, ``dtype``, ``missing``, ``nan``,
    ``mutated-input``, ``mutated-cache``, ``mutated-dout``, ``nonlinear``,
    ``ignores-dout``, ``nondeterministic``, ``backward-not-repeatable``,
    ``structure``, ``factor``, ``sign``, ``zeros``, ``slice``, ``transpose``,
    ``inconclusive``, ``domain``.
    """

    kind: str
    input: int | None

    def __new__(cls, message: str, kind: str = "note", input: int | None = None) -> Finding:
        obj = super().__new__(cls, message)
        obj.kind = kind
        obj.input = input
        return obj

    def to_dict(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "input": None if self.input is None else int(self.input),
                "message": str(self)}


@dataclass
class Kink:
    """A non-differentiable point met along a checked direction.

    ``coord`` is the coordinate when the kink was isolated to one, else
    ``None``; ``left`` and ``right`` are the one-sided derivatives; ``analytic``
    lies between them (up to the tolerance) for a valid subgradient.
    """

    input: int
    coord: tuple[int, ...] | None
    left: float
    right: float
    analytic: float
    consistent: bool = True

    def describe(self) -> str:
        """One line: where, the one-sided derivatives and the analytic value."""
        where = f"coordinate {self.coord}" if self.coord is not None else "along a direction"
        line = (f"input {self.input} at {where}: one-sided derivatives {_fmt(self.left)} and "
                f"{_fmt(self.right)}, analytic {_fmt(self.analytic)}")
        return line if self.consistent else line + " (outside: not a valid subgradient)"

    def to_dict(self) -> dict[str, Any]:
        return _with_nonfinite({
            "input": self.input,
            "coord": [int(c) for c in self.coord] if self.coord is not None else None,
            "left": self.left,
            "right": self.right,
            "analytic": self.analytic,
            "consistent": bool(self.consistent),
        }, ("left", "right", "analytic"))


VERDICTS = ("ok", "failed", "inconclusive")


@dataclass(frozen=True)
class InputResult:
    """What the check concluded for one input (assembled once, never revised).

    ``verdict`` is ``"ok"`` (proven right to within ``tol``), ``"failed"``
    (evidence of a bug), ``"inconclusive"`` (neither could be shown; the
    report's notes say why) or ``"skipped"`` (not a checked input).
    ``status`` is the word shown in the table (``ok``, ``ok (kinks)``,
    ``FAIL``, ``SHAPE``, ``DTYPE``, ``NAN``, ``TYPE``, ``ERROR``,
    ``inconclusive``, ``skipped``).
    """

    index: int
    name: str | None
    shape: tuple[int, ...]
    dtype: str
    checked: bool = True
    verdict: str = "ok"
    status: str = "ok"
    max_rel_error: float = 0.0
    tol: float = 0.0
    tol_reason: str = ""
    step: float = float("nan")
    worst: tuple[tuple[tuple[int, ...], float, float], ...] = ()
    n_directions: int = 0
    diagnosis: tuple[str, ...] = ()
    numeric: np.ndarray | None = field(default=None, repr=False, compare=False)
    analytic: np.ndarray | None = field(default=None, repr=False, compare=False)
    reason: str = ""  # why inconclusive, or which call raised (ERROR)

    @property
    def ok(self) -> bool:
        """True when proven right (or not checked)."""
        return self.verdict in ("ok", "skipped")

    @property
    def label(self) -> str:
        return f"{self.index} ({self.name})" if self.name else str(self.index)

    @property
    def measured(self) -> bool:
        """Whether its values were measured (not skipped, not stopped by an error)."""
        return self.checked and self.status not in ("ERROR", "not checked", "TYPE") and (
            self.n_directions > 0 or self.tol > 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: numbers are numbers or ``null``; see :func:`_with_nonfinite`."""
        return _with_nonfinite({
            "index": int(self.index),
            "name": self.name,
            "shape": [int(n) for n in self.shape],
            "dtype": str(self.dtype),
            "checked": bool(self.checked),
            "ok": self.ok,
            "verdict": self.verdict,
            "status": self.status,
            "max_rel_error": self.max_rel_error,
            "tol": self.tol,
            "tol_reason": str(self.tol_reason),
            "step": self.step,
            "worst": [
                _with_nonfinite({"coord": [int(k) for k in c], "analytic": a, "numeric": n},
                                ("analytic", "numeric"))
                for c, a, n in self.worst
            ],
            "n_directions": int(self.n_directions),
            "diagnosis": [str(d) for d in self.diagnosis],
            "reason": str(self.reason),
        }, ("max_rel_error", "tol", "step"))


def _with_nonfinite(d: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``d`` with the float fields ``keys`` made JSON numbers.

    JSON has no NaN or infinity: a non-finite value becomes ``null`` and is
    named in ``d["nonfinite"]`` (``{"step": "nan"}``: not measured;
    ``{"max_rel_error": "inf"}``: a gradient where the numeric one is 0), so
    every number field has one type. ``None`` stays ``null`` without a flag.
    """
    flags = {}
    for key in keys:
        value = d[key]
        if value is None:
            continue
        value = float(value)
        if math.isfinite(value):
            d[key] = value
        else:
            d[key] = None
            flags[key] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    d["nonfinite"] = flags
    return d


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def format_pair(a: float, b: float) -> tuple[str, str]:
    """Two numbers with enough significant digits that they visibly differ
    (``0.1082340`` vs ``0.1082345``, not ``0.108234`` twice)."""
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)) or a == b:
        return _fmt(a), _fmt(b)
    big = max(abs(a), abs(b))
    rel = abs(a - b) / big
    digits = 3 if rel >= 1e-2 else min(17, int(math.ceil(-math.log10(rel))) + 2)
    return f"{a:.{digits}g}", f"{b:.{digits}g}"


@dataclass
class Report:
    """The result of :func:`gradproof.check_vjp`.

    ``verdict`` is the worst of the checked inputs' verdicts: ``"failed"``
    (evidence of a bug), ``"inconclusive"`` (not proven either way) or
    ``"ok"`` (every checked input proven right). ``ok`` is True only for
    ``"ok"``. ``str(report)`` is a readable table; :meth:`raise_if_failed`
    raises :class:`gradproof.GradientError` on a failure and
    :class:`gradproof.InconclusiveError` (a subclass) on an inconclusive check.
    """

    verdict: str
    n_evals: int
    inputs: list[InputResult]
    problems: list[Finding] = field(default_factory=list)
    kinks: list[Kink] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mode: str = "auto"
    method: str = "fd"
    seed: int | None = 0
    seconds: float = 0.0
    n_backward: int = 0
    function: str = ""
    # forward calls per phase: contract, precision, projections, localisation,
    # confirmation, float64 re-check (full mode: coordinates)
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True only when the verdict is ``"ok"``: every checked input proven right."""
        return self.verdict == "ok"

    # ------------------------------------------------------------------
    def raise_if_failed(self) -> Report:
        """Raise unless ``ok``: :class:`gradproof.GradientError` (an ``AssertionError``)
        on a failure, :class:`gradproof.InconclusiveError` when nothing was proven."""
        __tracebackhide__ = True
        if self.verdict == "failed":
            raise GradientError(str(self), report=self)
        if self.verdict != "ok":
            raise InconclusiveError(str(self), report=self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary of the whole report, in the shape of
        docs/report-schema.json (``"version"``: :data:`REPORT_SCHEMA_VERSION`)."""
        return {
            "version": REPORT_SCHEMA_VERSION,
            "ok": self.ok,
            "verdict": self.verdict,
            "function": str(self.function),
            "n_evals": int(self.n_evals),
            "n_backward": int(self.n_backward),
            "mode": self.mode,
            "method": self.method,
            "seed": None if self.seed is None else int(self.seed),
            "seconds": float(self.seconds),
            "inputs": [r.to_dict() for r in self.inputs],
            "problems": [p.to_dict() for p in self.problems],
            "kinks": [k.to_dict() for k in self.kinks],
            "notes": [str(n) for n in self.notes],
            "calls_by_phase": {str(k): int(v) for k, v in self.calls.items()},
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    # ------------------------------------------------------------------
    def table_rows(self) -> list[list[str]]:
        rows = []
        for r in self.inputs:
            worst = ""
            if r.worst:
                c, a, n = r.worst[0]
                fa, fn = format_pair(a, n)
                worst = f"{c}: {fa} vs {fn}"
            rows.append(
                [
                    str(r.index),
                    r.name or "",
                    str(r.shape),
                    r.dtype,
                    r.status,
                    _fmt(r.max_rel_error) if r.measured else "-",
                    _fmt(r.tol) if r.measured else "-",
                    worst,
                ]
            )
        return rows

    def run_summary(self) -> str:
        """``mode=..., method=..., seed=..., forward calls=..., seconds``."""
        return (f"mode={self.mode}, method={self.method}, seed={self.seed}, "
                f"forward calls={self.n_evals}, {self.seconds:.2f} s")

    def sections(self) -> list[tuple[str, str, list[str]]]:
        """``(key, title, lines)`` of the non-empty sections under the table: problems,
        kinks (the first five), tolerances, notes. Shared by every text rendering."""
        kinks = [k.describe() for k in self.kinks[:5]]
        if len(self.kinks) > 5:
            kinks.append(f"... and {len(self.kinks) - 5} more")
        found = [
            ("problems", "problems", [str(p) for p in self.problems]),
            ("unproven", "not proven (inconclusive or not run)",
             [f"input {r.label} ({r.status}): {r.reason}" for r in self.inputs
              if r.checked and r.reason]),
            ("kinks", f"kinks ({len(self.kinks)} non-differentiable points; "
                      + ("not errors)" if all(k.consistent for k in self.kinks) else
                         f"{sum(not k.consistent for k in self.kinks)} with the analytic value "
                         "outside the one-sided derivatives)"), kinks),
            ("tolerances", "tolerances",
             [f"input {r.label}: {r.tol_reason}" for r in self.inputs
              if r.checked and r.tol_reason]),
            ("notes", "notes", list(self.notes)),
        ]
        return [section for section in found if section[2]]

    def headline(self) -> str:
        """``OK``, ``FAILED`` or ``INCONCLUSIVE``."""
        return {"ok": "OK", "failed": "FAILED"}.get(self.verdict, "INCONCLUSIVE")

    def __str__(self) -> str:
        head = "gradproof: " + self.headline()
        name = f" {self.function}" if self.function else ""
        lines = [f"{head}{name} ({self.run_summary()})"]
        header = ["input", "name", "shape", "dtype", "status", "max rel err", "tol",
                  "worst coordinate: analytic vs numeric"]
        rows = [header] + self.table_rows()
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for k, row in enumerate(rows):
            lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
            if k == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        for _, title, items in self.sections():
            lines.append(f"{title}:")
            lines.extend(f"  - {item}" for item in items)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The report in a notebook: tables, problems, heat maps (see :mod:`.html`)."""
        from .html import render_html

        return render_html(self, standalone=False)

    def __repr__(self) -> str:
        bad = [r.index for r in self.inputs if not r.ok]
        return (f"<gradproof Report verdict={self.verdict} inputs={len(self.inputs)} "
                f"not ok={bad}>")

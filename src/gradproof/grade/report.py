"""Grades as data: per submission, per function; the class summary; the JSON and the table.

The JSON (``version`` 1, documented in docs/grade.md)::

    {"version": 1,
     "submissions": [{"path": str, "name": str, "score": float,
                      "functions": [{"name": str, "status": str, "file": str,
                                     "findings": [{"kind": str, "message": str}]}],
                      "problems": [...], "output": str}],
     "summary": {...}}
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from .discover import Submission
from .findings import NOTE_KINDS
from .sandbox import FileOutcome
from .specs import SPEC_BY_NAME, SPECS

__all__ = ["STATUSES", "Graded", "to_json", "class_summary", "format_text", "rows_of",
           "tables_of"]

STATUSES = ("correct", "wrong", "not-implemented", "error", "timeout")
JSON_VERSION = 1


@dataclass
class Graded:
    """One submission, graded."""

    submission: Submission
    outcomes: list[FileOutcome] = field(default_factory=list)
    output: str = ""
    seconds: float = 0.0

    def relative(self, path: str) -> str:
        root = self.submission.path
        base = root if root.is_dir() else root.parent
        try:
            return os.path.relpath(path, base.resolve())
        except ValueError:  # another drive
            return path

    def functions(self) -> list[dict[str, Any]]:
        out = []
        for outcome in self.outcomes:
            for r in outcome.results:
                entry = {"name": r["name"], "status": r["status"],
                         "findings": [{"kind": f["kind"], "message": f["message"]}
                                      for f in r.get("findings", [])],
                         "file": self.relative(outcome.path)}
                if "parts" in r:
                    entry["parts"] = r["parts"]
                if "seconds" in r:
                    entry["seconds"] = r["seconds"]
                out.append(entry)
        return out

    def notes(self) -> list[str]:
        return [n for o in self.outcomes for n in o.notes]

    def problems(self) -> list[dict[str, str]]:
        found = [o.problem for o in self.outcomes if o.problem]
        if not self.submission.files:
            found.append({"kind": "no-functions", "message": (
                "no file here defines a CS231n function (affine_forward, svm_loss_naive, ...)")})
        return [{"kind": p["kind"], "message": p["message"]} for p in found]

    def whole_file_messages(self) -> set[str]:
        """The problems' messages: a function's finding that repeats one is not shown again."""
        return {p["message"] for p in self.problems()}

    @property
    def n_correct(self) -> int:
        """How many of the graded functions are correct."""
        return sum(f["status"] == "correct" for f in self.functions())

    @property
    def score(self) -> float:
        functions = self.functions()
        if not functions:
            return 0.0
        return round(self.n_correct / len(functions), 4)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.submission.path), "name": self.submission.name,
                "score": self.score, "functions": self.functions(),
                "problems": self.problems(), "notes": self.notes(), "output": self.output,
                "seconds": round(self.seconds, 2)}


def class_summary(graded: list[Graded]) -> dict[str, Any]:
    """Which functions most students got wrong, and the most common findings."""
    per_function: dict[str, Counter] = defaultdict(Counter)
    findings: dict[tuple[str, str], dict[str, Any]] = {}
    for g in graded:
        seen: set[tuple[str, str]] = set()
        whole_file = g.whole_file_messages()
        for f in g.functions():
            per_function[f["name"]][f["status"]] += 1
            for item in f["findings"]:
                if item["kind"] in NOTE_KINDS or item["kind"] in ("hint", "not-implemented"):
                    continue
                where = "(whole file)" if item["message"] in whole_file else f["name"]
                key = (where, item["kind"])
                entry = findings.setdefault(key, {"function": where, "kind": item["kind"],
                                                  "students": 0,
                                                  "example": _short(item["message"])})
                if key not in seen:
                    seen.add(key)
                    entry["students"] += 1
    order = {n: k for k, n in enumerate(n for s in SPECS for n in s.functions)}
    functions = [{"name": name, **{s: counts.get(s, 0) for s in STATUSES}}
                 for name, counts in per_function.items()]
    functions.sort(key=lambda f: (-(f["wrong"] + f["error"] + f["timeout"]),
                                  order.get(f["name"], 999)))
    common = sorted(findings.values(), key=lambda e: (-e["students"], e["function"]))
    scores = [g.score for g in graded]
    return {"submissions": len(graded),
            "mean_score": round(sum(scores) / len(scores), 4) if scores else 0.0,
            "functions": functions, "common_findings": common[:15]}


def _short(message: str, limit: int = 140) -> str:
    text = message.split(" [case:")[0]
    return text if len(text) <= limit else text[:limit - 3] + "..."


def to_json(graded: list[Graded]) -> dict[str, Any]:
    return {"version": JSON_VERSION, "submissions": [g.to_dict() for g in graded],
            "summary": class_summary(graded)}


# --------------------------------------------------------------------------------------
# rows: one per forward/backward pair (a loss is one row: its value and its gradient)
def rows_of(functions: list[dict]) -> list[dict[str, Any]]:
    """Table rows for one submission: ``{"file", "label", "forward", "backward", "items"}``.

    ``items`` are the functions of the row (their findings go under it)."""
    by_key = {(f["file"], f["name"]): f for f in functions}
    rows = []
    done: set[tuple[str, str]] = set()
    for f in functions:
        key = (f["file"], f["name"])
        if key in done:
            continue
        spec = SPEC_BY_NAME[f["name"]]
        fwd = by_key.get((f["file"], spec.forward))
        if spec.kind != "layer":
            parts = f.get("parts", {})
            rows.append({"file": f["file"], "label": f["name"],
                         "forward": parts.get("value", f["status"]),
                         "backward": parts.get("gradient", f["status"]), "items": [f]})
            done.add(key)
            continue
        backs = [by_key.get((f["file"], b)) for b in spec.backwards]
        first = True
        for b in backs:
            if b is None:
                continue
            items = ([fwd] if fwd is not None and first else []) + [b]
            rows.append({"file": f["file"],
                         "label": spec.label if b["name"] == spec.backwards[0]
                         else f"{spec.label} ({b['name'].split('_backward_')[-1]})",
                         "forward": (fwd["status"] if fwd else "-") if first else "",
                         "backward": b["status"], "items": items})
            done.update((f["file"], i["name"]) for i in items)
            first = False
        if fwd is not None and (f["file"], fwd["name"]) not in done:
            rows.append({"file": f["file"], "label": spec.label, "forward": fwd["status"],
                         "backward": "-", "items": [fwd]})
            done.add((f["file"], fwd["name"]))
    return rows


def tables_of(functions: list[dict]) -> list[tuple[str, list[dict[str, Any]]]]:
    """``rows_of(functions)`` cut into one table per file: ``[(file, rows), ...]``.

    A new table starts wherever the file changes, so the text and the HTML
    report show the same tables in the same order."""
    return [(file, list(rows)) for file, rows in groupby(rows_of(functions),
                                                         key=lambda row: row["file"])]


def _status_word(status: str) -> str:
    return {"wrong": "WRONG", "error": "ERROR", "timeout": "TIMEOUT",
            "not graded": "-"}.get(status, status)


def format_text(graded: list[Graded], summary: bool = True, notes: bool = False) -> str:
    """The per-student tables (findings under each row) and the class summary."""
    lines: list[str] = []
    for g in graded:
        functions = g.functions()
        lines.append(f"=== {g.submission.name}: score {g.score:.2f} ({g.n_correct} of "
                     f"{len(functions)} functions correct)  [{g.submission.path}]")
        whole_file = g.whole_file_messages()
        for p in g.problems():
            lines.append(f"  ! {p['message']}")
        for note in g.notes():
            lines.append(f"  note: {note}")
        for file, rows in tables_of(functions):
            lines.append(f"  {file}")
            lines.append(f"    {'function':<26} {'forward':<16} {'backward':<16}")
            for row in rows:
                lines.append(f"    {row['label']:<26} {_status_word(row['forward']):<16} "
                             f"{_status_word(row['backward']):<16}")
                for item in row["items"]:
                    for fd in item["findings"]:
                        if (fd["kind"] in NOTE_KINDS and not notes
                                or fd["message"] in whole_file):
                            continue
                        lines.append(f"        {item['name']}: {fd['message']}")
        if g.output.strip():
            shown = g.output.strip().splitlines()
            lines.append(f"  output of the submission ({len(shown)} lines): "
                         + " | ".join(shown[:3])[:200])
        lines.append("")
    if summary and len(graded) > 1:
        lines.extend(_summary_lines(class_summary(graded)))
    return "\n".join(lines)


def _summary_lines(s: dict[str, Any]) -> list[str]:
    lines = [f"=== class summary: {s['submissions']} submissions, mean score "
             f"{s['mean_score']:.2f}",
             f"    {'function':<28} " + " ".join(f"{st:>{len(st) + 1}}" for st in STATUSES)]
    for f in s["functions"]:
        lines.append(f"    {f['name']:<28} "
                     + " ".join(f"{f[st]:>{len(st) + 1}}" for st in STATUSES))
    if s["common_findings"]:
        lines.append("  most common findings:")
        for e in s["common_findings"]:
            lines.append(f"    {e['students']:>3} x {e['function']} ({e['kind']}): {e['example']}")
    return lines


"""Run every zoo case through every tool and tabulate who catches what.

Per tool: bugs caught out of all bug cases, false alarms out of all correct and
kink cases, total forward calls and seconds. ``--verbose`` (or ``--markdown``)
adds the per-case matrix. ``python -m gradproof.zoo.table --help`` for options;
``benchmarks/zoo/run.py`` and ``gradproof zoo`` call :func:`main`.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import FAMILIES, KINDS, Case, cases
from .runners import TOOLS, ToolResult, run_case

__all__ = ["ToolSummary", "run_zoo", "summarize", "format_summary", "format_matrix",
           "add_arguments", "run_from_args", "main"]

_NEEDS = {"torch_full": "torch", "torch_fast": "torch", "scipy": "scipy"}


@dataclass
class ToolSummary:
    """One tool's totals over the zoo."""

    tool: str
    bugs_caught: int = 0
    bugs_total: int = 0
    false_alarms: int = 0
    clean_total: int = 0
    forward_calls: int = 0
    seconds: float = 0.0
    missed: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)


def available_tools(tools: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``tools`` into those whose optional dependency is installed and the rest."""
    present, absent = [], []
    for tool in tools:
        module = _NEEDS.get(tool)
        (absent if module and importlib.util.find_spec(module) is None else present).append(tool)
    return present, absent


def run_zoo(tools: Sequence[str] = TOOLS, selected: dict[str, Case] | None = None,
            progress: Callable[[str], None] | None = None) -> list[ToolResult]:
    """Every selected case (default: the whole zoo) through every tool."""
    selected = cases() if selected is None else selected
    for tool in tools:  # import optional dependencies now, so no case pays for it
        if tool in _NEEDS:
            importlib.import_module(_NEEDS[tool])
    results = []
    for case in selected.values():
        for tool in tools:
            results.append(run_case(tool, case))
        if progress:
            progress(case.name)
    return results


def summarize(results: Sequence[ToolResult], selected: dict[str, Case]) -> list[ToolSummary]:
    """Totals per tool, in the order the tools first appear in ``results``."""
    summaries: dict[str, ToolSummary] = {}
    for r in results:
        s = summaries.setdefault(r.tool, ToolSummary(r.tool))
        is_bug = selected[r.case].kind == "bug"
        s.forward_calls += r.forward_calls
        s.seconds += r.seconds
        if is_bug:
            s.bugs_total += 1
            s.bugs_caught += r.flagged
            if not r.flagged:
                s.missed.append(r.case)
        else:
            s.clean_total += 1
            s.false_alarms += r.flagged
            if r.flagged:
                s.false.append(r.case)
    return list(summaries.values())


def format_summary(summaries: Sequence[ToolSummary]) -> str:
    """A markdown table of the totals, followed by each tool's wrong verdicts."""
    lines = ["| tool | bugs caught | false alarms | forward calls | seconds |",
             "|---|---|---|---|---|"]
    for s in summaries:
        lines.append(f"| {s.tool} | {s.bugs_caught} / {s.bugs_total} | "
                     f"{s.false_alarms} / {s.clean_total} | {s.forward_calls} | {s.seconds:.2f} |")
    lines.append("")
    for s in summaries:
        lines.append(f"- {s.tool}: missed {', '.join(s.missed) or 'none'}; "
                     f"false alarms {', '.join(s.false) or 'none'}")
    return "\n".join(lines)


def _verdict(result: ToolResult, case: Case) -> str:
    word = {"flagged": "FLAG", "passed": "pass", "error": "ERROR"}[result.status]
    return word if result.flagged == (case.kind == "bug") else f"**{word}** (wrong)"


def format_matrix(results: Sequence[ToolResult], selected: dict[str, Case]) -> str:
    """A markdown table: one row per case, one column per tool."""
    tools = list(dict.fromkeys(r.tool for r in results))
    by_key = {(r.case, r.tool): r for r in results}
    lines = ["| case | family | kind | " + " | ".join(tools) + " |",
             "|---|---|---|" + "---|" * len(tools)]
    for name, case in selected.items():
        cells = [_verdict(by_key[name, t], case) for t in tools if (name, t) in by_key]
        if cells:
            lines.append(f"| {name} | {case.family} | {case.kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The zoo's command-line options (shared by the script and ``gradproof zoo``)."""
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS),
                        help="tools to compare (default: all)")
    parser.add_argument("--kind", choices=KINDS, help="only cases of this kind")
    parser.add_argument("--family", choices=FAMILIES, help="only cases of this family")
    parser.add_argument("--case", action="append", default=[], metavar="NAME",
                        help="only this case (repeatable)")
    parser.add_argument("--markdown", metavar="PATH",
                        help="also write the summary and per-case matrix to a markdown file")
    parser.add_argument("--verbose", action="store_true", help="print the per-case matrix")


def run_from_args(args: argparse.Namespace) -> int:
    selected = cases(kind=args.kind, family=args.family)
    if args.case:
        unknown = sorted(set(args.case) - set(cases()))
        if unknown:
            print(f"unknown case(s) {unknown}; see gradproof.zoo.cases()", file=sys.stderr)
            return 2
        selected = {name: c for name, c in selected.items() if name in args.case}
    tools, absent = available_tools(args.tools)
    if absent:
        print(f"skipping {absent}: optional dependency not installed", file=sys.stderr)
    counts = {kind: sum(c.kind == kind for c in selected.values()) for kind in KINDS}
    print(f"zoo: {len(selected)} cases ({counts['bug']} bugs, {counts['correct']} correct, "
          f"{counts['kink']} kinks), tools: {', '.join(tools)}", flush=True)
    results = run_zoo(tools, selected)
    summary = format_summary(summarize(results, selected))
    matrix = format_matrix(results, selected)
    print(summary)
    if args.verbose:
        print("\n" + matrix)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(f"# Zoo results\n\n{summary}\n\n## Per case\n\n{matrix}\n")
        print(f"wrote {args.markdown}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gradproof zoo",
        description="Run the bug zoo through gradproof and other gradient checkers.")
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

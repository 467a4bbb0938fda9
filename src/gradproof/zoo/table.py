"""Run every zoo case through every tool and tabulate who catches what.

Per tool: bugs caught out of the bug cases it ran on, false alarms out of the
correct and kink cases it ran on, inconclusive verdicts on those, the cases it
was not run on (too large for a tool whose cost grows with the Jacobian, see
``--max-elements``), forward calls and seconds; for gradproof also its verdict
counts (ok, failed, inconclusive). ``--verbose`` (or ``--markdown``) adds the
per-case matrix. ``python -m gradproof.zoo.table --help`` for options;
``benchmarks/zoo/run.py`` and ``gradproof zoo`` call :func:`main`.

How verdicts count:

- a bug failed, raised or ended inconclusive: caught (an inconclusive is
  counted as caught, and shown apart: "78 (failed 77, inconclusive 1)");
- a correct or kink case failed or raised: a false alarm;
- a correct or kink case inconclusive: not a false alarm, not a pass either;
  its own column;
- not run: counted in its own column, never as caught, missed or passed.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import FAMILIES, KINDS, Case, cases
from .runners import JACOBIAN_TOOLS, TOOLS, ToolResult, run_case

__all__ = ["DEFAULT_MAX_ELEMENTS", "ToolSummary", "run_zoo", "summarize", "format_summary",
           "format_matrix", "add_arguments", "run_from_args", "main"]

_NEEDS = {"torch_full": "torch", "torch_fast": "torch", "scipy": "scipy"}

# The largest case torch_full, scipy and cs231n run on by default: every case
# of the original zoo (at most 4,000 checked elements) and the ten small cases
# of the precision family (1,280 to 4,128), but none of the realistic layers of
# the structured, spatial, sequence, domain and precision families (6,592 to
# 64,000 elements: 13,000 to 128,000 forward calls each for torch_full, which
# would need at least 11 minutes on them, measured 4 to 10 times that). With it
# the whole table takes 30 to 60 seconds on a shared 2-core machine; the next
# size up (the five convolution cases, 6,592 elements and 32,768 outputs each)
# would add several minutes of torch_full.
DEFAULT_MAX_ELEMENTS = 5000


@dataclass
class ToolSummary:
    """One tool's totals over the zoo.

    ``bugs_total`` and ``clean_total`` count every bug and every correct or
    kink case given to the tool; ``bugs_run`` and ``clean_run`` those it was run
    on. ``bugs_caught`` includes ``bugs_inconclusive``; ``false_alarms``
    (failed or raised on a clean case) does not include ``clean_inconclusive``.
    ``verdicts`` counts statuses (``passed``, ``flagged``, ``inconclusive``,
    ``error``, ``not_run``). ``not_run_calls``, ``not_run_backward_calls`` and
    ``not_run_seconds``: the calls the cases not run would have needed, and an
    estimate of their seconds.
    """

    tool: str
    bugs_caught: int = 0
    bugs_inconclusive: int = 0
    bugs_run: int = 0
    bugs_total: int = 0
    false_alarms: int = 0
    clean_inconclusive: int = 0
    clean_run: int = 0
    clean_total: int = 0
    forward_calls: int = 0
    seconds: float = 0.0
    not_run_calls: int = 0
    not_run_backward_calls: int = 0
    not_run_seconds: float = 0.0
    verdicts: Counter = field(default_factory=Counter)
    missed: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)

    @property
    def not_run_bugs(self) -> int:
        return self.bugs_total - self.bugs_run

    @property
    def not_run_clean(self) -> int:
        return self.clean_total - self.clean_run


def available_tools(tools: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``tools`` into those whose optional dependency is installed and the rest."""
    present, absent = [], []
    for tool in tools:
        module = _NEEDS.get(tool)
        (absent if module and importlib.util.find_spec(module) is None else present).append(tool)
    return present, absent


def run_zoo(tools: Sequence[str] = TOOLS, selected: dict[str, Case] | None = None,
            progress: Callable[[str], None] | None = None,
            max_elements: int | None = DEFAULT_MAX_ELEMENTS,
            upcast: bool = True) -> list[ToolResult]:
    """Every selected case (default: the whole zoo) through every tool.

    ``max_elements`` and ``upcast``: see :func:`gradproof.zoo.runners.run_case`.
    """
    selected = cases() if selected is None else selected
    for tool in tools:  # import optional dependencies now, so no case pays for it
        if tool in _NEEDS:
            importlib.import_module(_NEEDS[tool])
    results = []
    for case in selected.values():
        for tool in tools:
            results.append(run_case(tool, case, max_elements=max_elements, upcast=upcast))
        if progress:
            progress(case.name)
    return results


def summarize(results: Sequence[ToolResult], selected: dict[str, Case]) -> list[ToolSummary]:
    """Totals per tool, in the order the tools first appear in ``results``."""
    summaries: dict[str, ToolSummary] = {}
    for r in results:
        s = summaries.setdefault(r.tool, ToolSummary(r.tool))
        is_bug = selected[r.case].kind == "bug"
        s.verdicts[r.status] += 1
        s.forward_calls += r.forward_calls
        s.seconds += r.seconds
        if is_bug:
            s.bugs_total += 1
        else:
            s.clean_total += 1
        if not r.ran:
            s.not_run.append(r.case)
            s.not_run_calls += r.estimated_calls
            s.not_run_backward_calls += r.estimated_backward_calls
            s.not_run_seconds += r.estimated_seconds
        elif is_bug:
            s.bugs_run += 1
            s.bugs_caught += r.flagged
            s.bugs_inconclusive += r.status == "inconclusive"
            if not r.flagged:
                s.missed.append(r.case)
        elif r.status == "inconclusive":
            s.clean_run += 1
            s.clean_inconclusive += 1
            s.inconclusive.append(r.case)
        else:
            s.clean_run += 1
            s.false_alarms += r.flagged
            if r.flagged:
                s.false.append(r.case)
    return list(summaries.values())


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _caught_cell(s: ToolSummary) -> str:
    cell = f"{s.bugs_caught} / {s.bugs_run}"
    if s.bugs_inconclusive:
        failed = s.bugs_caught - s.bugs_inconclusive
        cell += f" (failed {failed}, inconclusive {s.bugs_inconclusive})"
    return cell


def _not_run_cell(s: ToolSummary) -> str:
    if not s.not_run:
        return "-"
    backward = f" + {s.not_run_backward_calls:,} backward" if s.not_run_backward_calls else ""
    return (f"{len(s.not_run)} ({s.not_run_bugs} bugs, {s.not_run_clean} clean): "
            f"{s.not_run_calls:,} forward{backward} calls, >= {_duration(s.not_run_seconds)}")


def _verdict_counts(s: ToolSummary) -> str:
    counts = [f"ok {s.verdicts['passed']}", f"failed {s.verdicts['flagged']}",
              f"inconclusive {s.verdicts['inconclusive']}"]
    if s.verdicts["error"]:
        counts.append(f"error {s.verdicts['error']}")
    return ", ".join(counts)


def format_summary(summaries: Sequence[ToolSummary],
                   max_elements: int | None = None) -> str:
    """A markdown table of the totals, then gradproof's verdicts and each tool's
    wrong, inconclusive and not-run cases."""
    lines = ["| tool | bugs caught / run on | false alarms / clean run on | "
             "inconclusive on clean | not run (too large) | forward calls | seconds |",
             "|---|---|---|---|---|---|---|"]
    for s in summaries:
        lines.append(f"| {s.tool} | {_caught_cell(s)} | {s.false_alarms} / {s.clean_run} | "
                     f"{s.clean_inconclusive} | {_not_run_cell(s)} | {s.forward_calls} | "
                     f"{s.seconds:.2f} |")
    lines.append("")
    if max_elements is not None and any(s.not_run for s in summaries):
        lines.append(f"Not run: cases with more than {max_elements} checked elements, for the "
                     "tools whose calls grow with the Jacobian; the time is a lower bound: "
                     "those calls times the fastest of three timed calls, without the "
                     "tool's own work (torch_full's measured time was 4-10x the bound).")
        lines.append("")
    for s in summaries:
        if s.tool == "gradproof":
            lines.append(f"- gradproof verdicts: {_verdict_counts(s)} "
                         f"(of {s.bugs_total + s.clean_total} cases)")
    for s in summaries:
        line = (f"- {s.tool}: missed {', '.join(s.missed) or 'none'}; "
                f"false alarms {', '.join(s.false) or 'none'}")
        if s.inconclusive:
            line += f"; inconclusive on clean {', '.join(s.inconclusive)}"
        if s.bugs_inconclusive:
            line += f"; {s.bugs_inconclusive} bug(s) caught as inconclusive"
        if s.not_run:
            line += f"; not run on {len(s.not_run)}"
        lines.append(line)
    return "\n".join(lines)


_WORDS = {"flagged": "FLAG", "passed": "pass", "error": "ERROR",
          "inconclusive": "INCONCLUSIVE"}


def _verdict(result: ToolResult, case: Case) -> str:
    if not result.ran:
        return f"not run ({result.estimated_calls} forward calls)"
    word = _WORDS[result.status]
    if result.status == "inconclusive" and case.kind != "bug":
        return f"*{word}* (unproven)"
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


def _max_elements(text: str) -> int | None:
    if text.lower() == "none":
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 or 'none', got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The zoo's command-line options (shared by the script and ``gradproof zoo``)."""
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS),
                        help="tools to compare (default: all)")
    parser.add_argument("--kind", choices=KINDS, help="only cases of this kind")
    parser.add_argument("--family", choices=FAMILIES, help="only cases of this family")
    parser.add_argument("--case", action="append", default=[], metavar="NAME",
                        help="only this case (repeatable)")
    parser.add_argument("--max-elements", type=_max_elements, default=DEFAULT_MAX_ELEMENTS,
                        metavar="N",
                        help="do not run torch_full, scipy and cs231n (whose forward calls "
                             "grow with the Jacobian) on cases with more than N checked "
                             f"elements (default {DEFAULT_MAX_ELEMENTS}; 'none': run them "
                             "on every case, over 30 minutes)")
    parser.add_argument("--no-upcast", dest="upcast", action="store_false",
                        help="run gradproof with upcast=False (no float64 re-check of "
                             "float32 code)")
    parser.add_argument("--markdown", metavar="PATH",
                        help="also write the summary and per-case matrix to a markdown file")
    parser.add_argument("--verbose", action="store_true", help="print the per-case matrix")


def _print_progress() -> Callable[[str], None]:
    """A progress callback that prints every 20th case to stderr with the time so far."""
    start, done = time.perf_counter(), []

    def progress(name: str) -> None:
        done.append(name)
        if len(done) % 20 == 0:
            print(f"  {len(done)} cases, {time.perf_counter() - start:.0f} s", file=sys.stderr,
                  flush=True)

    return progress


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
    limited = [t for t in tools if t in JACOBIAN_TOOLS]
    limit = ("" if args.max_elements is None or not limited else
             f"; {', '.join(limited)} only on cases of at most {args.max_elements} "
             "checked elements")
    print(f"zoo: {len(selected)} cases ({counts['bug']} bugs, {counts['correct']} correct, "
          f"{counts['kink']} kinks), tools: {', '.join(tools)}{limit}"
          f"{'' if args.upcast else '; gradproof with upcast=False'}", flush=True)
    start = time.perf_counter()
    results = run_zoo(tools, selected, progress=_print_progress(),
                      max_elements=args.max_elements, upcast=args.upcast)
    wall = time.perf_counter() - start
    summary = format_summary(summarize(results, selected), args.max_elements)
    matrix = format_matrix(results, selected)
    print(summary)
    print(f"\n{wall:.0f} s in all")
    if args.verbose:
        print("\n" + matrix)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(f"# Zoo results\n\n{summary}\n\n{wall:.0f} s in all.\n\n"
                     f"## Per case\n\n{matrix}\n")
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

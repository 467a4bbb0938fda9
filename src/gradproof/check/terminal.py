"""A gradient-check report in the terminal: coloured tables with ``rich``, else plain text.

Colour is used only when the stream is a terminal, ``NO_COLOR`` is unset (or
empty) and ``TERM`` is not ``dumb`` — or when the caller forces it
(``gradproof check --color always``). Without ``rich`` (the ``[cli]`` extra)
the report is printed as ``str(report)``, the same table without colour.
"""

from __future__ import annotations

import io
import os
import sys
from typing import IO

from .report import Report

__all__ = ["COLOR_CHOICES", "use_color", "format_report", "print_report"]

COLOR_CHOICES = ("auto", "always", "never")

# status of an input -> rich style
_STATUS_STYLE = {
    "ok": "green",
    "ok (kinks)": "green",
    "skipped": "dim",
    "inconclusive": "yellow",
    "not checked": "yellow",
}


# section of the report -> rich style
_SECTION_STYLE = {"problems": "red", "unproven": "yellow", "kinks": "yellow", "tolerances": "dim",
                  "notes": "cyan"}


def use_color(stream: IO[str], choice: str = "auto") -> bool:
    """Whether to colour output written to ``stream``.

    ``choice`` is ``"always"``, ``"never"`` or ``"auto"`` (a TTY, ``NO_COLOR``
    unset or empty, ``TERM`` not ``dumb``; see https://no-color.org).
    """
    if choice not in COLOR_CHOICES:
        raise ValueError(f"color must be one of {COLOR_CHOICES}, got {choice!r}")
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _rich_available() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def _render_rich(report: Report, stream: IO[str]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=stream, force_terminal=True, highlight=False, soft_wrap=False,
                      width=max(_terminal_width(stream), 100))
    verdict = Text(report.headline(), style={"ok": "bold green", "failed": "bold red"}.get(
        report.verdict, "bold yellow"))
    head = Text("gradproof: ").append(verdict)
    if report.function:
        head.append(f" {report.function}", style="bold")
    head.append(f" ({report.run_summary()})", style="dim")
    console.print(head, soft_wrap=True)

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False)
    for name in ("input", "name", "shape", "dtype", "status", "max rel err", "tol",
                 "worst coordinate: analytic vs numeric"):
        table.add_column(name, no_wrap=True)
    for result, row in zip(report.inputs, report.table_rows()):
        style = _STATUS_STYLE.get(result.status, "bold red")
        cells = [Text(cell) for cell in row]  # Text, not markup: names may hold brackets
        cells[4].stylize(style)
        table.add_row(*cells)
    console.print(table)

    for key, title, lines in report.sections():
        style = _SECTION_STYLE[key]
        console.print(Text(f"{title}:", style=f"bold {style}"))
        for line in lines:
            console.print(Text("  - ").append(line, style=style if style != "dim" else ""),
                          soft_wrap=True)


def _terminal_width(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return 120


def format_report(report: Report, color: bool) -> str:
    """The report as text, with ANSI colour codes when ``color`` and ``rich`` is installed."""
    if not (color and _rich_available()):
        return str(report)
    buffer = io.StringIO()
    _render_rich(report, buffer)
    return buffer.getvalue().rstrip("\n")


def print_report(report: Report, stream: IO[str] | None = None, color: str = "auto") -> None:
    """Print ``report`` to ``stream`` (default stdout), coloured when :func:`use_color` says."""
    stream = stream if stream is not None else sys.stdout
    print(format_report(report, use_color(stream, color)), file=stream)

"""One self-contained HTML page for one or more runs: per run its plots, warnings, summary.

The plots are inline base64 PNGs, drawn for and shown at the page's full width
(1100 px), so the page is a single file that opens anywhere (no server, no
network)::

    write_html("run.html", [("my run", diag.record, detect(diag.record))])
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence

from .detectors import Finding
from .plots import figure_png, run_figures
from .stats import RunRecord

__all__ = ["render_html", "write_html"]

Run = tuple[str, RunRecord, Sequence[Finding]]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; }
.warning { background: #fff4e5; border-left: 5px solid #e67e22; padding: .5em 1em; margin: .5em 0; }
.quiet { background: #eafaf1; border-left: 5px solid #27ae60; padding: .5em 1em; }
.fix { color: #555; }
.grid { display: flex; flex-direction: column; gap: 14px; }
/* plots are drawn 1100 px wide: shown at the column's full width, never shrunk to thumbnails */
.grid img { display: block; width: 100%; max-width: 1100px; height: auto;
  border: 1px solid #ddd; }
pre { background: #f6f6f6; padding: .5em; overflow-x: auto; }
"""


def _findings_html(findings: Sequence[Finding]) -> str:
    if not findings:
        return '<div class="quiet">No warnings: no leak detected.</div>'
    items = []
    for f in findings:
        where = f" [{html.escape(f.layer)}]" if f.layer else ""
        items.append(f'<div class="warning"><b>{html.escape(f.kind)}{where}</b>: '
                     f'{html.escape(f.message)}<br><span class="fix">fix: '
                     f'{html.escape(f.fix)}</span></div>')
    return "\n".join(items)


def _run_html(label: str, record: RunRecord, findings: Sequence[Finding]) -> str:
    images = []
    for name, fig in run_figures(record).items():
        data = base64.b64encode(figure_png(fig)).decode("ascii")
        images.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">')
    # the warnings first (a few lines), then the full-width plots that show them
    return (f"<h2>{html.escape(label)}</h2>\n{_findings_html(findings)}\n"
            f'<div class="grid">{"".join(images)}</div>\n'
            f"<pre>{html.escape(record.summary())}</pre>")


def render_html(runs: Sequence[Run], title: str = "gradproof diagnose") -> str:
    """The page for ``runs``: ``(label, record, findings)`` each. Returns the HTML text."""
    body = "\n".join(_run_html(*run) for run in runs)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n"
            f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def write_html(path: str | os.PathLike, runs: Sequence[Run],
               title: str = "gradproof diagnose") -> str:
    """Write :func:`render_html` to ``path``; return the path."""
    text = render_html(runs, title)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return os.fspath(path)

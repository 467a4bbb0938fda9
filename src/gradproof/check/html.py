"""A gradient-check report as one self-contained HTML page (or a notebook fragment).

Everything is inline: CSS in a ``<style>`` element, heat maps as inline SVG;
the page fetches nothing, so it can be mailed, attached to CI artefacts or
opened offline.

Heat maps (drawn by :mod:`.heatmap`). For each checked input the page draws
the error of every coordinate, ``|analytic - numeric| / max(|analytic|,
|numeric|)`` with the maximum taken over the whole input (the error relative to
the gradient's scale), coloured on a log scale from 1e-16 to 1, with labelled
axes; large inputs are aggregated into blocks (each cell the maximum error of
its block). The region the check found wrong (``w[:, 40]``) is outlined, and
the input's worst coordinates are listed beside its map. The per-coordinate
numeric gradient exists only after a full check (``mode="full"``). For a report
made in the default mode the caller may pass ``full=``, a full check of the
same function (``gradproof check --html`` runs one for inputs of at most 4096
elements); otherwise the map shows the region found and where the worst
sampled coordinates lie. A caption gives the input's own status, never the
report's overall verdict.
"""

from __future__ import annotations

import html
from pathlib import Path

from .heatmap import (
    HEAT_COLORS,
    LOG_RANGE,
    REGION_COLOR,
    color,
    heatmap_svg,
    region_of,
    relative_error_grid,
    sampled_svg,
    view_shape,
)
from .report import InputResult, Report, _fmt

__all__ = ["HEAT_COLORS", "LOG_RANGE", "render_html", "write_html", "relative_error_grid"]

_CSS = """
.gp-report { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
  max-width: 1100px; margin: 16px; }
.gp-report h1 { font-size: 20px; margin: 0; padding: 10px 14px; border-radius: 6px; color: #fff; }
.gp-report h1.gp-ok { background: #116329; }
.gp-report h1.gp-failed { background: #b42318; }
.gp-report h1.gp-inconclusive { background: #9a6700; }
.gp-report h2 { font-size: 16px; margin: 18px 0 6px; }
.gp-report .gp-meta { color: #57606a; margin: 6px 0 12px; }
.gp-report table { border-collapse: collapse; margin: 4px 0; }
.gp-report th, .gp-report td { padding: 3px 10px; border-bottom: 1px solid #d0d7de;
  text-align: left; font-variant-numeric: tabular-nums; }
.gp-report th { background: #f6f8fa; }
.gp-report .gp-status-ok { color: #116329; font-weight: 600; }
.gp-report .gp-status-warn { color: #9a6700; font-weight: 600; }
.gp-report .gp-status-bad { color: #b42318; font-weight: 700; }
.gp-report .gp-skip { color: #8c959f; }
.gp-report ul { margin: 4px 0; padding-left: 22px; }
.gp-report li.gp-problem { color: #8a1c12; }
.gp-report .gp-maps { display: flex; flex-direction: column; gap: 22px; }
.gp-report figure.gp-map { margin: 0; }
.gp-report .gp-map-row { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.gp-report .gp-map-side { font-size: 13px; min-width: 280px; max-width: 420px; }
.gp-report .gp-map-side table { font-size: 12px; }
.gp-report .gp-region-text { color: #b0175f; font-weight: 600; }
.gp-report figcaption { color: #57606a; font-size: 13px; max-width: 1000px; margin-top: 4px; }
.gp-report .gp-legend-row { display: flex; gap: 24px; align-items: center; flex-wrap: wrap;
  color: #57606a; font-size: 12px; }
"""


def _legend_svg() -> str:
    lo, hi = LOG_RANGE
    width, n = 320, 64
    parts = [f'<svg class="gp-legend" width="{width}" height="34" viewBox="0 0 {width} 34">']
    for k in range(n):
        parts.append(f'<rect x="{k * width / n:.2f}" y="0" width="{width / n + 0.5:.2f}" '
                     f'height="14" fill="{color(k / (n - 1))}"/>')
    for exponent in range(int(lo), int(hi) + 1, 4):
        x = (exponent - lo) / (hi - lo) * (width - 24) + 2
        parts.append(f'<text x="{x:.1f}" y="29" font-size="11" fill="#57606a">1e{exponent}'
                     "</text>")
    parts.append("</svg>")
    return "".join(parts)


# ----------------------------------------------------------------------
# page sections
def _status_class(status: str) -> str:
    if status.startswith("ok"):
        return "gp-status-ok"
    if status in ("skipped", "inconclusive", "not checked"):
        return "gp-status-warn"
    return "gp-status-bad"


def _inputs_table(report: Report) -> str:
    head = ("input", "name", "shape", "dtype", "status", "max rel err", "tol", "step",
            "worst coordinate: analytic vs numeric")
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for r, cells in zip(report.inputs, report.table_rows()):
        cells = cells[:7] + [_fmt(r.step) if r.checked else "-"] + cells[7:]
        tds = [f"<td>{html.escape(c)}</td>" for c in cells]
        tds[4] = f'<td class="{_status_class(r.status)}">{html.escape(r.status)}</td>'
        rows.append(("<tr>" if r.checked else '<tr class="gp-skip">') + "".join(tds) + "</tr>")
    rows.append("</table>")
    return "".join(rows)


def _list(title: str, items: list[str], cls: str = "") -> str:
    if not items:
        return ""
    attr = f' class="{cls}"' if cls else ""
    lis = "".join(f"<li{attr}>{html.escape(item)}</li>" for item in items)
    return f"<h2>{html.escape(title)}</h2><ul>{lis}</ul>"


def _worst_table(report: Report) -> str:
    rows = []
    for r in report.inputs:
        for coord, a, n in r.worst:
            rows.append(f"<tr><td>{html.escape(r.label)}</td><td>{coord}</td><td>{_fmt(a)}</td>"
                        f"<td>{_fmt(n)}</td><td>{_fmt(a - n)}</td></tr>")
    if not rows:
        return ""
    return ("<h2>Worst coordinates</h2><table><tr><th>input</th><th>coordinate</th>"
            "<th>analytic</th><th>numeric</th><th>difference</th></tr>" + "".join(rows)
            + "</table>")


def _kinks_table(report: Report) -> str:
    if not report.kinks:
        return ""
    rows = "".join(
        f"<tr><td>{k.input}</td><td>{k.coord if k.coord is not None else 'a direction'}</td>"
        f"<td>{_fmt(k.left)}</td><td>{_fmt(k.right)}</td><td>{_fmt(k.analytic)}</td>"
        f"<td>{'yes' if k.consistent else 'NO'}</td></tr>"
        for k in report.kinks
    )
    return (f"<h2>Kinks ({len(report.kinks)} non-differentiable points, not errors)</h2>"
            "<table><tr><th>input</th><th>coordinate</th><th>left slope</th><th>right slope</th>"
            "<th>analytic</th><th>valid subgradient</th></tr>" + rows + "</table>")


def _local_worst(r: InputResult) -> str:
    """The input's worst coordinates, as a small table beside its map."""
    if not r.worst:
        return '<p class="gp-meta">no coordinate measured wrong</p>'
    rows = "".join(
        f"<tr><td>{html.escape(str(c))}</td><td>{_fmt(a)}</td><td>{_fmt(n)}</td>"
        f"<td>{_fmt(abs(a - n) / max(abs(a), abs(n), 1e-300))}</td></tr>"
        for c, a, n in r.worst)
    return ('<table class="gp-worst-local"><tr><th>worst coordinate</th><th>analytic</th>'
            f"<th>numeric</th><th>rel. error</th></tr>{rows}</table>")


def _source(r: InputResult, full: Report | None) -> InputResult | None:
    """Where the per-coordinate numeric gradient of input ``r`` comes from, if anywhere."""
    if r.numeric is not None and r.analytic is not None:
        return r
    if full is not None:
        other = next((f for f in full.inputs if f.index == r.index), None)
        if other is not None and other.numeric is not None and other.analytic is not None:
            return other
    return None


def _figure(report: Report, r: InputResult, full: Report | None) -> str:
    source = _source(r, full)
    region_text, mask = region_of(report.problems, r)
    rows, cols = view_shape(r.shape)
    drawn = f", drawn as ({rows}, {cols})" if len(r.shape) != 2 else ""
    head = f"input {r.label}: {r.status}. Shape {r.shape}{drawn}"
    if source is not None:
        svg, worst, (fr, fc) = heatmap_svg(r, source.analytic, source.numeric, mask)
        blocks = (f"; each cell is the largest error of a block of {fr}x{fc} coordinates"
                  if fr * fc > 1 else "; one cell per coordinate")
        caption = f"{head}{blocks}; largest relative error {_fmt(worst)}"
        if source is not r:
            caption += (f" (measured by a full check of every coordinate; this input's "
                        f"status there: {source.status})")
    elif r.worst or mask is not None:
        svg, (fr, fc) = sampled_svg(r, mask)
        blocks = f"; {fr}x{fc} coordinates per cell" if fr * fc > 1 else ""
        caption = (f"{head}{blocks}. No per-coordinate measurement (the default mode measures "
                   "random projections; mode='full', or gradproof check --html for inputs up "
                   "to --heatmap-limit elements, measures every coordinate): dots are the "
                   f"{len(r.worst)} worst coordinates measured")
        caption += ", the shaded area the region found wrong" if mask is not None else ""
    else:
        return ""
    side = ""
    if region_text:
        side += (f'<p>Found wrong: <span class="gp-region-text">{html.escape(region_text)}'
                 f"</span> ({'outlined' if source is not None else 'shaded'})</p>")
    side += _local_worst(r)
    return (f'<figure class="gp-map"><div class="gp-map-row"><div class="gp-map-plot">{svg}'
            f'</div><div class="gp-map-side">{side}</div></div>'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _maps(report: Report, full: Report | None) -> str:
    figures = [f for r in report.inputs if r.checked and (f := _figure(report, r, full))]
    if not figures:
        return ("<h2>Heat maps</h2><p class=\"gp-meta\">None: the default mode measures random "
                "projections, not single coordinates. Check with mode='full' (gradproof check "
                "--html does so for inputs of up to 4096 elements) to see every coordinate.</p>")
    legend = (f'<div class="gp-legend-row">{_legend_svg()}<span>relative error per '
              f'coordinate (log scale)</span><svg width="34" height="16"><rect x="2" y="2" '
              f'width="30" height="12" fill="none" stroke="{REGION_COLOR}" stroke-width="2.5"/>'
              "</svg><span>region found wrong</span></div>")
    return ("<h2>Heat maps: relative error per coordinate</h2>" + legend
            + '<div class="gp-maps">' + "".join(figures) + "</div>")


def render_html(report: Report, full: Report | None = None, standalone: bool = True) -> str:
    """The report as HTML.

    ``full``: an optional ``mode="full"`` report of the same check, used for the
    heat maps of inputs whose own result has no per-coordinate numeric gradient.
    ``standalone``: a whole page (``<!DOCTYPE html>``...) or a fragment for a notebook.
    """
    verdict = report.headline()
    name = html.escape(report.function or "gradient check")
    text = {key: lines for key, _, lines in report.sections()}  # as in str(report)
    body = [
        '<div class="gp-report">',
        f'<h1 class="gp-{report.verdict}">gradproof: {verdict} {name}</h1>',
        f'<p class="gp-meta">mode={html.escape(report.mode)}, method='
        f"{html.escape(report.method)}, seed={report.seed}, forward calls={report.n_evals}, "
        f"backward calls={report.n_backward}, {report.seconds:.2f} s</p>",
        _inputs_table(report),
        _list("Problems", text.get("problems", []), "gp-problem"),
        _list("Not proven", text.get("unproven", []), "gp-problem"),
        _maps(report, full),
        _worst_table(report),
        _kinks_table(report),
        _list("Tolerances", text.get("tolerances", [])),
        _list("Notes", text.get("notes", [])),
        "</div>",
    ]
    fragment = f"<style>{_CSS}</style>" + "".join(body)
    if not standalone:
        return fragment
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>gradproof: {verdict} {name}</title></head><body>{fragment}</body></html>")


def write_html(report: Report, path: str | Path, full: Report | None = None) -> Path:
    """Write :func:`render_html`'s page to ``path`` (UTF-8); return the path."""
    path = Path(path)
    path.write_text(render_html(report, full=full), encoding="utf-8")
    return path

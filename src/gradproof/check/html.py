"""A gradient-check report as one self-contained HTML page (or a notebook fragment).

Everything is inline: CSS in a ``<style>`` element, heat maps as inline SVG;
the page fetches nothing, so it can be mailed, attached to CI artefacts or
opened offline.

Heat maps. For each checked input the page draws the error of every
coordinate, ``|analytic - numeric| / max(|analytic|, |numeric|)`` with the
maximum taken over the whole input (the error relative to the gradient's
scale), coloured on a log scale from 1e-16 to 1. The per-coordinate numeric
gradient exists only after a full check (``mode="full"``). For a report made
in the default mode the caller may pass ``full=``, a full check of the same
function (``gradproof check --html`` runs one for inputs of at most 4096
elements); otherwise the page shows where the sampled (worst) coordinates lie
instead. Arrays with more than two axes are drawn as ``(shape[0], rest)``; large
arrays are pooled (the maximum error of each block of cells).
"""

from __future__ import annotations

import html
import math
import warnings
from pathlib import Path

import numpy as np

from .report import InputResult, Report, _fmt

__all__ = ["HEAT_COLORS", "LOG_RANGE", "render_html", "write_html", "relative_error_grid"]

# viridis, sampled at 0, 1/4, 1/2, 3/4, 1: dark for tiny errors, yellow for large ones
HEAT_COLORS = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
LOG_RANGE = (-16.0, 0.0)  # log10 of the relative error mapped onto the colours
MAX_CELLS = (96, 160)  # rows, columns drawn before pooling
MAX_TOOLTIPS = 1024  # cells with a hover tooltip (each costs ~100 bytes)

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
.gp-report .gp-maps { display: flex; flex-wrap: wrap; gap: 18px; }
.gp-report figure { margin: 0; width: min-content; }
.gp-report figcaption { color: #57606a; font-size: 12px; min-width: 260px; }
"""


# ----------------------------------------------------------------------
# colours and grids
def _color(t: float) -> str:
    """The heat-map colour at ``t`` in [0, 1] (NaN: grey)."""
    if not math.isfinite(t):
        return "#bdbdbd"
    t = min(max(t, 0.0), 1.0) * (len(HEAT_COLORS) - 1)
    k = min(int(t), len(HEAT_COLORS) - 2)
    a, b = HEAT_COLORS[k], HEAT_COLORS[k + 1]
    f = t - k
    r, g, bl = (round(a[c] + f * (b[c] - a[c])) for c in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


def _log_position(err: float) -> float:
    lo, hi = LOG_RANGE
    if not math.isfinite(err):
        return float("nan")
    return (math.log10(max(err, 10.0 ** lo)) - lo) / (hi - lo)


def _as_2d(a: np.ndarray) -> np.ndarray:
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(1, -1)
    return a.reshape(a.shape[0], -1)


def relative_error_grid(analytic: np.ndarray, numeric: np.ndarray) -> np.ndarray:
    """``|analytic - numeric| / max(|analytic|, |numeric|)`` per coordinate, shape of the input.

    The maximum is over the whole input, so a coordinate whose gradient is ~0 is
    judged against the gradient's scale, not against itself. NaN where the
    numeric gradient could not be measured.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    scale = max(float(np.nanmax(np.abs(a), initial=0.0)),
                float(np.nanmax(np.abs(n), initial=0.0)), 1e-300)
    return np.abs(a - n) / scale


def _pool_max(e: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Block maxima so that the grid has at most ``MAX_CELLS`` cells per side."""
    rows, cols = e.shape
    fr = math.ceil(rows / MAX_CELLS[0])
    fc = math.ceil(cols / MAX_CELLS[1])
    if fr == 1 and fc == 1:
        return e, 1, 1
    padded = np.full((math.ceil(rows / fr) * fr, math.ceil(cols / fc) * fc), np.nan)
    padded[:rows, :cols] = e
    blocks = padded.reshape(padded.shape[0] // fr, fr, padded.shape[1] // fc, fc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks stay NaN
        return np.nanmax(blocks, axis=(1, 3)), fr, fc


def _cell_size(rows: int, cols: int) -> int:
    return int(min(max(min(640 // cols, 400 // rows), 3), 28))


def _heatmap_svg(
    result: InputResult, analytic: np.ndarray, numeric: np.ndarray
) -> tuple[str, str]:
    err = _as_2d(relative_error_grid(analytic, numeric))
    a2, n2 = _as_2d(np.asarray(analytic, dtype=np.float64)), _as_2d(numeric)
    grid, fr, fc = _pool_max(err)
    rows, cols = grid.shape
    cell = _cell_size(rows, cols)
    tooltips = fr == 1 and fc == 1 and grid.size <= MAX_TOOLTIPS
    shape = result.shape if len(result.shape) >= 2 else _as_2d(np.empty(result.shape)).shape
    parts = [
        f'<svg class="gp-heatmap" width="{cols * cell}" height="{rows * cell}" '
        f'viewBox="0 0 {cols * cell} {rows * cell}" role="img" '
        f'aria-label="heat map of the relative error of input {html.escape(result.label)}">'
    ]
    for r in range(rows):
        for c in range(cols):
            e = float(grid[r, c])
            rect = (f'<rect x="{c * cell}" y="{r * cell}" width="{cell}" height="{cell}" '
                    f'fill="{_color(_log_position(e))}"')
            if tooltips:  # unpooled: cell (r, c) is flat index r * cols + c of the input
                coord = tuple(int(k) for k in np.unravel_index(r * cols + c, result.shape))
                parts.append(rect + f'><title>{coord}: analytic {_fmt(a2[r, c])}, numeric '
                             f'{_fmt(n2[r, c])}, rel. error {_fmt(e)}</title></rect>')
            else:
                parts.append(rect + "/>")
    parts.append("</svg>")
    pooled = f"; each cell is the maximum over a {fr}x{fc} block" if fr * fc > 1 else ""
    drawn = f" drawn as {shape}" if len(result.shape) != 2 else ""
    caption = (f"input {result.label}, shape {result.shape}{drawn}{pooled}; "
               f"worst relative error {_fmt(float(np.nanmax(err, initial=0.0)))}")
    return "".join(parts), caption


def _sampled_svg(result: InputResult) -> tuple[str, str]:
    """Where the worst (sampled) coordinates of an input lie, coloured by their error."""
    rows, cols = _as_2d(np.empty(result.shape, dtype=np.uint8)).shape
    width, height = 480, max(int(480 * rows / cols), 24) if cols else 24
    height = min(height, 360)
    parts = [f'<svg class="gp-sampled" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">'
             f'<rect width="{width}" height="{height}" fill="#eaeef2"/>']
    for coord, a, n in result.worst:
        flat = int(np.ravel_multi_index(coord, result.shape)) if result.shape else 0
        r, c = divmod(flat, cols)
        e = abs(a - n) / max(abs(a), abs(n), 1e-300)
        x, y = (c + 0.5) * width / cols, (r + 0.5) * height / rows
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{_color(_log_position(e))}" '
                     f'stroke="#1f2328"><title>{coord}: analytic {_fmt(a)}, numeric {_fmt(n)}'
                     f"</title></circle>")
    parts.append("</svg>")
    caption = (f"input {result.label}, shape {result.shape}: the {len(result.worst)} worst "
               "sampled coordinates (the default mode measures random projections, not every "
               "coordinate; use mode='full' for a complete heat map)")
    return "".join(parts), caption


def _legend_svg() -> str:
    lo, hi = LOG_RANGE
    width, n = 320, 64
    parts = [f'<svg class="gp-legend" width="{width}" height="34" viewBox="0 0 {width} 34">']
    for k in range(n):
        parts.append(f'<rect x="{k * width / n:.2f}" y="0" width="{width / n + 0.5:.2f}" '
                     f'height="14" fill="{_color(k / (n - 1))}"/>')
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


def _maps(report: Report, full: Report | None) -> str:
    figures = []
    for r in report.inputs:
        if not r.checked:
            continue
        source = r if r.numeric is not None else None
        if source is None and full is not None and r.index < len(full.inputs):
            other = full.inputs[r.index]
            source = other if other.numeric is not None else None
        if source is not None and source.analytic is not None:
            svg, caption = _heatmap_svg(r, source.analytic, source.numeric)
            if source is not r:
                verdict = full.headline()
                caption += (f" (from a full check: every coordinate, {full.n_evals} forward "
                            f"calls in all, verdict {verdict})")
        elif r.worst:
            svg, caption = _sampled_svg(r)
        else:
            continue
        figures.append(f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>")
    if not figures:
        return ("<h2>Heat maps</h2><p class=\"gp-meta\">None: the default mode measures random "
                "projections, not single coordinates. Check with mode='full' (gradproof check "
                "--html does so for inputs of up to 4096 elements) to see every coordinate.</p>")
    return ("<h2>Heat maps: relative error per coordinate</h2>" + _legend_svg()
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

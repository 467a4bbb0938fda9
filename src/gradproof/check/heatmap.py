"""Heat maps of one input's gradient error as inline SVG: a readable grid, axes, the region.

An input is drawn as a 2-D grid: ``(shape[0], everything else)`` (a 1-D input
as one row). A grid larger than :data:`MAX_GRID` cells is aggregated into
blocks, each cell the *maximum* relative error of its block (a single wrong
coordinate stays visible), and the axes are labelled with the input's index
ranges, so a reader can tell "column 40" from the picture.

The region the check found wrong (a ``slice`` finding: ``w[:, 40]``,
``v[:, :, 5::16]``, ``w[4, :]``) is parsed back from the finding's index text
and outlined on the grid. Without a per-coordinate measurement (the default
mode measures random projections) the grid shows the region and the worst
sampled coordinates only, never invented per-coordinate values.
"""

from __future__ import annotations

import html
import math
import re
import warnings
from collections.abc import Sequence

import numpy as np

from .report import Finding, InputResult, _fmt

__all__ = ["HEAT_COLORS", "LOG_RANGE", "MAX_GRID", "REGION_COLOR", "color", "log_position",
           "relative_error_grid", "view_shape", "block_sizes", "pool_max", "pool_any",
           "region_mask", "region_of", "heatmap_svg", "sampled_svg"]

# viridis, sampled at 0, 1/4, 1/2, 3/4, 1: dark for tiny errors, yellow for large ones
HEAT_COLORS = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
LOG_RANGE = (-16.0, 0.0)  # log10 of the relative error mapped onto the colours
MAX_GRID = (64, 64)  # rows, columns of cells drawn; larger inputs are aggregated into blocks
PLOT_SIZE = (480, 640)  # the grid's largest height and width in pixels
CELL_PX = (8, 28)  # smallest and largest cell side in pixels
MARGIN = (10, 14, 46, 62)  # top, right, bottom, left: room for ticks and axis titles
REGION_COLOR = "#ff2d95"  # the outline of the region found wrong (visible on viridis)
MAX_TOOLTIPS = 1024


def color(t: float) -> str:
    """The heat-map colour at ``t`` in [0, 1] (NaN: grey)."""
    if not math.isfinite(t):
        return "#bdbdbd"
    t = min(max(t, 0.0), 1.0) * (len(HEAT_COLORS) - 1)
    k = min(int(t), len(HEAT_COLORS) - 2)
    a, b = HEAT_COLORS[k], HEAT_COLORS[k + 1]
    f = t - k
    r, g, bl = (round(a[c] + f * (b[c] - a[c])) for c in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


def log_position(err: float) -> float:
    """Where ``err`` lies on the colour scale, 0 (1e-16 or less) to 1 (1 or more)."""
    lo, hi = LOG_RANGE
    if not math.isfinite(err):
        return float("nan")
    return (math.log10(max(err, 10.0 ** lo)) - lo) / (hi - lo)


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


# ----------------------------------------------------------------------
# the grid
def view_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """The 2-D shape an input is drawn as: ``(1, n)`` for 0-d and 1-D, else
    ``(shape[0], prod(rest))``."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return 1, shape[0]
    return shape[0], int(np.prod(shape[1:]))


def block_sizes(rows: int, cols: int) -> tuple[int, int]:
    """Rows and columns of the input per drawn cell, so the grid fits :data:`MAX_GRID`."""
    return max(1, math.ceil(rows / MAX_GRID[0])), max(1, math.ceil(cols / MAX_GRID[1]))


def _blocks(a: np.ndarray, fr: int, fc: int, fill) -> np.ndarray:
    rows, cols = a.shape
    padded = np.full((math.ceil(rows / fr) * fr, math.ceil(cols / fc) * fc), fill,
                     dtype=a.dtype)
    padded[:rows, :cols] = a
    return padded.reshape(padded.shape[0] // fr, fr, padded.shape[1] // fc, fc)


def pool_max(e: np.ndarray, fr: int, fc: int) -> np.ndarray:
    """Block maxima of a 2-D error grid (NaN where a block holds no measurement)."""
    if fr == 1 and fc == 1:
        return e
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks stay NaN
        return np.nanmax(_blocks(e.astype(np.float64), fr, fc, np.nan), axis=(1, 3))


def pool_any(mask: np.ndarray, fr: int, fc: int) -> np.ndarray:
    """Blocks that hold at least one True."""
    return _blocks(mask, fr, fc, False).any(axis=(1, 3))


def _cell_px(rows: int, cols: int) -> tuple[int, int]:
    """Cell width and height: square where the grid fits, taller for a row or two (a 1-D
    input stays readable)."""
    lo, hi = CELL_PX
    width = int(min(max(PLOT_SIZE[1] // max(cols, 1), lo), hi))
    height = int(min(max(PLOT_SIZE[0] // max(rows, 1), lo), hi, max(width, 24)))
    return width, max(height, min(width, hi))


# ----------------------------------------------------------------------
# the region a finding names
def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(text[start:k].strip())
            start = k + 1
    parts.append(text[start:].strip())
    return parts


def _axis_indices(part: str, size: int) -> np.ndarray | None:
    if part == ":":
        return np.arange(size)
    if re.fullmatch(r"-?\d+", part):
        k = int(part)
        return np.array([k]) if -size <= k < size else None
    if part.startswith("[") and part.endswith("]"):
        values = [int(v) for v in re.findall(r"-?\d+", part)]  # "..." (cut lists) is dropped
        return np.array([v for v in values if -size <= v < size]) if values else None
    match = re.fullmatch(r"(-?\d*):(-?\d*)(?::(-?\d*))?", part)
    if match:
        start, stop, step = (int(g) if g else None for g in match.groups())
        return np.arange(size)[slice(start, stop, step)]
    return None


def region_mask(text: str, shape: tuple[int, ...]) -> tuple[str, np.ndarray | None]:
    """The first NumPy index in ``text`` that fits an input of ``shape`` (``"... confined
    to w[:, 40] ..."``): ``(index text, boolean mask)``, or ``("", None)``."""
    for match in re.finditer(r"(input \d+|[A-Za-z_][A-Za-z_0-9]*)\[", text):
        start, depth = match.end() - 1, 0
        for end in range(start, len(text)):
            depth += text[end] == "["
            depth -= text[end] == "]"
            if depth == 0:
                break
        else:
            continue
        parts = _split_top(text[start + 1:end])
        if len(parts) != len(shape) or not shape:
            continue
        axes = [_axis_indices(p, s) for p, s in zip(parts, shape)]
        if any(a is None or len(a) == 0 for a in axes):
            continue
        mask = np.zeros(shape, dtype=bool)
        mask[np.ix_(*axes)] = True
        return text[match.start():end + 1], mask
    return "", None


def region_of(problems: Sequence[Finding], result: InputResult
              ) -> tuple[str, np.ndarray | None]:
    """The region a ``slice`` finding names for ``result``'s input: ``(index text, mask)``."""
    for p in problems:
        if getattr(p, "kind", "") == "slice" and getattr(p, "input", None) == result.index:
            text, mask = region_mask(str(p), result.shape)
            if mask is not None:
                return text, mask
    return "", None


def _rectangles(cells: np.ndarray) -> list[tuple[int, int, int, int]]:
    """``(row0, row1, col0, col1)`` rectangles (inclusive) covering the True cells: vertical
    runs per column, merged across neighbouring columns with the same run."""
    runs: dict[tuple[int, int], list[int]] = {}
    rows, cols = cells.shape
    for c in range(cols):
        r = 0
        while r < rows:
            if cells[r, c]:
                r0 = r
                while r + 1 < rows and cells[r + 1, c]:
                    r += 1
                runs.setdefault((r0, r), []).append(c)
            r += 1
    rects = []
    for (r0, r1), columns in runs.items():
        c0 = prev = columns[0]
        for c in columns[1:] + [None]:
            if c is not None and c == prev + 1:
                prev = c
                continue
            rects.append((r0, r1, c0, prev))
            if c is not None:
                c0 = prev = c
    return rects


# ----------------------------------------------------------------------
# SVG
def _ticks(n: int, per_cell: int, cell: int) -> list[tuple[float, int]]:
    """About five ``(pixel, index)`` ticks along an axis of ``n`` indices."""
    if n <= 1:
        return [(cell / 2, 0)]
    raw = n / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(int(step), 1)
    return [(k * cell / per_cell + cell / per_cell / 2, k) for k in range(0, n, step)]


def _axes(shape: tuple[int, ...], rows: int, cols: int, fr: int, fc: int, cw: int, ch: int
          ) -> list[str]:
    top, left = MARGIN[0], MARGIN[3]
    width, height = math.ceil(cols / fc) * cw, math.ceil(rows / fr) * ch
    parts = ['<g class="gp-axes" font-size="11" fill="#57606a">']
    for x, k in _ticks(cols, fc, cw):
        parts.append(f'<line x1="{left + x:.1f}" y1="{top + height}" x2="{left + x:.1f}" '
                     f'y2="{top + height + 4}" stroke="#57606a"/>'
                     f'<text x="{left + x:.1f}" y="{top + height + 16}" '
                     f'text-anchor="middle">{k}</text>')
    for y, k in _ticks(rows, fr, ch):
        parts.append(f'<line x1="{left - 4}" y1="{top + y:.1f}" x2="{left}" y2="{top + y:.1f}" '
                     f'stroke="#57606a"/><text x="{left - 6}" y="{top + y + 4:.1f}" '
                     f'text-anchor="end">{k}</text>')
    if len(shape) >= 2:
        across = "axis 1" if len(shape) == 2 else f"axes 1-{len(shape) - 1} flattened"
        down = "axis 0"
    else:
        across, down = ("axis 0" if shape else "scalar"), ""
    blocks = f", {fc} per cell" if fc > 1 else ""
    parts.append(f'<text class="gp-xlabel" x="{left + width / 2:.1f}" y="{top + height + 36}" '
                 f'text-anchor="middle">{across} (index 0-{cols - 1}{blocks})</text>')
    if down:
        blocks = f", {fr} per cell" if fr > 1 else ""
        parts.append(f'<text class="gp-ylabel" transform="translate(14,{top + height / 2:.1f}) '
                     f'rotate(-90)" text-anchor="middle">{down} (0-{rows - 1}{blocks})</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" '
                 'stroke="#8c959f"/></g>')
    return parts


def _region_parts(mask: np.ndarray | None, fr: int, fc: int, cw: int, ch: int, fill: bool
                  ) -> list[str]:
    if mask is None:
        return []
    rows, cols = view_shape(mask.shape)
    cells = pool_any(mask.reshape(rows, cols), fr, fc)
    top, left = MARGIN[0], MARGIN[3]
    style = (f'fill="{REGION_COLOR}" fill-opacity="0.28" stroke="{REGION_COLOR}"' if fill
             else f'fill="none" stroke="{REGION_COLOR}"')
    return [f'<rect class="gp-region" x="{left + c0 * cw - 1}" y="{top + r0 * ch - 1}" '
            f'width="{(c1 - c0 + 1) * cw + 2}" height="{(r1 - r0 + 1) * ch + 2}" {style} '
            'stroke-width="2.5"/>' for r0, r1, c0, c1 in _rectangles(cells)]


def _svg_open(cls: str, rows: int, cols: int, cw: int, ch: int, label: str) -> str:
    top, right, bottom, left = MARGIN
    width = cols * cw + left + right
    height = rows * ch + top + bottom
    return (f'<svg class="{cls}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(label)}">')


def heatmap_svg(result: InputResult, analytic: np.ndarray, numeric: np.ndarray,
                mask: np.ndarray | None = None) -> tuple[str, float, tuple[int, int]]:
    """The error heat map of one input: ``(svg, worst relative error, (fr, fc))``."""
    err = relative_error_grid(analytic, numeric)
    rows, cols = view_shape(result.shape)
    err2 = err.reshape(rows, cols)
    fr, fc = block_sizes(rows, cols)
    grid = pool_max(err2, fr, fc)
    g_rows, g_cols = grid.shape
    cw, ch = _cell_px(g_rows, g_cols)
    top, left = MARGIN[0], MARGIN[3]
    tooltips = fr == 1 and fc == 1 and grid.size <= MAX_TOOLTIPS
    a2 = np.asarray(analytic, dtype=np.float64).reshape(rows, cols)
    n2 = np.asarray(numeric, dtype=np.float64).reshape(rows, cols)
    parts = [_svg_open("gp-heatmap", g_rows, g_cols, cw, ch,
                       f"heat map of the relative error of input {result.label}")]
    for r in range(g_rows):
        for c in range(g_cols):
            e = float(grid[r, c])
            rect = (f'<rect x="{left + c * cw}" y="{top + r * ch}" width="{cw}" '
                    f'height="{ch}" fill="{color(log_position(e))}"')
            if tooltips:  # unaggregated: cell (r, c) is flat index r * cols + c of the input
                coord = tuple(int(k) for k in np.unravel_index(r * cols + c, result.shape))
                parts.append(rect + f'><title>{coord}: analytic {_fmt(a2[r, c])}, numeric '
                             f'{_fmt(n2[r, c])}, rel. error {_fmt(e)}</title></rect>')
            else:
                parts.append(rect + "/>")
    parts += _region_parts(mask, fr, fc, cw, ch, fill=False)
    parts += _axes(result.shape, rows, cols, fr, fc, cw, ch)
    parts.append("</svg>")
    return "".join(parts), float(np.nanmax(err, initial=0.0)), (fr, fc)


def sampled_svg(result: InputResult, mask: np.ndarray | None = None
                ) -> tuple[str, tuple[int, int]]:
    """An input without per-coordinate measurements: its grid (axes, blocks), the region
    found wrong (filled) and the worst sampled coordinates (dots coloured by error)."""
    rows, cols = view_shape(result.shape)
    fr, fc = block_sizes(rows, cols)
    g_rows, g_cols = math.ceil(rows / fr), math.ceil(cols / fc)
    cw, ch = _cell_px(g_rows, g_cols)
    top, left = MARGIN[0], MARGIN[3]
    parts = [_svg_open("gp-sampled", g_rows, g_cols, cw, ch,
                       f"where the worst sampled coordinates of input {result.label} lie"),
             f'<rect x="{left}" y="{top}" width="{g_cols * cw}" height="{g_rows * ch}" '
             'fill="#eef1f4"/>']
    parts += _region_parts(mask, fr, fc, cw, ch, fill=True)
    for coord, a, n in result.worst:
        flat = int(np.ravel_multi_index(coord, result.shape)) if result.shape else 0
        r, c = divmod(flat, cols)
        e = abs(a - n) / max(abs(a), abs(n), 1e-300)
        x, y = left + (c // fc + 0.5) * cw, top + (r // fr + 0.5) * ch
        parts.append(f'<circle class="gp-worst" cx="{x:.1f}" cy="{y:.1f}" '
                     f'r="{max(min(cw, ch) / 2, 5):.1f}" fill="{color(log_position(e))}" '
                     f'stroke="#1f2328" stroke-width="1.5"><title>{coord}: analytic {_fmt(a)}, '
                     f"numeric {_fmt(n)}</title></circle>")
    parts += _axes(result.shape, rows, cols, fr, fc, cw, ch)
    parts.append("</svg>")
    return "".join(parts), (fr, fc)

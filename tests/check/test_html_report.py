"""The HTML report: self-contained, complete, and rendered for real by headless Chromium."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gradproof import check_vjp
from gradproof.check import InputResult, Report
from gradproof.check.heatmap import REGION_COLOR, region_mask
from gradproof.check.html import HEAT_COLORS, relative_error_grid, render_html, write_html
from gradproof.nn import functional as F
from tests.browser import WIDTH, all_visible, layout, screenshot


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((6, 12)), rng.standard_normal((12, 10)), rng.standard_normal(10)


def _row_bug_backward(dout, cache):
    dx, dw, db = F.affine_backward(dout, cache)
    dw = dw.copy()
    dw[4] *= 1.5  # one wrong row of dw
    return dx, dw, db


@pytest.fixture(scope="module")
def buggy_full():
    return check_vjp(F.affine, _row_bug_backward, *_inputs(), mode="full")


def test_page_is_self_contained(buggy_full):
    page = render_html(buggy_full)
    assert page.startswith("<!DOCTYPE html>")
    assert "http" not in page  # no scripts, fonts, images or styles fetched
    assert "<script" not in page
    assert "<svg" in page and "<style>" in page


def test_page_lists_inputs_problems_and_worst_coordinates(buggy_full):
    page = render_html(buggy_full)
    assert "gradproof: FAILED affine" in page
    assert page.count('class="gp-status-bad">FAIL<') == 1  # input w
    for problem in buggy_full.problems:
        assert re.sub(r"\s+", " ", str(problem)).split(";")[0] in page
    assert "Worst coordinates" in page
    coord = buggy_full.inputs[1].worst[0][0]
    assert coord[0] == 4 and f"<td>{coord}</td>" in page


def test_heat_map_marks_the_wrong_row(buggy_full):
    # one rect per coordinate of each 2-D input, and the wrong row's colours are the brightest
    page = render_html(buggy_full)
    w_map = page.split('aria-label="heat map of the relative error of input 1 (w)"')[1]
    w_map = w_map.split("</svg>")[0]
    fills = re.findall(r'<rect x="\d+" y="(\d+)" width="\d+" height="\d+" '
                       r'fill="#([0-9a-f]{6})"', w_map)
    assert len(fills) == 12 * 10
    rows = sorted({int(y) for y, _ in fills})
    bright = {rows.index(int(y)) for y, c in fills if int(c[2:4], 16) > 200}  # green channel
    assert bright == {4}


def test_relative_error_grid_is_scaled_by_the_largest_gradient():
    a = np.array([[1.0, 2.0], [0.0, 4.0]])
    n = np.array([[1.0, 2.0], [0.4, 2.0]])
    np.testing.assert_allclose(relative_error_grid(a, n), [[0, 0], [0.1, 0.5]])


def test_auto_mode_report_shows_sampled_coordinates_without_a_full_check():
    report = check_vjp(F.affine, _row_bug_backward, *_inputs())
    page = render_html(report)
    assert 'class="gp-sampled"' in page and 'class="gp-heatmap"' not in page
    assert page.count("<circle") == sum(len(r.worst) for r in report.inputs)


def test_auto_mode_report_uses_a_given_full_check_for_heat_maps(buggy_full):
    report = check_vjp(F.affine, _row_bug_backward, *_inputs())
    page = render_html(report, full=buggy_full)
    assert page.count('class="gp-heatmap"') == 3  # x, w and b (b drawn as one row)
    assert "measured by a full check of every coordinate" in page


def test_large_inputs_are_aggregated_into_a_readable_grid_with_axes():
    # a hand-made full-mode result: a full check of 80,000 coordinates would be slow
    rng = np.random.default_rng(1)
    analytic = rng.standard_normal((200, 400))
    numeric = analytic.copy()
    numeric[150, 390] += 1.0
    result = InputResult(0, "x", (200, 400), "float64", numeric=numeric, analytic=analytic)
    page = render_html(Report(verdict="failed", n_evals=0, inputs=[result], mode="full"),
                       standalone=False)
    assert "largest error of a block of 4x7 coordinates" in page
    svg = page.split('class="gp-heatmap"')[1].split("</svg>")[0]
    fills = re.findall(r'<rect x="\d+" y="\d+" width="\d+" height="\d+" fill="#([0-9a-f]{6})"',
                       svg)
    assert len(fills) == 50 * 58  # at most 64 x 64 cells, each at least 8 px
    bright = [k for k, c in enumerate(fills) if int(c[2:4], 16) > 200]
    assert bright == [(150 // 4) * 58 + 390 // 7]  # the block holding the one wrong value
    assert "axis 1 (index 0-399, 7 per cell)" in svg and "axis 0 (0-199, 4 per cell)" in svg
    assert ">100</text>" in svg and ">300</text>" in svg  # ticks in the input's indices


def test_region_index_is_parsed_into_a_mask():
    text, mask = region_mask("input 1 (w): the errors are confined to w[:, 40] (128 of 8192)",
                             (128, 64))
    assert text == "w[:, 40]" and mask.sum() == 128 and mask[:, 40].all()
    text, mask = region_mask("confined to v[:, :, 5::16] (every 16th index)", (2, 3, 64))
    assert text == "v[:, :, 5::16]" and mask.sum() == 2 * 3 * 4 and mask[1, 2, 53]
    assert region_mask("confined to index 4 along axis 0 (w[4, :])", (12, 10))[1][4].all()
    assert region_mask("no index here", (3, 3)) == ("", None)


def _column_bug(dout, cache):
    dx, dw, db = F.affine_backward(dout, cache)
    dw = dw.copy()
    dw[:, 40] *= 1.01  # one wrong column
    return dx, dw, db


@pytest.fixture(scope="module")
def column_bug():
    """A 32x128 -> 64 affine layer whose dw is wrong in column 40 (w has 8192 coordinates)."""
    rng = np.random.default_rng(0)
    inputs = (rng.standard_normal((32, 128)), rng.standard_normal((128, 64)),
              rng.standard_normal(64))
    return check_vjp(F.affine, _column_bug, *inputs), inputs


def test_the_region_found_is_drawn_on_a_large_inputs_map(column_bug):
    report, _ = column_bug
    assert any(p.kind == "slice" and "w[:, 40]" in p for p in report.problems)
    page = render_html(report)  # no full check: w's map shows the region and the samples
    w_map = page.split('where the worst sampled coordinates of input 1 (w) lie')[1]
    w_map = w_map.split("</svg>")[0]
    regions = re.findall(r'<rect class="gp-region" x="(\d+)" y="(\d+)" width="(\d+)" '
                         r'height="(\d+)"', w_map)
    assert len(regions) == 1  # one column: one tall rectangle
    assert int(regions[0][3]) > 10 * int(regions[0][2])
    assert w_map.count('class="gp-worst"') == len(report.inputs[1].worst)
    assert 'Found wrong: <span class="gp-region-text">w[:, 40]</span>' in page


def test_a_passing_inputs_caption_gives_its_own_status_not_the_verdict(column_bug):
    report, inputs = column_bug
    full = check_vjp(F.affine, _column_bug, *inputs, mode="full", wrt=[2])
    page = render_html(report, full=full)
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    b_caption = next(c for c in captions if c.startswith("input 2 (b)"))
    assert b_caption.startswith("input 2 (b): ok.")
    assert "FAILED" not in b_caption and "verdict" not in b_caption


def test_repr_html_is_a_notebook_fragment(buggy_full):
    fragment = buggy_full._repr_html_()
    assert not fragment.startswith("<!DOCTYPE") and "<html" not in fragment
    assert "gp-heatmap" in fragment and "gradproof: FAILED" in fragment


def test_text_is_escaped():
    report = check_vjp(F.relu, F.relu_backward, np.ones((2, 2)), names=["<x&y>"])
    page = render_html(report)
    assert "&lt;x&amp;y&gt;" in page and "<x&y>" not in page


# ----------------------------------------------------------------------
# headless Chromium at 1280 px: the elements are laid out and visible, the colours drawn
def _heat_pixels(rgb: np.ndarray) -> np.ndarray:
    """Pixels close to the heat-map palette (a piecewise-linear ramp between HEAT_COLORS)."""
    ramp = np.concatenate([np.linspace(a, b, 32) for a, b in zip(HEAT_COLORS, HEAT_COLORS[1:])])
    colors, index = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    dist = np.min(np.linalg.norm(colors[:, None, :] - ramp[None], axis=-1), axis=-1)
    return (dist < 12)[index.ravel()].reshape(rgb.shape[:2])


def test_chromium_renders_the_heat_map(buggy_full, tmp_path):
    page = write_html(buggy_full, tmp_path / "report.html")
    rgb = screenshot(page, tmp_path / "shot.png", tmp_path, height=1200)
    assert rgb.std() > 20  # not blank
    heat = _heat_pixels(rgb)
    rows, cols = np.nonzero(heat)
    # the legend alone is ~4,500 such pixels; the maps of x (6x12 cells) and w add far more
    assert heat.sum() > 20000, "no heat map in the screenshot"
    region = rgb[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    # the wrong row is bright (yellow), the rest dark: the map is not one flat colour
    assert (region[..., 1] > 200).sum() > 100 and (region[..., 1] < 120).sum() > 1000


def test_chromium_lays_out_a_large_inputs_map_with_axes_region_and_table(column_bug, tmp_path):
    report, inputs = column_bug
    full = check_vjp(F.affine, _column_bug, *inputs, mode="full", wrt=[0, 2])
    page = write_html(report, tmp_path / "column.html", full=full)
    boxes = layout(page, ["h1", ".gp-heatmap", ".gp-sampled", ".gp-region", ".gp-xlabel",
                          ".gp-ylabel", ".gp-worst-local", "figcaption", ".gp-legend"],
                   tmp_path)
    assert boxes["__page__"]["width"] <= WIDTH  # nothing overflows sideways at 1280 px
    for selector in ("h1", ".gp-heatmap", ".gp-sampled", ".gp-region", ".gp-xlabel",
                     ".gp-worst-local", "figcaption", ".gp-legend"):
        assert all_visible(boxes[selector]), (selector, boxes[selector])
    assert len(boxes[".gp-heatmap"]) == 2 and len(boxes[".gp-sampled"]) == 1  # x, b; w
    w_map, = boxes[".gp-sampled"]
    assert w_map["width"] >= 500 and w_map["height"] >= 500  # a readable 64 x 64 grid
    region, = boxes[".gp-region"]
    assert w_map["left"] < region["left"] < w_map["left"] + w_map["width"]
    assert region["height"] > 0.8 * (w_map["height"] - 60)  # the whole column
    table, = boxes[".gp-worst-local"]  # w's worst coordinates, beside its map
    assert table["left"] >= w_map["left"] + w_map["width"] - 1
    assert table["top"] < w_map["top"] + w_map["height"]
    rgb = screenshot(page, tmp_path / "column.png", tmp_path, height=2200)
    magenta = np.all(np.abs(rgb - [int(REGION_COLOR[k:k + 2], 16) for k in (1, 3, 5)]) < 40,
                     axis=-1)
    assert magenta.sum() > 500  # the region is drawn, not only laid out
    assert _heat_pixels(rgb).sum() > 50000  # x's and b's maps


def test_missing_chromium_skips_with_the_install_hint_unless_under_ci(monkeypatch):
    from tests import browser

    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        browser.chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        browser.chromium()

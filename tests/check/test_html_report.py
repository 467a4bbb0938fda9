"""The HTML report: self-contained, complete, and rendered for real by headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from gradproof import check_vjp
from gradproof.check import InputResult, Report
from gradproof.check.html import HEAT_COLORS, relative_error_grid, render_html, write_html
from gradproof.nn import functional as F


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
    fills = re.findall(r'<rect x="\d+" y="(\d+)"[^>]*fill="#([0-9a-f]{6})"', w_map)
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
    assert page.count("<circle") == len(report.inputs[1].worst)


def test_auto_mode_report_uses_a_given_full_check_for_heat_maps(buggy_full):
    report = check_vjp(F.affine, _row_bug_backward, *_inputs())
    page = render_html(report, full=buggy_full)
    assert page.count('class="gp-heatmap"') == 3  # x, w and b (b drawn as one row)
    assert "from a full check" in page


def test_large_inputs_are_pooled():
    # a hand-made full-mode result: a full check of 80,000 coordinates would be slow
    rng = np.random.default_rng(1)
    analytic = rng.standard_normal((200, 400))
    numeric = analytic.copy()
    numeric[150, 390] += 1.0
    result = InputResult(0, "x", (200, 400), "float64", numeric=numeric, analytic=analytic)
    page = render_html(Report(verdict="failed", n_evals=0, inputs=[result], mode="full"),
                       standalone=False)
    assert "maximum over a 3x3 block" in page
    svg = page.split('class="gp-heatmap"')[1].split("</svg>")[0]
    fills = re.findall(r'fill="#([0-9a-f]{6})"', svg)
    assert len(fills) == 67 * 134
    bright = [k for k, c in enumerate(fills) if int(c[2:4], 16) > 200]
    assert bright == [(150 // 3) * 134 + 390 // 3]  # the block holding the one wrong value


def test_repr_html_is_a_notebook_fragment(buggy_full):
    fragment = buggy_full._repr_html_()
    assert not fragment.startswith("<!DOCTYPE") and "<html" not in fragment
    assert "gp-heatmap" in fragment and "gradproof: FAILED" in fragment


def test_text_is_escaped():
    report = check_vjp(F.relu, F.relu_backward, np.ones((2, 2)), names=["<x&y>"])
    page = render_html(report)
    assert "&lt;x&amp;y&gt;" in page and "<x&y>" not in page


# ----------------------------------------------------------------------
# headless Chromium
def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and not os.environ.get("GRADPROOF_NO_BROWSER"):
        pytest.fail("chromium is not installed: apt-get install -y chromium "
                    "(or set GRADPROOF_NO_BROWSER=1 to skip the browser test explicitly)")
    return found


def _screenshot(page, tmp_path) -> np.ndarray:
    from matplotlib.image import imread

    png = tmp_path / "shot.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
           "--window-size=1200,900", page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert png.is_file(), f"chromium wrote no screenshot:\n{done.stderr[-2000:]}"
    return (imread(png)[..., :3] * 255).astype(int)  # (900, 1200, 3)


def _heat_pixels(rgb: np.ndarray) -> np.ndarray:
    """Pixels close to the heat-map palette (a piecewise-linear ramp between HEAT_COLORS)."""
    ramp = np.concatenate([np.linspace(a, b, 32) for a, b in zip(HEAT_COLORS, HEAT_COLORS[1:])])
    colors, index = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    dist = np.min(np.linalg.norm(colors[:, None, :] - ramp[None], axis=-1), axis=-1)
    return (dist < 12)[index.ravel()].reshape(rgb.shape[:2])


@pytest.mark.skipif(bool(os.environ.get("GRADPROOF_NO_BROWSER")),
                    reason="GRADPROOF_NO_BROWSER is set")
def test_chromium_renders_the_heat_map(buggy_full, tmp_path):
    page = write_html(buggy_full, tmp_path / "report.html")
    rgb = _screenshot(page.resolve(), tmp_path)
    assert rgb.std() > 20  # not blank
    heat = _heat_pixels(rgb)
    rows, cols = np.nonzero(heat)
    # the legend alone is ~4,500 such pixels (a page with no heat map has ~5,000);
    # the maps of x (6x12 cells of 28 px) and w add tens of thousands
    assert heat.sum() > 20000, "no heat map in the screenshot"
    region = rgb[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    non_white = np.any(region < 235, axis=-1)
    assert non_white.mean() > 0.3
    # the wrong row is bright (yellow), the rest dark: the map is not one flat colour
    assert (region[..., 1] > 200).sum() > 100 and (region[..., 1] < 120).sum() > 1000

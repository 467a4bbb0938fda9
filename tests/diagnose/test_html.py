"""The HTML page: self-contained, escaped, and rendered with its plots by headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from gradproof.diagnose.demos import run_demo
from gradproof.diagnose.html import render_html, write_html
from gradproof.diagnose.plots import figure_png, run_figures


@pytest.fixture(scope="module")
def runs():
    return [(f"[{r.spec.role}] {r.spec.label}", r.record, r.findings)
            for r in run_demo("relu-lr")]


def test_each_plot_renders_to_a_png(runs):
    figures = run_figures(runs[0][1])
    assert sorted(figures) == ["activations", "grad_norms", "loss", "update_ratios"]
    for fig in figures.values():
        assert figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_page_inlines_every_plot_and_lists_the_warnings(runs):
    page = render_html(runs, "relu <demo>")
    assert page.count('src="data:image/png;base64,') == 4 * len(runs)
    assert "src=\"http" not in page and "<script" not in page  # nothing to fetch
    assert "dead_relu" in page and "No warnings" in page
    assert "relu &lt;demo&gt;" in page


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium")
    return found


def test_chromium_renders_the_page_with_its_plots(runs, tmp_path):
    from matplotlib.image import imread

    page = write_html(tmp_path / "run.html", runs, "relu-lr")
    png = tmp_path / "shot.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
           "--window-size=1200,900", f"file://{os.path.abspath(page)}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert png.is_file(), f"chromium wrote no screenshot:\n{done.stderr[-2000:]}"
    rgb = (imread(png)[..., :3] * 255).astype(int)
    assert rgb.std() > 20  # not blank
    # the plots' lines and bars are the only blue on the page (matplotlib's C0, 31 119 180,
    # blended with white where thin); the warnings are the only light-orange boxes
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    bluish = ((blue > red + 40) & (blue > green + 10)).sum()
    warning_box = np.all(np.abs(rgb - [255, 244, 229]) < 4, axis=-1).sum()
    assert bluish > 500, bluish
    assert warning_box > 5000

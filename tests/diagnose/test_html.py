"""The HTML page: self-contained, escaped, and rendered with its plots by headless Chromium."""

from __future__ import annotations

import numpy as np
import pytest

from gradproof.diagnose.demos import run_demo
from gradproof.diagnose.html import render_html, write_html
from gradproof.diagnose.plots import figure_png, plot_grad_norms, run_figures, spans_decades
from tests.browser import WIDTH, all_visible, layout, screenshot


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


def test_gradient_norms_that_are_exactly_zero_are_drawn_not_dropped(runs):
    record = runs[0][1]  # relu, lr 1.0: the network dies, its gradients become exactly 0
    assert any(v == 0 for values in record.grad_norm.values() for v in values)
    ax = plot_grad_norms(record).axes[0]
    assert ax.get_yscale() == "symlog"
    drawn = np.concatenate([line.get_ydata() for line in ax.get_lines()
                            if line.get_label() in record.grad_norm])
    assert np.any(drawn == 0)  # on the axis, at 0
    assert "exactly 0" in [t.get_text() for t in ax.get_legend().get_texts()]
    healthy = runs[1][1]  # the fix: no zeros, a plain log axis
    if not any(v == 0 for values in healthy.grad_norm.values() for v in values):
        assert plot_grad_norms(healthy).axes[0].get_yscale() == "log"


def test_plots_are_drawn_large_with_readable_text(runs):
    figures = run_figures(runs[0][1])
    for name, fig in figures.items():
        width, _ = fig.get_size_inches() * fig.dpi
        assert width >= 1000, name
        for ax in fig.axes:
            assert ax.xaxis.label.get_fontsize() >= 10, name
            assert all(t.get_fontsize() >= 9 for t in ax.get_xticklabels()), name
    assert spans_decades([1e-6, 1.0]) and not spans_decades([1.0, 5.0])


def test_chromium_shows_every_plot_at_full_width(runs, tmp_path):
    page = write_html(tmp_path / "run.html", runs, "relu-lr")
    boxes = layout(page, ["h1", "h2", ".grid img", ".warning", ".quiet"], tmp_path)
    assert boxes["__page__"]["width"] <= WIDTH
    images = boxes[".grid img"]
    assert len(images) == 4 * len(runs) and all_visible(images)
    for box in images:
        assert box["width"] >= 1000  # full width at 1280 px, not a 270-px thumbnail
        assert box["width"] >= 0.95 * box["natural"]  # drawn for that size: not shrunk
    assert all_visible(boxes[".warning"]) and all_visible(boxes[".quiet"])
    rgb = screenshot(page, tmp_path / "shot.png", tmp_path, height=2600)
    assert rgb.std() > 20  # not blank
    # the plots' lines and bars are the only blue on the page (matplotlib's C0, 31 119 180,
    # blended with white where thin); the warnings are the only light-orange boxes
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    bluish = (blue > red + 40) & (blue > green + 10)
    assert bluish.sum() > 2000
    columns = np.nonzero(bluish.any(axis=0))[0]
    assert columns.max() - columns.min() > 800  # the plots span the page
    warning_box = np.all(np.abs(rgb - [255, 244, 229]) < 4, axis=-1).sum()
    assert warning_box > 5000

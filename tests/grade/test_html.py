"""The HTML page of `gradproof grade --html`: one self-contained page, the class summary
first, rendered for real by headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from gradproof.grade.html import STATUS_COLORS


def _page(class_run) -> str:
    return class_run["html"].read_text(encoding="utf-8")


def test_page_is_self_contained(class_run):
    page = _page(class_run)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")


def test_class_summary_comes_before_the_students(class_run):
    page = _page(class_run)
    summary = page.index('id="summary"')
    assert summary < page.index('id="s0"')
    for k in range(len(class_run["json"]["submissions"])):
        assert f'id="s{k}"' in page


def test_student_text_is_escaped(class_run):
    page = _page(class_run)
    # bob's in-place write quotes his code, erin printed shapes: both arrive escaped
    assert "dx[x &lt;= 0] = 0" in page
    assert "<= 0" not in page


def test_findings_and_statuses_are_on_the_page(class_run):
    page = _page(class_run)
    assert page.count('class="st st-wrong"') >= 10
    assert "writes into dout" in page and "did not finish within 4 s" in page


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and not os.environ.get("GRADPROOF_NO_BROWSER"):
        pytest.fail("chromium is not installed: apt-get install -y chromium "
                    "(or set GRADPROOF_NO_BROWSER=1 to skip the browser test explicitly)")
    return found


@pytest.mark.skipif(bool(os.environ.get("GRADPROOF_NO_BROWSER")),
                    reason="GRADPROOF_NO_BROWSER is set")
def test_chromium_renders_the_status_badges(class_run, tmp_path):
    from matplotlib.image import imread

    png = tmp_path / "shot.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
           "--window-size=1200,1600", class_run["html"].resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert png.is_file(), f"chromium wrote no screenshot:\n{done.stderr[-2000:]}"
    rgb = (imread(png)[..., :3] * 255).astype(int)
    assert rgb.std() > 20  # not blank

    def pixels(status: str) -> int:
        hex_bg = STATUS_COLORS[status][1].lstrip("#")
        color = np.array([int(hex_bg[i:i + 2], 16) for i in (0, 2, 4)])
        return int((np.abs(rgb - color).sum(axis=-1) <= 6).sum())

    # the summary's header badges and the students' tables: green, red and yellow badges
    assert pixels("correct") > 500, "no green 'correct' badge rendered"
    assert pixels("wrong") > 200, "no red 'wrong' badge rendered"
    assert pixels("not-implemented") > 100, "no yellow 'not-implemented' badge rendered"

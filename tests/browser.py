"""Headless Chromium for the page tests: screenshots and the layout of named elements.

Chromium is a system package (Debian's ``chromium``). Without it the browser
tests are skipped with the install hint, except under ``CI=true``, where they
must run (``.ci/run`` installs it) and its absence fails them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

WIDTH = 1280  # the viewport width every page test renders at
INSTALL_HINT = "apt-get install -y chromium"


def chromium() -> str:
    """The browser's path; skip (fail under CI) when it is not installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = f"chromium is not installed: {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI is set: the browser tests must run)")
    pytest.skip(message + " (browser tests skipped; they run under CI=true)")


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def screenshot(page: Path, png: Path, tmp_path: Path, height: int = 1600) -> np.ndarray:
    """``page`` rendered ``WIDTH`` px wide into ``png``; its pixels as ints (H, W, 3)."""
    from matplotlib.image import imread

    done = _run([f"--screenshot={png}", f"--window-size={WIDTH},{height}",
                 Path(page).resolve().as_uri()], tmp_path)
    assert png.is_file(), f"chromium wrote no screenshot:\n{done.stderr[-2000:]}"
    return (imread(png)[..., :3] * 255).astype(int)


_MEASURE = """
<script>
window.addEventListener("load", () => {
  const out = {};
  for (const selector of %s) {
    out[selector] = [...document.querySelectorAll(selector)].map((el) => {
      const r = el.getBoundingClientRect(), s = getComputedStyle(el);
      return {left: r.left, top: r.top + scrollY, width: r.width, height: r.height,
              visible: s.display !== "none" && s.visibility !== "hidden" && r.width > 0
                       && r.height > 0 && Number(s.opacity) > 0,
              natural: el.naturalWidth || null, text: (el.textContent || "").slice(0, 80)};
    });
  }
  out.__page__ = {width: document.documentElement.scrollWidth, viewport: innerWidth};
  const pre = document.createElement("pre");
  pre.id = "gp-layout";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def layout(page: Path, selectors: list[str], tmp_path: Path) -> dict:
    """Where each element matching ``selectors`` is laid out at ``WIDTH`` px: a list of
    ``{left, top, width, height, visible, natural, text}`` per selector, and
    ``__page__`` (document and viewport width). Measured by a script added to a copy."""
    text = Path(page).read_text(encoding="utf-8")
    probe = tmp_path / f"measure-{Path(page).name}"
    probe.write_text(text.replace("</body>", _MEASURE % json.dumps(selectors) + "</body>"),
                     encoding="utf-8")
    done = _run(["--dump-dom", "--virtual-time-budget=5000", f"--window-size={WIDTH},900",
                 probe.resolve().as_uri()], tmp_path)
    found = re.search(r'<pre id="gp-layout">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the layout probe did not run:\n{done.stderr[-2000:]}"
    import html

    return json.loads(html.unescape(found.group(1)))


def all_visible(boxes: list[dict], viewport: int = WIDTH) -> bool:
    """Every box has a size and lies within the viewport's width."""
    return bool(boxes) and all(b["visible"] and b["left"] >= 0
                               and b["left"] + b["width"] <= viewport + 0.5 for b in boxes)

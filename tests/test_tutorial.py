"""examples/tutorial.py runs end to end: the bug is caught, the fix passes."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

TUTORIAL = Path(__file__).resolve().parents[1] / "examples" / "tutorial.py"


def test_tutorial_catches_the_bug_and_passes_the_fix():
    done = subprocess.run([sys.executable, str(TUTORIAL)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "gradproof: FAILED swish" in out  # the buggy backward's report is shown
    assert "bug caught: True" in out
    assert "gradproof: OK swish" in out
    assert "fixed backward passes: True" in out
    assert "float64 and float32 checks pass" in out
    assert "bug caught in the last column: True" in out
    assert out.index("bug caught: True") < out.index("fixed backward passes: True")


def test_tutorial_has_cells():
    text = TUTORIAL.read_text()
    assert text.count("# %%") >= 8


def test_the_tutorials_command_line_checks_the_buggy_backward(tmp_path):
    found = re.search(r"#     (gradproof check examples/tutorial.py:swish .*?) \\\n#\s+(.*)",
                      TUTORIAL.read_text())
    command = f"{found.group(1)} {found.group(2)}"
    args = shlex.split(command)
    assert "--backward" in args and args[args.index("--backward") + 1] == "swish_backward_buggy"
    args[args.index("--html") + 1] = str(tmp_path / "report.html")
    gradproof = Path(sys.executable).parent / "gradproof"
    done = subprocess.run([str(gradproof), *args[1:]], cwd=TUTORIAL.parents[1],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr  # the bug is found
    assert done.stdout.startswith("gradproof: FAILED swish")
    page = (tmp_path / "report.html").read_text()
    assert 'class="gp-heatmap"' in page and "FAILED swish" in page

"""examples/tutorial.py runs end to end: the bug is caught, the fix passes."""

from __future__ import annotations

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

"""One grading run of the sample submissions, shared by the tests that read its JSON and HTML.

The run goes through the real command line (a subprocess, as a teacher runs it) with a
short --timeout for erin's infinite loop and a small --memory for grace's memory bombs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parent / "sample_submissions"


@pytest.fixture(scope="session")
def class_run(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("grades")
    html = out / "grades.html"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "gradproof", "grade", str(SAMPLES), "--json", "--html", str(html),
         "--timeout", "4", "--memory", "512", "--jobs", "2", "--quiet"],
        capture_output=True, text=True, timeout=300, env=env)
    return {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr,
            "json": json.loads(done.stdout) if done.stdout.strip() else None, "html": html}

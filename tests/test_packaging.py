"""pyproject.toml: installs without deprecation warnings; the pytest plugin's entry point."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

# tomllib is Python 3.11+; the project supports 3.10, so the few lines are read as text
PYPROJECT = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()


def test_license_is_an_spdx_string_not_the_deprecated_table():
    assert re.search(r'^license = "MIT"$', PYPROJECT, re.M)
    assert not re.search(r"^license = \{", PYPROJECT, re.M)


def test_pytest_entry_point_is_named_as_the_plugin_module():
    # -p gradproof.pytest_plugin / pytest_plugins = [...] then find it registered already
    section = PYPROJECT.split("[project.entry-points.pytest11]")[1].split("\n[")[0]
    lines = [ln for ln in section.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines == ['"gradproof.pytest_plugin" = "gradproof.pytest_plugin"']
    declared = {"gradproof.pytest_plugin": "gradproof.pytest_plugin"}
    installed = {ep.name: ep.value for ep in entry_points(group="pytest11")
                 if ep.value == "gradproof.pytest_plugin"}
    assert installed == declared, "reinstall: pip install -e ."

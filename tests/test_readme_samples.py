"""The README's sample outputs are generated from the code, so they cannot drift.

Each sample in README.md follows a marker comment::

    <!-- sample: NAME (generated: python tests/test_readme_samples.py --update) -->
    ```
    ...the output...
    ```

The test regenerates every sample and compares (the seconds of a run are
normalised); ``python tests/test_readme_samples.py --update`` rewrites them.
The README's "checked with N forward calls" figure is checked the same way.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = re.compile(r"<!-- sample: (\w+) [^>]*-->\n```\n(.*?)```\n", re.S)


def _affine_inputs():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((32, 128)), rng.standard_normal((128, 64)),
            rng.standard_normal(64))


def affine(x, w, b):
    return x @ w + b, (x, w)


def _report_text(report) -> str:
    """The report as printed, up to its tolerances (the sample stops there)."""
    lines = str(report).splitlines()
    if "tolerances:" in lines:
        lines = lines[:lines.index("tolerances:")] + ["..."]
    return "\n".join(lines) + "\n"


def _code_before(marker: str) -> str:
    """The ```python block that comes right before the sample ``marker`` in the README."""
    text = README.read_text(encoding="utf-8")
    head = text[:text.index(f"<!-- sample: {marker} ")]
    return head[head.rindex("```python\n") + len("```python\n"):head.rindex("```")]


def readme_check_vjp() -> str:
    """The README's first example, run as it is written there (db keeps its axis)."""
    import gradproof

    namespace: dict = {}
    try:
        exec(compile(_code_before("check_vjp_affine"), "README.md", "exec"), namespace)
    except gradproof.GradientError:  # its last line: report.raise_if_failed()
        pass
    return _report_text(namespace["report"])


def correct_affine_calls() -> int:
    import gradproof

    def affine_backward(dout, cache):
        x, w = cache
        return dout @ w.T, x.T @ dout, dout.sum(axis=0)

    return gradproof.check_vjp(affine, affine_backward, *_affine_inputs()).n_evals


SAMPLES = {"check_vjp_affine": readme_check_vjp}


def _normalise(text: str) -> str:
    return re.sub(r"\d+\.\d+ s\)", "S s)", text)


def test_readme_samples_match_a_real_run():
    text = README.read_text(encoding="utf-8")
    found = {name: body for name, body in MARKER.findall(text)}
    assert set(found) == set(SAMPLES), f"README samples {sorted(found)} vs {sorted(SAMPLES)}"
    for name, make in SAMPLES.items():
        assert _normalise(found[name]) == _normalise(make()), (
            f"README sample {name!r} is out of date: python tests/test_readme_samples.py "
            "--update")


def test_readme_forward_call_count_is_measured():
    text = README.read_text(encoding="utf-8")
    match = re.search(r"affine layer is checked with (\d+) forward calls", text)
    assert match, "the README's forward-call figure is missing"
    assert int(match.group(1)) == correct_affine_calls()


def update() -> None:
    text = README.read_text(encoding="utf-8")

    def replace(match: re.Match) -> str:
        head = match.group(0).split("```\n", 1)[0]
        return f"{head}```\n{SAMPLES[match.group(1)]()}```\n"

    text = MARKER.sub(replace, text)
    text = re.sub(r"(affine layer is checked with )\d+( forward calls)",
                  lambda m: f"{m.group(1)}{correct_affine_calls()}{m.group(2)}", text)
    README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    if "--update" in sys.argv:
        sys.path.insert(0, str(README.parent / "src"))
        update()
        print(f"updated {README}")

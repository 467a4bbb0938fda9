"""Report.to_dict(): one JSON shape, described by docs/report-schema.json, for every report."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from gradproof import check_vjp
from gradproof.check.report import REPORT_SCHEMA_VERSION
from gradproof.zoo import cases
from tests.report_schema import SCHEMA, errors, validate


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_schema_version_is_the_reports():
    assert SCHEMA["$defs"]["version"]["const"] == REPORT_SCHEMA_VERSION
    report = check_vjp(lambda x: (2 * x, None), lambda d, c: 2 * d, np.ones(3))
    assert report.to_dict()["version"] == REPORT_SCHEMA_VERSION


@pytest.fixture(scope="module")
def zoo_reports():
    reports = {}
    for name, case in cases().items():
        options = {} if case.wrt is None else {"wrt": case.wrt}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reports[name] = check_vjp(case.forward, case.backward, *case.inputs(), **options)
    return reports


def test_every_zoo_report_validates_against_the_schema(zoo_reports):
    verdicts = set()
    for name, report in zoo_reports.items():
        document = report.to_dict()
        try:
            validate(document)
        except AssertionError as exc:
            raise AssertionError(f"zoo case {name}: {exc}") from None
        verdicts.add(document["verdict"])
    assert {"ok", "failed"} <= verdicts


def test_messages_hold_no_numpy_scalar_reprs(zoo_reports):
    for name, report in zoo_reports.items():
        for text in _strings(report.to_dict()):
            assert "np.int" not in text and "np.float" not in text, (name, text)


def test_non_finite_numbers_are_null_with_a_flag():
    # a forward that is NaN at the point: nothing is measured, the step is NaN
    report = check_vjp(lambda x: (np.log(x), x), lambda d, x: d / x, np.array([1.0, -1.0, 2.0]))
    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    validate(document)
    assert document["inputs"][0]["nonfinite"] == {"step": "nan"}
    for entry in document["inputs"]:
        for key in ("max_rel_error", "tol", "step"):
            assert entry[key] is None or isinstance(entry[key], float)
            assert (entry[key] is None) == (key in entry["nonfinite"])


def test_the_validator_rejects_the_old_shapes():
    report = check_vjp(lambda x: (2 * x, None), lambda d, c: 2 * d, np.ones(3)).to_dict()
    assert errors(report) == []
    old = json.loads(json.dumps(report))
    old["inputs"][0]["step"] = "nan"
    assert any("step" in e for e in errors(old))
    del old["version"]
    assert errors(old)

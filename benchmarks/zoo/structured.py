"""gradproof's default check on the zoo's structured, domain and precision families.

    python benchmarks/zoo/structured.py [--family structured spatial] [--case NAME] [--seed 0]

For every case of the chosen families (default: structured, spatial, sequence,
domain, precision) it runs ``gradproof.check_vjp`` with its defaults (and the
case's ``wrt``) and prints one row: the expected verdict, gradproof's
``report.verdict`` (ok, failed, inconclusive), whether that is right (a failed
or inconclusive bug is caught; an inconclusive correct case is "unproven",
neither right nor a false alarm), forward calls, seconds, the worst input's relative error
against its tolerance, whether the worst coordinates of a bug lie inside its
``region``, and the report's first problem or note. Then the bugs missed, the
false alarms and the unproven correct cases.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

import gradproof  # noqa: E402
from gradproof.zoo import FAMILIES, cases  # noqa: E402
from gradproof.zoo.runners import CountingForward  # noqa: E402

NEW_FAMILIES = ("structured", "spatial", "sequence", "domain", "precision")


def _judgement(kind: str, verdict: str) -> str:
    """'right', 'WRONG' or, for an inconclusive correct case, 'unproven'."""
    if kind == "bug":
        return "right" if verdict != "ok" else "WRONG"
    return {"ok": "right", "inconclusive": "unproven"}.get(verdict, "WRONG")


def _worst_input(report):
    """The checked input whose error is largest against its tolerance."""
    checked = [r for r in report.inputs if getattr(r, "checked", True)]
    if not checked:
        return None

    def ratio(r):
        tol = getattr(r, "tol", 0.0) or 0.0
        err = getattr(r, "max_rel_error", 0.0) or 0.0
        return (not r.ok, err / tol if tol > 0 else float("inf") if err > 0 else 0.0)

    return max(checked, key=ratio)


def _inside_region(case, inputs, report) -> str:
    """'yes' when every worst coordinate of every failing input lies in the case's region."""
    if case.kind != "bug" or case.region is None:
        return "-"
    region = case.region(inputs)
    coords = [(r.index, c) for r in report.inputs if not r.ok
              for c, *_ in (getattr(r, "worst", None) or []) if c is not None]
    if not coords:
        return "no coords"
    inside = [i in region and bool(region[i][tuple(c)]) for i, c in coords]
    return "yes" if all(inside) else f"{sum(inside)}/{len(inside)}"


def _message(report) -> str:
    lines = [str(p) for p in report.problems] or list(getattr(report, "notes", []))
    text = (lines[0] if lines else "").replace("\n", " ")
    return text[:150]


def measure(case, seed: int = 0) -> dict:
    """Run check_vjp with defaults on one case; what a row of the table needs."""
    inputs = case.inputs()
    forward = CountingForward(case.forward)
    start = time.perf_counter()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        report = gradproof.check_vjp(forward, case.backward, *inputs, wrt=case.wrt, seed=seed)
    seconds = time.perf_counter() - start
    worst = _worst_input(report)
    return {
        "case": case.name, "family": case.family, "kind": case.kind,
        "verdict": report.verdict, "right": _judgement(case.kind, report.verdict),
        "calls": forward.calls, "seconds": seconds,
        "error": getattr(worst, "max_rel_error", float("nan")) if worst else float("nan"),
        "tol": getattr(worst, "tol", float("nan")) if worst else float("nan"),
        "worst_input": getattr(worst, "index", None) if worst else None,
        "inside": _inside_region(case, inputs, report), "message": _message(report),
    }


def format_row(row: dict) -> str:
    right = {"WRONG": "**WRONG**"}.get(row["right"], row["right"])
    return (f"| {row['case']} | {row['family']} | {row['kind']} | {row['verdict']} ({right}) | "
            f"{row['calls']} | {row['seconds']:.2f} | input {row['worst_input']}: "
            f"{row['error']:.2g} vs {row['tol']:.2g} | {row['inside']} | {row['message']} |")


HEADER = ("| case | family | kind | gradproof | calls | seconds | worst error vs tol | "
          "worst coords in region | first problem or note |\n|---|---|---|---|---|---|---|---|---|")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", nargs="+", choices=FAMILIES, default=list(NEW_FAMILIES))
    parser.add_argument("--case", action="append", default=[], metavar="NAME")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    selected = [c for c in cases().values() if c.family in args.family
                and (not args.case or c.name in args.case)]
    print(HEADER, flush=True)
    rows = []
    for case in selected:
        rows.append(measure(case, args.seed))
        print(format_row(rows[-1]), flush=True)
    missed = [r["case"] for r in rows if r["kind"] == "bug" and r["right"] == "WRONG"]
    false = [r["case"] for r in rows if r["kind"] != "bug" and r["right"] == "WRONG"]
    unproven = [r["case"] for r in rows if r["right"] == "unproven"]
    inconclusive_bugs = sum(r["kind"] == "bug" and r["verdict"] == "inconclusive" for r in rows)
    n_bugs = sum(r["kind"] == "bug" for r in rows)
    print(f"\nbugs caught {n_bugs - len(missed)} / {n_bugs} ({inconclusive_bugs} as inconclusive); "
          f"missed: {', '.join(missed) or 'none'}")
    print(f"false alarms {len(false)} / {len(rows) - n_bugs}: {', '.join(false) or 'none'}")
    print(f"inconclusive on correct cases {len(unproven)}: {', '.join(unproven) or 'none'}")
    print(f"forward calls {sum(r['calls'] for r in rows)}, "
          f"seconds {sum(r['seconds'] for r in rows):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

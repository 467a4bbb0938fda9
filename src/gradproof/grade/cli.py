"""``gradproof grade PATH...``: grade students' layer files (see docs/grade.md).

Exit status: 0 when every function found was graded (whatever its status),
1 when the grader itself failed on some function, 2 for a usage error (a path
that does not exist, nothing gradable found, a bad option).
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register"]


def _grade(args: argparse.Namespace) -> int:
    from . import DiscoveryError, Limits, format_text, grade_paths, to_json

    if args.timeout <= 0 or args.memory <= 0 or args.jobs < 1 or args.max_evals < 10:
        print("gradproof grade: error: --timeout and --memory must be positive, --jobs at "
              "least 1, --max-evals at least 10", file=sys.stderr)
        return 2
    limits = Limits(timeout=args.timeout, memory_mb=args.memory)

    def progress(s) -> None:
        if not args.quiet:
            print(f"grading {s.name} ({len(s.files)} file(s))", file=sys.stderr, flush=True)

    try:
        graded = grade_paths(args.paths, limits, seed=args.seed, max_evals=args.max_evals,
                             jobs=args.jobs, progress=progress)
    except DiscoveryError as exc:
        print(f"gradproof grade: error: {exc}", file=sys.stderr)
        return 2
    if not any(g.submission.files for g in graded):
        print("gradproof grade: error: no file under "
              f"{', '.join(map(str, args.paths))} defines a CS231n function (affine_forward, "
              "batchnorm_backward, svm_loss_naive, ...)", file=sys.stderr)
        return 2
    data = to_json(graded)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_text(graded, notes=args.notes))
    if args.html:
        from .html import write_html

        path = write_html(graded, args.html)
        print(f"HTML report: {path}", file=sys.stderr if args.json else sys.stdout)
    failed = any(f["kind"] == "grader-error" for s in data["submissions"]
                 for fn in s["functions"] for f in fn["findings"])
    return 1 if failed else 0


def _extend_demo(subparsers: argparse._SubParsersAction) -> None:
    """``gradproof demo`` (registered by :mod:`gradproof.commands.check`, earlier in
    ``COMMAND_MODULES``) ends with a short grading run (:mod:`.demo`)."""
    demo = subparsers.choices.get("demo")
    if demo is None:
        return
    checks = demo.get_default("func")

    def demo_then_grade(args: argparse.Namespace) -> int:
        from .demo import run_grade_demo

        status = int(checks(args) or 0) if checks is not None else 0
        run_grade_demo()
        return status

    demo.set_defaults(func=demo_then_grade)


def register(subparsers: argparse._SubParsersAction) -> None:
    _extend_demo(subparsers)
    grade = subparsers.add_parser(
        "grade",
        help="grade CS231n-style layer files (layers.py, rnn_layers.py, classifiers)",
        description="Grade every function with a CS231n name in each submission: forward "
                    "against gradproof.nn.functional, backward with the gradient checker. "
                    "Each submission runs in its own process with time and memory limits. "
                    "Exit status: 0 graded, 1 grader failure, 2 usage error.",
        epilog="examples: gradproof grade cs231n/layers.py; gradproof grade submissions/ "
               "--html grades.html; gradproof grade submissions/ --json > grades.json",
    )
    grade.add_argument("paths", nargs="+", metavar="PATH",
                       help="a layer file, a student's folder, or a folder of submissions "
                            "(each sub-folder or .py file one student)")
    grade.add_argument("--json", action="store_true", help="print the grades as JSON")
    grade.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    grade.add_argument("--timeout", type=float, default=20.0, metavar="S",
                       help="seconds each function may take (default 20)")
    grade.add_argument("--memory", type=int, default=1024, metavar="MB",
                       help="memory a submission may allocate beyond the grader's own "
                            "(default 1024)")
    grade.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                       help="grade N submissions at a time (default 1)")
    grade.add_argument("--seed", type=int, default=0, help="seed of the inputs and the checks")
    grade.add_argument("--max-evals", type=int, default=200, metavar="N",
                       help="forward calls the checker may spend locating a wrong gradient, "
                            "per input (default 200)")
    grade.add_argument("--notes", action="store_true",
                       help="also print notes (conventions used, dtypes) under the table")
    grade.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    grade.set_defaults(func=_grade)

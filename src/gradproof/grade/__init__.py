"""``gradproof grade``: an autograder for hand-written CS231n layers.

:func:`grade_paths` finds the submissions (:mod:`.discover`), runs each in
its own process with time and memory limits (:mod:`.sandbox`, :mod:`._child`),
where every function with a CS231n name is graded against the specs table
(:mod:`.specs`): its forward against :mod:`gradproof.nn.functional`
(:mod:`.forward`), its backward with the gradient checker and the reference
gradient (:mod:`.backward`). :mod:`.report` and :mod:`.html` present the
result. See docs/grade.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .discover import DiscoveryError, Submission, discover
from .report import STATUSES, Graded, class_summary, format_text, to_json
from .sandbox import Limits, grade_files
from .specs import SPECS

__all__ = ["grade_paths", "grade_submission", "Limits", "Graded", "Submission", "STATUSES",
           "SPECS", "DiscoveryError", "to_json", "format_text", "class_summary"]


def grade_submission(submission: Submission, limits: Limits | None = None, seed: int = 0,
                     max_evals: int = 200) -> Graded:
    """Grade one student's files in a child process (restarted after a timeout or crash)."""
    t0 = time.perf_counter()
    if not submission.files:
        return Graded(submission)
    outcomes, output = grade_files(list(submission.files), limits or Limits(), seed, max_evals)
    return Graded(submission, outcomes, output, time.perf_counter() - t0)


def grade_paths(paths: list[str | Path], limits: Limits | None = None, seed: int = 0,
                max_evals: int = 200, jobs: int = 1,
                progress: Callable[[Submission], None] | None = None) -> list[Graded]:
    """Discover and grade every submission under ``paths``, ``jobs`` at a time, in order."""
    submissions = discover(paths)

    def one(s: Submission) -> Graded:
        if progress is not None:
            progress(s)
        return grade_submission(s, limits, seed, max_evals)

    if jobs <= 1 or len(submissions) <= 1:
        return [one(s) for s in submissions]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, submissions))

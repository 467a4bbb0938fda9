"""Import a student's file and find its CS231n functions (in the student's process,
:mod:`._worker`); grade each (:class:`FileGrader`, in the grading process, :mod:`._child`,
where the functions are :class:`~gradproof.grade.remote.RemoteFunction` objects).

Everything returned is a plain JSON-able dict. The parent process
(:mod:`.sandbox`) decides what to grade and watches the clock; this module
does not know it runs in a sandbox.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import sys
import time
import types
from pathlib import Path
from types import ModuleType

from .backward import BackwardResult, combine, grade_backward
from .findings import describe_exception, finding
from .forward import ForwardResult, grade_forward
from .legacy import MissingModule, compile_student, install_shims
from .specs import SPEC_BY_NAME, SPECS, Spec

__all__ = ["load_student_file", "functions_in", "FileGrader"]

_counter = itertools.count()


def _package_root(path: Path) -> tuple[Path, list[str]] | None:
    """``(top package folder, dotted parts below it)`` when ``path`` sits in a package."""
    parts = [path.stem]
    folder = path.parent
    top = None
    while (folder / "__init__.py").is_file() and folder.name.isidentifier():
        top = folder
        parts.insert(0, folder.name)
        folder = folder.parent
    if top is None or not all(p.isidentifier() for p in parts):
        return None
    return top, parts[1:]


def load_student_file(path: str | Path) -> tuple[ModuleType, list[str]]:
    """Import a student's file under a private name: ``(module, notes)``; exceptions
    propagate (the caller reports them).

    A file inside a package (``cs231n/layers.py`` with ``cs231n/__init__.py``) is
    imported as a module of that package, so that its relative imports work
    (``from .layers import *``); no package's ``__init__.py`` is run. The folder
    above the package goes first on ``sys.path`` for absolute imports
    (``from cs231n.layers import *``). Python 2 files and missing modules: see
    :mod:`.legacy` (the notes say what was done).
    """
    install_shims()
    path = Path(path).resolve()
    found = _package_root(path)
    k = next(_counter)
    if found is None:
        sys.path.insert(0, str(path.parent))
        name = f"_gradproof_student_{k}"
    else:
        top, below = found
        sys.path.insert(0, str(top.parent))
        name = f"_gradproof_package_{k}"
        _synthetic_package(name, top)
        for depth in range(1, len(below)):
            _synthetic_package(".".join([name, *below[:depth]]), top.joinpath(*below[:depth]))
        name = ".".join([name, *below])
    code, extra, notes = compile_student(path.read_text(errors="replace"), str(path))
    for _ in range(8):  # each round may find one more missing module
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        vars(module).update(extra)
        sys.modules[name] = module
        try:
            exec(code, vars(module))  # noqa: S102 - the student's own file, in the sandbox
            return module, notes
        except ModuleNotFoundError as exc:
            if not exc.name or exc.name in sys.modules:
                raise
            sys.modules[exc.name] = MissingModule(exc.name)
            notes.append(f"{path.name} imports {exc.name}, which is not there: an empty "
                         "stand-in was used (functions that need it fail when called)")
    return module, notes


def _synthetic_package(name: str, folder: Path) -> None:
    package = types.ModuleType(name)
    package.__path__ = [str(folder)]
    package.__package__ = name
    sys.modules[name] = package


def functions_in(module: ModuleType) -> list[str]:
    """The gradable functions the module defines itself (not imported), in the specs' order."""
    names = []
    for spec in SPECS:
        for name in spec.functions:
            obj = vars(module).get(name)
            if callable(obj) and getattr(obj, "__module__", None) == module.__name__:
                names.append(name)
    return names


class FileGrader:
    """Grades the functions of one imported student file, one call per function.

    A backward needs its forward's result (the convention it uses, whether it
    matches the reference); it is computed once and kept. ``blocked`` names
    forwards that did not finish in an earlier process (a timeout or a crash):
    their backward functions are not graded.
    """

    def __init__(self, module: ModuleType, files: list[str], seed: int = 0,
                 max_evals: int = 200, blocked: dict[str, str] | None = None):
        self.module = module
        self.files = files
        self.seed = seed
        self.max_evals = max_evals
        self.blocked = dict(blocked or {})
        self._forward: dict[str, ForwardResult] = {}

    def _fn(self, name: str):
        obj = vars(self.module).get(name)
        return obj if callable(obj) else None

    def forward_result(self, spec: Spec) -> ForwardResult:
        if spec.forward not in self._forward:
            self._forward[spec.forward] = grade_forward(spec, self._fn(spec.forward), self.files,
                                                        self.seed)
        return self._forward[spec.forward]

    def grade(self, name: str) -> dict:
        """``{"name", "status", "findings", "seconds"}`` (and ``"parts"`` for a loss)."""
        t0 = time.perf_counter()
        spec = SPEC_BY_NAME[name]
        try:
            result = self._grade(spec, name)
        except MemoryError:  # the student's data filled the memory limit
            result = {"status": "error", "findings": [finding(
                "out-of-memory", f"grading {name} ran out of memory (the grader's memory "
                "limit): the function allocates too much, or an earlier one leaked")]}
        except Exception as exc:  # noqa: BLE001 - a grader bug must not lose the others
            result = {"status": "error", "findings": [finding(
                "grader-error", f"the grader failed on {name}: {describe_exception(exc, [])}; "
                "please report this")]}
        result = {"name": name, **result, "seconds": round(time.perf_counter() - t0, 3)}
        return result

    def _grade(self, spec: Spec, name: str) -> dict:
        if name == spec.forward and spec.kind == "layer":
            fwd = self.forward_result(spec)
            return {"status": fwd.status, "findings": fwd.findings}
        if name == spec.forward:  # a loss: its value, then its gradient
            fwd = self.forward_result(spec)
            if fwd.status not in ("correct", "wrong"):  # raised, None, or the template's zeros
                return {"status": fwd.status, "findings": fwd.findings,
                        "parts": {"value": fwd.status, "gradient": "not graded"}}
            grad = self._gradient(spec, name, None, fwd)
            findings = fwd.findings + [f for f in grad.findings if f not in fwd.findings]
            return {"status": combine(fwd.status, grad.status), "findings": findings,
                    "parts": {"value": fwd.status, "gradient": grad.status}}
        if spec.forward in self.blocked:
            return {"status": "error", "findings": [finding("not-graded", (
                f"{name} could not be graded: {spec.forward} "
                f"{self.blocked[spec.forward]}"))]}
        if self._fn(spec.forward) is None:
            return {"status": "error", "findings": [finding("not-graded", (
                f"{name} could not be graded: this file defines no {spec.forward} (the "
                "backward needs its cache)"))]}
        fwd = self.forward_result(spec)
        result = self._gradient(spec, name, self._fn(name), fwd)
        return {"status": result.status, "findings": result.findings}

    def _gradient(self, spec: Spec, name: str, backward, fwd: ForwardResult) -> BackwardResult:
        return grade_backward(spec, self._fn(spec.forward), backward, name, fwd, self.files,
                              seed=self.seed, max_evals=self.max_evals)

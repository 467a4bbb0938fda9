"""Which files belong to which student: ``gradproof grade PATH...``.

* A file is one submission.
* A folder that is a Python package (has ``__init__.py``), that holds one
  (``alice/cs231n/__init__.py``), or whose gradable files have the assignments'
  names (``layers.py``, ``rnn_layers.py``, ``linear_svm.py``...) with no
  sub-folder holding more, is one submission: every gradable file in it.
* Any other folder is a class: each sub-folder is one student (every gradable
  file inside, at any depth), and each gradable file directly in it is one
  student too.

A file is gradable when its text defines a CS231n name (``def affine_forward(``).
Hidden folders, ``__pycache__``, ``.ipynb_checkpoints`` and virtual
environments are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .sandbox import names_in_source

__all__ = ["Submission", "discover", "DiscoveryError"]

_SKIP = {"__pycache__", ".ipynb_checkpoints", "site-packages", "node_modules", "venv", ".venv",
         "env"}


class DiscoveryError(Exception):
    """A PATH that does not exist or holds nothing to grade (a usage error)."""


@dataclass(frozen=True)
class Submission:
    """One student: a display name, the path given for it, its gradable files."""

    name: str
    path: Path
    files: tuple[Path, ...]


def _gradable_files(folder: Path) -> list[Path]:
    out = []
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(folder).parts
        if any(p in _SKIP or p.startswith(".") for p in rel[:-1]):
            continue
        if names_in_source(path):
            out.append(path)
    return out


# the assignments' own file names: a folder holding them directly is one student's
ASSIGNMENT_FILES = {"layers", "rnn_layers", "layer_utils", "fast_layers", "linear_svm",
                    "softmax", "linear_classifier", "neural_net", "fc_net", "cnn"}


def _subfolders(folder: Path) -> list[Path]:
    return [sub for sub in sorted(folder.iterdir())
            if sub.is_dir() and not sub.name.startswith(".") and sub.name not in _SKIP]


def _is_single(folder: Path) -> bool:
    """One student's folder: a package, a folder holding a package, or a folder whose
    gradable files carry the assignment's names (layers.py) with no student sub-folders."""
    subs = _subfolders(folder)
    if (folder / "__init__.py").is_file() or any((s / "__init__.py").is_file() for s in subs):
        return True
    top = [p for p in folder.glob("*.py") if names_in_source(p)]
    return bool(top) and all(p.stem in ASSIGNMENT_FILES for p in top) and \
        not any(_gradable_files(s) for s in subs)


def discover(paths: list[str | Path]) -> list[Submission]:
    """The submissions under ``paths``, in the order given (folders sorted by name)."""
    out: list[Submission] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise DiscoveryError(f"{str(path)!r} does not exist; give layer files (layers.py) "
                                 "or folders of submissions")
        if path.is_file():
            if path.suffix != ".py":
                raise DiscoveryError(f"{str(path)!r} is not a Python file")
            out.append(Submission(path.stem, path, (path,) if names_in_source(path) else ()))
            continue
        if _is_single(path):
            out.append(Submission(path.resolve().name, path, tuple(_gradable_files(path))))
            continue
        for entry in sorted(path.iterdir()):
            if entry.name.startswith(".") or entry.name in _SKIP:
                continue
            if entry.is_dir():
                files = _gradable_files(entry)
                out.append(Submission(entry.name, entry, tuple(files)))
            elif entry.suffix == ".py" and names_in_source(entry):
                out.append(Submission(entry.stem, entry, (entry,)))
    return out

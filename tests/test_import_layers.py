"""Imports run one way, downward: the floors of gradproof and who may import whom.

Every module under ``src/gradproof`` is parsed (not imported) and every import
in it is read, at any depth (inside functions too, where a lazy import would
hide a cycle). Each module belongs to a part, by the longest module prefix in
``PARTS``; a part may import the parts on the floors below its own, never one
on its own floor or above. So the graph between parts has no cycles, and
``nn``, the ground floor of the library, imports no ``optim``, ``data``,
``train`` or ``recipes``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "gradproof"

#: Floors from the ground up: a part may import the parts on lower floors.
FLOORS: list[tuple[str, ...]] = [
    ("errors",),  # the exceptions (and the shared argument checks)
    ("check",),  # the checker: numerical derivatives, verdicts, reports (NumPy only)
    ("nn",),  # functional layers, modules, models; the numeric layer uses check's steps
    ("optim", "data", "adapters"),  # optimizers; data sets; check_model and torch/jax
    ("train", "face", "testing"),  # the trainer; `import gradproof`; assert_vjp, pytest
    ("recipes", "diagnose", "zoo", "grade"),  # stand on train, or on the face
    ("commands",),  # the gradproof command and its subcommands' entry points
]

#: Module prefix -> part (the longest prefix that matches a module decides).
PARTS: dict[str, str] = {
    "gradproof": "face",  # gradproof/__init__.py: check_vjp, check_grad, check_model
    "gradproof.errors": "errors",
    "gradproof._validate": "errors",
    "gradproof.check": "check",
    "gradproof.nn": "nn",
    "gradproof.optim": "optim",
    "gradproof.data": "data",
    "gradproof.adapters": "adapters",
    "gradproof.train": "train",
    "gradproof.testing": "testing",
    "gradproof.pytest_plugin": "testing",
    "gradproof.recipes": "recipes",
    "gradproof.diagnose": "diagnose",
    "gradproof.zoo": "zoo",
    "gradproof.grade": "grade",
    "gradproof.cli": "commands",
    "gradproof.commands": "commands",  # gradproof check, demo, zoo (they run nn and the zoo)
    "gradproof.__main__": "commands",
}

FLOOR = {part: level for level, parts in enumerate(FLOORS) for part in parts}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str | None:
    """The part of ``module``, by the longest prefix of ``PARTS`` (None outside gradproof)."""
    pieces = module.split(".")
    for end in range(len(pieces), 0, -1):
        part = PARTS.get(".".join(pieces[:end]))
        if part is not None:
            return part
    return None


def is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in the file, at any depth, relative ones resolved.

    ``from package import name`` counts as an import of ``package.name`` when that is a
    module, else of ``package`` (``from gradproof import check_vjp`` is the package face).
    """
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                full = f"{source}.{alias.name}"
                found.append((node.lineno, full if is_module(full) else source))
    return found


def module_name_strings(path: Path) -> list[tuple[int, str]]:
    """Strings naming a gradproof module (``"gradproof.nn.cnn_kind"``), as a registry of
    modules to import or an ``importlib.import_module`` argument would: imports that no
    reader or tool can follow. The module of a ``python -m`` command line is not one."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    run_as_main = {id(seq.elts[i + 1]) for seq in ast.walk(tree)
                   if isinstance(seq, (ast.List, ast.Tuple))
                   for i, elt in enumerate(seq.elts[:-1])
                   if isinstance(elt, ast.Constant) and elt.value == "-m"}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and re.fullmatch(r"gradproof(\.\w+)+", node.value) and is_module(node.value)
            and id(node) not in run_as_main]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_has_a_floor_and_every_module_a_part():
    assert set(PARTS.values()) == set(FLOOR)
    assert [module_name(p) for p in MODULES if part_of(module_name(p)) is None] == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_downward(path):
    source = part_of(module_name(path))
    upward = [
        f"line {line}: {target} ({source} on floor {FLOOR[source]} imports "
        f"{part_of(target)} on floor {FLOOR[part_of(target)]})"
        for line, target in imported_modules(path)
        if part_of(target) not in (None, source) and FLOOR[part_of(target)] >= FLOOR[source]
    ]
    assert upward == [], f"{path.relative_to(SRC)} imports upward or sideways: {upward}"


def test_nn_imports_none_of_optim_data_train_or_recipes():
    above = {"optim", "data", "train", "recipes"}
    found = [(str(p.relative_to(SRC)), line, target)
             for p in PACKAGE.joinpath("nn").rglob("*.py")
             for line, target in imported_modules(p) if part_of(target) in above]
    assert found == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_imported_by_a_name_string(path):
    assert module_name_strings(path) == []


def test_the_parts_form_no_cycle():
    """Redundant with the floors, and said plainly: the graph between parts is acyclic."""
    edges: dict[str, set[str]] = {part: set() for part in FLOOR}
    for path in MODULES:
        source = part_of(module_name(path))
        edges[source] |= {part_of(t) for _, t in imported_modules(path)
                          if part_of(t) not in (None, source)}
    done: set[str] = set()

    def visit(part: str, trail: tuple[str, ...]) -> None:
        assert part not in trail, f"cycle: {' -> '.join((*trail, part))}"
        if part not in done:
            for other in edges[part]:
                visit(other, (*trail, part))
            done.add(part)

    for part in edges:
        visit(part, ())

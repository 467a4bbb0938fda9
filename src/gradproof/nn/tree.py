"""Walking a tree of modules: every module with its dotted path."""

from __future__ import annotations

from collections.abc import Iterator

from .module import Module

__all__ = ["named_modules", "child_path", "is_leaf"]


def named_modules(
    module: Module, prefix: str = "", postorder: bool = False
) -> Iterator[tuple[str, Module]]:
    """``(path, module)`` for ``module`` and all its descendants.

    Parents come before their children, or after them with ``postorder=True``
    (layers first, in forward order, then the containers that compose them).
    The root's path is ``prefix`` (``""`` by default); children are joined with
    dots as in :meth:`Module.named_parameters` (``"0"``, ``"block.f.1"``).
    """
    if not postorder:
        yield prefix, module
    for name, child in module.children():
        yield from named_modules(child, child_path(prefix, name), postorder)
    if postorder:
        yield prefix, module


def child_path(prefix: str, name: str) -> str:
    """The dotted path of child ``name`` of the module at ``prefix``."""
    return f"{prefix}.{name}" if prefix else name


def is_leaf(module: Module) -> bool:
    """True when ``module`` has no child modules."""
    return next(iter(module.children()), None) is None

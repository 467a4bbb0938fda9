"""Walking a tree of modules: every module with its dotted path."""

from __future__ import annotations

from collections.abc import Iterator

from .module import Module

__all__ = ["named_modules", "is_leaf"]


def named_modules(module: Module, prefix: str = "") -> Iterator[tuple[str, Module]]:
    """``(path, module)`` for ``module`` and all its descendants, parents first.

    The root's path is ``prefix`` (``""`` by default); children are joined with
    dots as in :meth:`Module.named_parameters` (``"0"``, ``"block.f.1"``).
    """
    yield prefix, module
    for name, child in module.children():
        yield from named_modules(child, f"{prefix}.{name}" if prefix else name)


def is_leaf(module: Module) -> bool:
    """True when ``module`` has no child modules."""
    return next(iter(module.children()), None) is None

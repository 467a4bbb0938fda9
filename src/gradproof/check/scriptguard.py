"""The ``if __name__ == "__main__":`` guard that parallel checks need in a script.

Worker processes started by spawn or a fork server import the main script
again (as ``__mp_main__``; a package's ``__main__`` excepted, as in
multiprocessing). A script that starts a pool at its top level, unguarded,
starts one more inside every worker while that worker is still starting: the
worker dies and the pool reports only ``BrokenProcessPool``.
:func:`require_main_guard` sees that coming and says what to do instead.
"""

from __future__ import annotations

import ast
import os
import sys

from ..errors import InputError

__all__ = ["require_main_guard", "unguarded_script_line"]


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(a, ast.Name) and a.id == "__name__" for a in sides) and any(
        isinstance(a, ast.Constant) and a.value == "__main__" for a in sides)


def unguarded_script_line() -> str | None:
    """``file:line`` when the main script's top level is the caller, outside an
    ``if __name__ == "__main__":`` block; ``None`` otherwise (guarded, called from a
    function run later, an interactive session, a notebook, ``python -m package``)."""
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    if spec_name is not None and (spec_name == "__main__" or spec_name.endswith(".__main__")):
        return None
    path = getattr(main, "__file__", None)
    if main is None or path is None or not os.path.isfile(path):
        return None
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_globals is vars(main)
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:
        return None
    line = frame.f_lineno
    try:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.If) and _is_main_test(node.test) \
                and node.lineno <= line <= (node.end_lineno or line):
            return None
    return f"{path}:{line}"


def require_main_guard(what: str) -> None:
    """Raise :class:`gradproof.InputError` when ``what`` (``"process_pool()"``) is being
    called from a script's unguarded top level."""
    where = unguarded_script_line()
    if where is not None:
        raise InputError(
            f"{what} is called at the top level of the script ({where}), outside an "
            '`if __name__ == "__main__":` block. Its worker processes import the script '
            "again and would each start a pool of their own, and the pool would break with "
            "BrokenProcessPool. Put the code that starts the check under "
            '`if __name__ == "__main__":` (Dask\'s LocalCluster needs the same guard).')

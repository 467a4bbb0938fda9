"""The ``gradproof`` command.

Each feature registers its own subcommands: a module listed in
``COMMAND_MODULES`` defines ``register(subparsers)``, which adds parsers whose
``func(args) -> int`` is the exit status. Modules are imported only when the
command line is parsed, so ``import gradproof`` stays light.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "gradproof.check.cli",  # check, demo, zoo
    "gradproof.train.cli",  # train
    "gradproof.diagnose.cli",  # diagnose
    "gradproof.grade.cli",  # grade
)


def _version() -> str:
    import platform

    import numpy

    from . import __version__

    return (f"gradproof {__version__} (Python {platform.python_version()}, "
            f"NumPy {numpy.__version__})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradproof",
        description="Prove backpropagation right: check gradients, train and diagnose nets.",
    )
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency inside the module
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

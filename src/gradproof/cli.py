"""The ``gradproof`` command.

Each feature registers its own subcommands: a module of ``COMMAND_MODULES``
defines ``register(subparsers)``, which adds parsers whose ``func(args) -> int``
is the exit status. ``import gradproof`` does not import this module.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

import numpy

from . import __version__
from .commands import check as check_cli
from .diagnose import cli as diagnose_cli
from .grade import cli as grade_cli
from .recipes import cli as recipes_cli

COMMAND_MODULES = (
    check_cli,  # check, demo, zoo
    recipes_cli,  # train
    diagnose_cli,  # diagnose
    grade_cli,  # grade (extends demo, so it comes after check)
)


def _version() -> str:
    return (f"gradproof {__version__} (Python {platform.python_version()}, "
            f"NumPy {numpy.__version__})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradproof",
        description="Prove backpropagation right: check gradients, train and diagnose nets.",
    )
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
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

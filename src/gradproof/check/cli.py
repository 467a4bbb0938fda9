"""Subcommands of the checker: ``gradproof demo``, ``gradproof zoo``, ``gradproof check``."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(seed=args.seed)
    return 0


def _zoo(args: argparse.Namespace) -> int:
    from ..zoo.table import run_from_args

    return run_from_args(args)


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="check a handful of layers, one of them buggy, and print the reports"
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the inputs and the check")
    demo.set_defaults(func=_demo)

    zoo = subparsers.add_parser(
        "zoo", help="run the bug zoo through gradproof and other checkers and print the table"
    )
    from ..zoo.table import add_arguments

    add_arguments(zoo)
    zoo.set_defaults(func=_zoo)

"""Subcommands of the checker: ``gradproof demo``, ``gradproof zoo``, ``gradproof check``."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(seed=args.seed)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="check a handful of layers, one of them buggy, and print the reports"
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the inputs and the check")
    demo.set_defaults(func=_demo)

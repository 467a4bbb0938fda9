"""``--threads``: how many threads BLAS may use while a recipe trains, one option for every kind.

The default is 1: the matrices of these models are small, one thread is the
fastest for them, and spinning BLAS threads slow a shared machine down
(``gradproof train charlm`` ran 2-3x more steps in the same time with one
thread than with OpenBLAS's default on 2 busy cores). 0 leaves BLAS as it is.
"""

from __future__ import annotations

import argparse
import contextlib

__all__ = ["add_threads_argument", "blas_threads"]


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads N`` (default 1) to ``parser``."""
    parser.add_argument("--threads", type=_threads, default=1,
                        help="BLAS threads (default 1: fastest for these small matrices, and "
                             "spinning threads slow a shared machine down); 0 leaves BLAS alone")


def blas_threads(threads: int) -> contextlib.AbstractContextManager:
    """Limit BLAS to ``threads`` threads inside the block (needs threadpoolctl, else a no-op)."""
    if threads <= 0:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ModuleNotFoundError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")

"""The user's code, run from the command line: its output captured, its exceptions kept.

``gradproof check`` imports the user's file and calls its functions tens of
times. Two things must not leak into what the command prints:

* **Output.** A module that prints at import (a tutorial, a debug ``print``
  in the forward) would corrupt ``--json``. :func:`capture_output` collects
  everything written to ``sys.stdout``/``sys.stderr`` *and* to the file
  descriptors 1 and 2 (C extensions, worker processes started meanwhile), so
  the command can show it as a section of its report instead.
* **Exceptions.** The checker turns an exception into an ``ERROR`` line with
  the innermost user frame; the command shows the whole user traceback.
  :class:`Recorded` wraps a function and keeps the first exception it raised
  (then re-raises it unchanged); :func:`user_traceback` formats it without
  the checker's own frames.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["CapturedOutput", "capture_output", "Recorded", "user_traceback", "MAX_CAPTURED"]

MAX_CAPTURED = 100_000  # characters kept per stream; the rest is cut with a marker

_CHECKER_DIR = os.path.dirname(os.path.abspath(__file__))  # gradproof/check


@dataclass
class CapturedOutput:
    """What the user's code wrote while captured (filled in when the capture ends)."""

    stdout: str = ""
    stderr: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"stdout": self.stdout, "stderr": self.stderr}

    def lines(self) -> list[str]:
        """Both streams' lines, stdout first (stderr lines marked)."""
        out = self.stdout.splitlines()
        out += [f"[stderr] {line}" for line in self.stderr.splitlines()]
        return out


def _cut(text: str) -> str:
    if len(text) <= MAX_CAPTURED:
        return text
    return text[:MAX_CAPTURED] + f"\n... ({len(text) - MAX_CAPTURED} more characters cut)\n"


@contextlib.contextmanager
def _fd_redirected(fd: int, sink: list[str]) -> Iterator[None]:
    """File descriptor ``fd`` pointed at a temporary file for the duration; what was
    written there is appended to ``sink`` (nothing where ``fd`` cannot be redirected)."""
    try:
        saved = os.dup(fd)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        _flush_real_streams()
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            _flush_real_streams()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            sink.append(tmp.read().decode("utf-8", errors="replace"))


def _flush_real_streams() -> None:
    for stream in (sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()


@contextlib.contextmanager
def capture_output() -> Iterator[CapturedOutput]:
    """Capture what is written to stdout and stderr (Python streams and descriptors 1, 2).

    The yielded :class:`CapturedOutput` is filled in when the block ends,
    even when it raises.
    """
    result = CapturedOutput()
    py_out, py_err = io.StringIO(), io.StringIO()
    fd_out: list[str] = []
    fd_err: list[str] = []
    try:
        with _fd_redirected(1, fd_out), _fd_redirected(2, fd_err), \
                contextlib.redirect_stdout(py_out), contextlib.redirect_stderr(py_err):
            yield result
    finally:
        result.stdout = _cut(py_out.getvalue() + "".join(fd_out))
        result.stderr = _cut(py_err.getvalue() + "".join(fd_err))


class Recorded:
    """``fn`` itself, called through a wrapper that keeps the first exception it raised.

    ``role`` is ``"forward"`` or ``"backward"``. With ``closure=True`` (a
    forward in closure style) the ``backprop`` closure the forward returns is
    wrapped too, as the ``"backward"``. The wrapper pickles (by reference to
    ``fn``), so ``--workers`` can ship it; exceptions raised in a worker stay
    there. ``inspect.signature`` sees ``fn``'s parameters (``__wrapped__``).
    """

    def __init__(self, fn: Callable, role: str, errors: dict[str, BaseException],
                 closure: bool = False):
        self.__wrapped__ = fn
        self.role = role
        self.errors = errors
        self.closure = closure
        for attr in ("__name__", "__qualname__", "__module__", "__doc__"):
            if hasattr(fn, attr):
                setattr(self, attr, getattr(fn, attr))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            result = self.__wrapped__(*args, **kwargs)
        except Exception as exc:
            self.errors.setdefault(self.role, exc)
            raise
        if self.closure and isinstance(result, tuple) and len(result) == 2 \
                and callable(result[1]):
            return result[0], Recorded(result[1], "backward", self.errors)
        return result


def user_traceback(exc: BaseException) -> str:
    """``exc``'s traceback with the checker's own frames left out: what the user wrote
    (and the libraries it called), ending at the line that raised."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith(_CHECKER_DIR + os.sep)]
    lines = ["Traceback (most recent call last):\n"]
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()

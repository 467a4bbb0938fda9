"""A one-line progress bar on stderr for long epochs (no dependency).

Drawn only on a terminal: when the stream is not a TTY (a log file, a pipe,
pytest) or the bar is disabled, every method is a no-op, so logs stay clean.
"""

from __future__ import annotations

import sys
import time
from typing import IO

__all__ = ["ProgressBar"]


class ProgressBar:
    """``epoch 3/20 [########..........] 45/90 loss 0.1234``, redrawn in place.

    ``update(done, loss)`` redraws at most every ``min_interval`` seconds (and
    always at the end); ``close()`` erases the line so that the next print
    starts clean.
    """

    def __init__(self, total: int, prefix: str = "", stream: IO[str] | None = None,
                 enabled: bool = True, width: int = 30, min_interval: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(enabled and total > 0 and isatty is not None and isatty())
        self.total, self.prefix, self.width = total, prefix, width
        self.min_interval = min_interval
        self._last_draw = -float("inf")
        self._drawn = 0

    def update(self, done: int, loss: float | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < self.total and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        filled = self.width * done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        suffix = "" if loss is None else f" loss {loss:.4f}"
        line = f"{self.prefix} [{bar}] {done}/{self.total}{suffix}"
        self.stream.write("\r" + line.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(line)

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0

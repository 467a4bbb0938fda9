"""Running one submission's files in a child process, with limits and a watchdog.

The child (:mod:`._child`) grades one function at a time and says so before
each; this side keeps the clock. When a function runs past ``timeout`` the
child's process group is killed, that function is ``timeout``, and a fresh
child grades the rest. When the child dies (``os._exit``, a crash, the memory
or CPU limit), the function in progress is ``error`` and a fresh child goes on.
Results arrive only as authenticated messages (see :mod:`._child`); whatever
the student's code prints is captured and kept (truncated).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .findings import finding
from .specs import ALL_NAMES, SPEC_BY_NAME

__all__ = ["Limits", "FileOutcome", "grade_files", "names_in_source"]

STARTUP_S = 30.0  # Python, NumPy and gradproof starting, on a busy machine


@dataclass(frozen=True)
class Limits:
    """Per function: ``timeout`` seconds of wall clock. Per process: ``memory_mb`` of memory
    beyond the grader's own, CPU seconds in proportion to the functions to grade."""

    timeout: float = 20.0
    memory_mb: int = 1024
    output_bytes: int = 16384


@dataclass
class FileOutcome:
    """What came back for one file: results in order, a file-level problem, if any."""

    path: str
    results: list[dict] = field(default_factory=list)
    problem: dict | None = None
    notes: list[str] = field(default_factory=list)


_DEF = re.compile(r"^(?:def\s+(\w+)\s*\(|(\w+)\s*=)", re.M)


def names_in_source(path: str | Path) -> list[str]:
    """The gradable names a file defines, read from its text (it is never executed here)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return []
    seen = {m.group(1) or m.group(2) for m in _DEF.finditer(text)}
    return [n for n in ALL_NAMES if n in seen]


class _Output:
    """The child's stdout and stderr, the first ``limit`` bytes kept."""

    def __init__(self, limit: int):
        self.limit = limit
        self.kept = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = self.limit - len(self.kept)
        self.kept += data[:max(room, 0)]
        self.dropped += max(len(data) - max(room, 0), 0)

    def text(self) -> str:
        text = self.kept.decode(errors="replace")
        return text + (f"\n... ({self.dropped} more bytes)" if self.dropped else "")


class _Reader:
    """Verified messages from the child's channel (lines that fail the HMAC are dropped)."""

    def __init__(self, key: bytes):
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._buffer = b""
        self._seq = 0
        self.garbled = 0

    def feed(self, data: bytes) -> list[dict]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        out = []
        for line in lines:
            try:
                tag, payload = line.decode().split(" ", 1)
                seq_text, body = payload.split(" ", 1)
                mac = self._mac.copy()
                mac.update(payload.encode())
                ok = hmac.compare_digest(mac.hexdigest(), tag) and int(seq_text) == self._seq + 1
                message = json.loads(body) if ok else None
            except (ValueError, UnicodeDecodeError):
                ok, message = False, None
            if not ok or not isinstance(message, dict):
                self.garbled += 1
                continue
            self._seq += 1
            out.append(message)
        return out


# A process between the grader and the child that waits for it and dies as it died:
# os.kill(os.getppid(), ...) in a submission then hits this, not the grader.
_SHIM = """import os, signal, subprocess, sys
code = subprocess.call(sys.argv[1:], close_fds=False)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


@functools.lru_cache(maxsize=1)
def _launcher() -> tuple[str, ...]:
    """What the child is started under, to keep a submission's hands off the grader.

    Where the system allows it (Linux with user namespaces), a new PID namespace:
    the submission sees no process outside it, so no signal it sends — to its
    parent, to ``-1`` (every process it may signal) — reaches the grader or the
    other submissions. Elsewhere, a waiting shim process: ``os.kill(os.getppid())``
    hits the shim; a submission that looks the grader up in ``/proc`` can still
    signal it there (docs/grade.md: run untrusted work in a container too).
    ``GRADPROOF_GRADE_NO_NAMESPACE=1`` in the environment asks for the shim.
    """
    unshare = shutil.which("unshare")
    if unshare and not os.environ.get("GRADPROOF_GRADE_NO_NAMESPACE"):
        cmd = (unshare, "--user", "--map-root-user", "--pid", "--fork", "--kill-child")
        try:
            probe = subprocess.run([*cmd, sys.executable, "-c", "pass"], capture_output=True,
                                   timeout=STARTUP_S)
            if probe.returncode == 0:
                return cmd
        except (OSError, subprocess.SubprocessError):
            pass
    return (sys.executable, "-c", _SHIM)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])  # the folder holding gradproof
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0", MPLBACKEND="Agg",
               PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    return env


def _run_child(files: list[str], todo: dict[int, list[str] | None],
               blocked: dict[int, dict[str, str]], limits: Limits, seed: int, max_evals: int,
               output: _Output, on_message) -> tuple[str, str]:
    """One child process; ``on_message(msg)`` for each message. Returns ``(end, how)``:
    ``("done", "")``, ``("timeout", "")`` or ``("exit", description)``."""
    key = secrets.token_bytes(32)
    read_fd, write_fd = os.pipe()
    n_jobs = sum(len(v) if v is not None else len(ALL_NAMES) for v in todo.values())
    job = {"files": files, "todo": {str(i): v for i, v in todo.items()},
           "blocked": {str(i): b for i, b in blocked.items()},
           "memory_mb": limits.memory_mb, "seed": seed, "max_evals": max_evals,
           "cpu_s": int(limits.timeout * (n_jobs + 2) + STARTUP_S)}
    with tempfile.TemporaryDirectory(prefix="gradproof-grade-") as workdir:
        try:
            proc = subprocess.Popen(
                [*_launcher(), sys.executable, "-m", "gradproof.grade._child", str(write_fd)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=(write_fd,), cwd=workdir, env=_child_env(), start_new_session=True)
        finally:
            os.close(write_fd)
        try:
            proc.stdin.write(key.hex().encode() + b"\n" + json.dumps(job).encode() + b"\n")
            proc.stdin.close()
        except OSError:
            pass
        reader = _Reader(key)
        selector = selectors.DefaultSelector()
        selector.register(read_fd, selectors.EVENT_READ, "channel")
        selector.register(proc.stdout, selectors.EVENT_READ, "output")
        deadline = time.monotonic() + STARTUP_S + limits.timeout
        end, how = "exit", ""
        try:
            open_streams = 2
            while open_streams:
                left = deadline - time.monotonic()
                if left <= 0:
                    end = "timeout"
                    break
                for key_, _ in selector.select(timeout=min(left, 1.0)):
                    data = os.read(key_.fd if key_.data == "channel" else proc.stdout.fileno(),
                                   65536)
                    if not data:
                        selector.unregister(key_.fileobj)
                        open_streams -= 1
                        continue
                    if key_.data == "output":
                        output.add(data)
                        continue
                    for message in reader.feed(data):
                        deadline = time.monotonic() + limits.timeout
                        if message.get("event") == "done":
                            end = "done"
                        on_message(message)
                if end == "done":
                    break
        finally:
            selector.close()
            os.close(read_fd)
            _kill(proc)
            output.add(_drain(proc.stdout.fileno()))
            proc.stdout.close()
        if end == "exit":
            how = _exit_words(proc.returncode)
            if reader.garbled:
                how += f"; {reader.garbled} unauthenticated line(s) on the result channel"
    return end, how


def _drain(fd: int) -> bytes:
    """What is left in the pipe, without waiting (a grandchild may still hold it open)."""
    os.set_blocking(fd, False)
    data = b""
    try:
        while chunk := os.read(fd, 65536):
            data += chunk
    except (BlockingIOError, OSError):
        pass
    return data


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _exit_words(code: int | None) -> str:
    if code is None:
        return "the process did not report"
    if code > 128 and code - 128 in signal.Signals._value2member_map_:
        code = 128 - code  # the grading process ends as the student's process was killed
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else -code
        why = {"SIGXCPU": " (the CPU time limit)", "SIGKILL": " (killed: the memory limit?)",
               "SIGSEGV": " (a crash)"}.get(str(name), "")
        return f"the process was killed by {name}{why}"
    return f"the process exited with status {code} (sys.exit or os._exit in the code?)"


def grade_files(files: list[str | Path], limits: Limits | None = None, seed: int = 0,
                max_evals: int = 200) -> tuple[list[FileOutcome], str]:
    """Grade every gradable function of ``files`` (one student's); ``(outcomes, output)``."""
    limits = limits or Limits()
    paths = [str(Path(f).resolve()) for f in files]
    outcomes = [FileOutcome(p) for p in paths]
    fallback = [names_in_source(p) for p in paths]
    found: dict[int, list[str]] = {}
    results: dict[tuple[int, str], dict] = {}
    blocked: dict[int, dict[str, str]] = {}
    done_files: set[int] = set()
    output = _Output(limits.output_bytes)
    phase: list = [None]

    def on_message(m: dict) -> None:
        event, i = m.get("event"), m.get("file")
        if event == "import":
            phase[0] = ("import", i)
        elif event == "import-error":
            outcomes[i].problem = m["finding"]
            for name in fallback[i]:
                results[(i, name)] = {"name": name, "status": "error",
                                      "findings": [m["finding"]]}
            done_files.add(i)
            phase[0] = None
        elif event == "found":
            found[i] = m["names"]
            outcomes[i].notes = [str(n) for n in m.get("notes", [])]
            phase[0] = None
        elif event == "start":
            phase[0] = ("grade", i, m["name"])
        elif event == "result":
            r = m["result"]
            results[(i, r["name"])] = r
            phase[0] = None

    def remaining() -> dict[int, list[str] | None]:
        todo: dict[int, list[str] | None] = {}
        for i in range(len(paths)):
            if i in done_files:
                continue
            if i not in found:
                todo[i] = None
                continue
            left = [n for n in found[i] if (i, n) not in results]
            if left:
                todo[i] = left
        return todo

    todo = remaining()
    while todo:
        before = len(results)
        phase[0] = None
        end, how = _run_child(paths, todo, blocked, limits, seed, max_evals, output, on_message)
        if end == "done":
            for i in todo:  # files without gradable functions are done too
                done_files.add(i)
            break
        where = phase[0]
        if where is not None and where[0] == "grade":
            _, i, name = where
            results[(i, name)] = _lost(name, end, how, limits)
            if name == SPEC_BY_NAME[name].forward:
                blocked.setdefault(i, {})[name] = (
                    "did not finish" if end == "timeout" else "stopped the process")
        elif where is not None and where[0] == "import":
            i = where[1]
            lost = finding("timeout" if end == "timeout" else "crash", (
                f"importing {Path(paths[i]).name} did not finish within {limits.timeout:g} s "
                "(an infinite loop at module level?)" if end == "timeout" else
                f"importing {Path(paths[i]).name} stopped the process: {how}"))
            outcomes[i].problem = lost
            for name in fallback[i]:
                results[(i, name)] = {"name": name,
                                      "status": "timeout" if end == "timeout" else "error",
                                      "findings": [lost]}
            done_files.add(i)
        elif len(results) == before:  # no progress and nothing to blame: give up
            for i, names in todo.items():
                for name in names or fallback[i]:
                    results.setdefault((i, name), {"name": name, "status": "error",
                                                   "findings": [finding("grader-error", (
                                                       f"the grading process failed: {how}"))]})
            break
        todo = remaining()
    for i in range(len(paths)):
        for name in found[i] if i in found else fallback[i]:
            results.setdefault((i, name), {"name": name, "status": "error", "findings": [
                finding("garbled", f"the result for {name} did not arrive intact (something "
                        "wrote into the grader's channel)")]})
    for i, outcome in enumerate(outcomes):
        order = found.get(i, fallback[i])
        extra = [n for (j, n) in results if j == i and n not in order]
        outcome.results = [results[(i, n)] for n in order + extra if (i, n) in results]
    return outcomes, output.text()


def _lost(name: str, end: str, how: str, limits: Limits) -> dict:
    if end == "timeout":
        return {"name": name, "status": "timeout", "findings": [finding("timeout", (
            f"{name} did not finish within {limits.timeout:g} s (an infinite loop? the "
            "grader's inputs are small)"))]}
    return {"name": name, "status": "error", "findings": [finding("crash", (
        f"the grading process ended while grading {name}: {how}"))]}

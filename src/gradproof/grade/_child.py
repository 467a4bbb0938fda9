"""The grading process: ``python -m gradproof.grade._child FD`` (started by :mod:`.sandbox`).

Protocol. The parent writes two lines to stdin: a random key (hex) and the job
(JSON: files, what to grade, limits). This process reads both *before* any
student code is imported, keeps the key only inside an HMAC object, and
replaces stdin with ``/dev/null``. Every message goes to the inherited pipe
``FD`` as one line ``TAG SEQ JSON`` where ``TAG`` is HMAC-SHA256 of ``SEQ
JSON`` under the key: printing on stdout, writing to any file or descriptor,
``sys.exit`` or ``os._exit`` cannot produce a result the parent accepts.

Messages: ``ready``; ``import`` (file i); ``import-error`` (file i, finding);
``found`` (file i, names); ``start`` (file i, name); ``result`` (file i,
result dict); ``done``. The parent's clock runs from each message to the next.

Guard. Before the first student file is imported, the attributes of gradproof's,
NumPy's and a few standard modules (and of gradproof's classes) are recorded;
after each function they are compared: a submission that monkeypatches the
grader or NumPy gets ``error`` (kind ``tampering``) for that function and every
later one. This defends against accidents and naive cheating, not against
code that reads this process's memory: run untrusted code in a container too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
import types

import numpy  # noqa: F401 - imported before the student's code, so the guard sees it

from . import runner as _runner
from .findings import describe_exception, finding
from .legacy import install_shims

_GUARDED = ("gradproof", "numpy", "builtins", "os", "json", "hmac", "hashlib", "math")


class Channel:
    """Authenticated, numbered messages to the parent over one file descriptor."""

    def __init__(self, fd: int, key: bytes):
        self._fd = fd
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._seq = 0
        self._write = os.write
        self._dumps = json.dumps

    def send(self, event: str, **fields) -> None:
        self._seq += 1
        body = self._dumps({"event": event, **fields}, separators=(",", ":"))
        payload = f"{self._seq} {body}"
        mac = self._mac.copy()
        mac.update(payload.encode())
        data = f"{mac.hexdigest()} {payload}\n".encode()
        while data:
            data = data[self._write(self._fd, data):]


def _watched_modules() -> list[tuple[str, types.ModuleType]]:
    return [(name, mod) for name, mod in list(sys.modules.items())
            if isinstance(mod, types.ModuleType)
            and (name.split(".")[0] in _GUARDED)]


def _fingerprint(value) -> tuple:
    """The object, and for a Python function its code and defaults (swappable in place)."""
    if isinstance(value, types.FunctionType):
        return (id(value), id(value.__code__), id(value.__defaults__))
    return (id(value), 0, 0)


class Guard:
    """What the grader relies on, recorded before the student's code runs."""

    def __init__(self):
        self._modules = {}
        self._classes = {}
        for name, mod in _watched_modules():
            attrs = {k: v for k, v in vars(mod).items() if not k.startswith("__")}
            self._modules[name] = (mod, attrs, {k: _fingerprint(v) for k, v in attrs.items()})
            if name.startswith("gradproof"):
                for v in attrs.values():
                    if isinstance(v, type) and v.__module__.startswith("gradproof"):
                        d = dict(vars(v))
                        self._classes[id(v)] = (v, d, {k: _fingerprint(x) for k, x in d.items()})

    def changed(self) -> list[str]:
        """Names of recorded attributes that are no longer what they were."""
        out = []
        for name, (mod, _, prints) in self._modules.items():
            if sys.modules.get(name) is not mod:
                out.append(f"sys.modules[{name!r}]")
                continue
            now = vars(mod)
            for k, fp in prints.items():
                if k not in now or _fingerprint(now[k]) != fp:
                    out.append(f"{name}.{k}")
        for cls, _, prints in self._classes.values():
            now = vars(cls)
            for k, fp in prints.items():
                if k not in now or _fingerprint(now[k]) != fp:
                    out.append(f"{cls.__module__}.{cls.__qualname__}.{k}")
        return out


def _limit(memory_mb: int, cpu_s: int) -> None:
    """Address space: what the grader uses now plus ``memory_mb``; CPU seconds; no core files."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    try:
        with open("/proc/self/status") as status:
            vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        limit = vm + memory_mb * 2 ** 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, StopIteration, ValueError):
        pass
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError):
        pass
    try:  # no fork bomb: a few processes beyond what this user runs now
        mine = _processes_of(os.getuid())
        if mine:
            resource.setrlimit(resource.RLIMIT_NPROC, (mine + 64, mine + 64))
    except (OSError, ValueError):
        pass


def _processes_of(uid: int) -> int:
    """How many processes (and threads, as the kernel counts them) ``uid`` runs; 0 if unknown."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields.get("Threads", "1"))
        except (OSError, KeyError, ValueError):
            continue
    return count


def _tampered(name: str, changed: list[str]) -> dict:
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return {"name": name, "status": "error", "findings": [finding(
        "tampering", f"the submission changed the grader's or NumPy's code ({shown}); no "
        "result from this process can be trusted")], "seconds": 0.0}


def main(argv: list[str]) -> None:
    fd = int(argv[1])
    key = bytes.fromhex(sys.stdin.buffer.readline().decode().strip())
    job = json.loads(sys.stdin.buffer.readline())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    channel = Channel(fd, key)
    del key
    files = job["files"]
    todo = {int(i): names for i, names in job["todo"].items()}
    blocked = {int(i): b for i, b in job.get("blocked", {}).items()}
    install_shims()  # before the guard: the aliases are the grader's doing
    guard = Guard()
    _limit(job["memory_mb"], job["cpu_s"])
    channel.send("ready")
    broken: list[str] = []
    for i, path in enumerate(files):
        if i not in todo:
            continue
        channel.send("import", file=i)
        try:
            module, notes = _runner.load_student_file(path)
        except BaseException as exc:  # noqa: BLE001 - SystemExit at import too
            kind = "syntax-error" if isinstance(exc, SyntaxError) else "import-error"
            channel.send("import-error", file=i, finding=finding(
                kind, f"importing {os.path.basename(path)} {describe_exception(exc, files)}"))
            continue
        names = _runner.functions_in(module)
        channel.send("found", file=i, names=names, notes=notes)
        grader = _runner.FileGrader(module, files, seed=job["seed"],
                                    max_evals=job["max_evals"], blocked=blocked.get(i))
        wanted = todo[i] if todo[i] is not None else names
        for name in [n for n in names if n in wanted]:
            channel.send("start", file=i, name=name)
            broken = broken or guard.changed()
            if broken:
                result = _tampered(name, broken)
            else:
                result = grader.grade(name)
                broken = guard.changed()
                if broken:
                    result = _tampered(name, broken)
            channel.send("result", file=i, result=result)
    channel.send("done", seconds=round(time.process_time(), 2))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no atexit handlers or threads of the student's


if __name__ == "__main__":
    main(sys.argv)

"""The student's process: ``python -m gradproof.grade._worker IN_FD OUT_FD PARENT_PID``.

Started by the grading process (:mod:`.remote`), it imports a student's files
and runs their functions on request, and does nothing else of the grading:
every comparison, the gradient checker and every verdict run in the grading
process, which holds the key to the result channel. What this process sends
back is data (:mod:`.wire`): whatever the student's code does here — patch
NumPy or gradproof, walk the stack, search the heap, ``os._exit`` — it can only
change the numbers its functions return, never a verdict.

The first request sets the limits, applied before any student code runs:
address space (``memory_mb`` beyond what is in use), CPU seconds, processes,
no core files. The process dies with the grading process (``PR_SET_PDEATHSIG``).
Before the first student file is imported, the attributes of NumPy's and a few
standard modules are recorded (:class:`Guard`); a submission that changes them
is told ``tampering`` by the grader (a submission that patches its own copy of
the grader cannot change a grade, but it tried).

Requests (a header ``op`` and values): ``setup``, ``import`` (a file: the
gradable names it defines, their source, notes; or the exception),
``call`` (module, function, arguments and NumPy's global random state:
the value or the exception, the arguments it changed, the random state
after), ``freeze`` (make the arrays of an opaque object read-only),
``guard`` (what the submission changed), ``stop``.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
import types

import numpy as np

from . import wire
from .findings import describe_exception, locate
from .legacy import install_shims
from .runner import functions_in, load_student_file
from .student import freeze

_GUARDED = ("numpy", "builtins", "os", "math", "json")
MAX_SOURCE = 200_000


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when the grading process ``parent`` ends (Linux; elsewhere
    nothing); if it has ended already, end now."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if parent and os.getppid() != parent:  # it died before the line above
        os._exit(1)


def limit(memory_mb: int, cpu_s: int) -> None:
    """Address space: what is in use now plus ``memory_mb``; CPU seconds; no core files;
    a few processes beyond what this user runs now."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    try:
        with open("/proc/self/status") as status:
            vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        cap = vm + memory_mb * 2 ** 20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (OSError, StopIteration, ValueError):
        pass
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError):
        pass
    try:  # no fork bomb
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


def _watched_modules() -> list[tuple[str, types.ModuleType]]:
    return [(name, mod) for name, mod in list(sys.modules.items())
            if isinstance(mod, types.ModuleType) and name.split(".")[0] in _GUARDED]


def _fingerprint(value) -> tuple:
    """The object, and for a Python function its code and defaults (swappable in place)."""
    if isinstance(value, types.FunctionType):
        return (id(value), id(value.__code__), id(value.__defaults__))
    return (id(value), 0, 0)


class Guard:
    """The attributes of NumPy and a few standard modules, recorded before student code."""

    def __init__(self):
        self._modules = {}
        for name, mod in _watched_modules():
            attrs = {k: v for k, v in vars(mod).items() if not k.startswith("__")}
            self._modules[name] = (mod, {k: _fingerprint(v) for k, v in attrs.items()})

    def changed(self) -> list[str]:
        """Names of recorded attributes that are no longer what they were."""
        out = []
        for name, (mod, prints) in self._modules.items():
            if sys.modules.get(name) is not mod:
                out.append(f"sys.modules[{name!r}]")
                continue
            now = vars(mod)
            for k, fp in prints.items():
                if k not in now or _fingerprint(now[k]) != fp:
                    out.append(f"{name}.{k}")
        return out


class Server:
    """Answers the grading process's requests, one at a time."""

    def __init__(self, in_fd: int, out_fd: int):
        self.in_fd, self.out_fd = in_fd, out_fd
        self.files: list[str] = []
        self.modules: dict[int, types.ModuleType] = {}
        self.handles: dict[int, object] = {}
        self.guard: Guard | None = None
        self.tag = b""
        self._send = wire.send  # kept: the student may replace wire.send in this process

    def reply(self, header: dict, encoder: wire.Encoder | None = None) -> None:
        body = (encoder or wire.Encoder()).message(header)
        self._send(self.out_fd, self._frame(self.tag, body))

    def serve(self) -> None:
        self._frame = wire.frame
        while True:
            try:
                self.tag, header, buffers = wire.receive_request(self.in_fd)
            except EOFError:
                return
            op = header.get("op")
            if op == "stop":
                self.reply({"ok": True, "cpu": time.process_time()})
                return
            getattr(self, f"op_{op}")(header, buffers)

    def op_setup(self, header: dict, buffers) -> None:
        self.files = list(header["files"])
        install_shims()  # before the guard: the aliases are the grader's doing
        self.guard = Guard()
        limit(int(header["memory_mb"]), int(header["cpu_s"]))
        self.reply({"ok": True})

    def op_import(self, header: dict, buffers) -> None:
        path = header["path"]
        try:
            module, notes = load_student_file(path)
        except BaseException as exc:  # noqa: BLE001 - SystemExit at import too
            kind = "syntax-error" if isinstance(exc, SyntaxError) else "import-error"
            self.reply({"ok": False, "kind": kind,
                        "text": f"importing {os.path.basename(path)} "
                                f"{describe_exception(exc, self.files)}"})
            return
        self.modules[int(header["module"])] = module
        names = functions_in(module)
        sources = {}
        for name in names:
            try:
                sources[name] = inspect.getsource(vars(module)[name])[:MAX_SOURCE]
            except (OSError, TypeError):
                sources[name] = None
        self.reply({"ok": True, "names": names, "notes": [str(n) for n in notes],
                    "sources": sources})

    def _opaque(self, node: dict) -> object:
        return self.handles[node["o"]]

    def op_call(self, header: dict, buffers) -> None:
        decoder = wire.Decoder(buffers, opaque=self._opaque)
        args = decoder.value(header["args"])
        state = decoder.value(header["rng"])
        writeable = {i for i, a in enumerate(decoder.received)
                     if isinstance(a, np.ndarray) and a.flags.writeable}
        fn = vars(self.modules[int(header["module"])])[header["name"]]
        raised = None
        try:
            np.random.set_state(state)
        except Exception:  # noqa: BLE001 - the student replaced np.random: their problem
            pass
        try:
            value = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - everything goes back as data
            raised, value = exc, None
        known = {id(obj): token for token, obj in enumerate(decoder.received)}
        encoder = wire.Encoder(handles=self.handles, known=known)
        writes = []
        for token, obj in enumerate(decoder.received):
            if token in writeable and isinstance(obj, np.ndarray):
                if obj.tobytes() != decoder.originals[token]:
                    writes.append([token, encoder.node(obj.copy())])
            elif isinstance(obj, dict):
                writes.append([token, encoder.node(dict(obj))])
            elif isinstance(obj, list):
                writes.append([token, encoder.node(list(obj))])
        out = {"ok": raised is None, "writes": writes}
        if raised is None:
            try:
                out["value"] = encoder.node(value)
            except (wire.WireError, RecursionError, MemoryError):
                encoder.handles[id(value)] = value
                out["value"] = {"o": id(value), "x": "an object that could not be sent",
                                "n": type(value).__name__}
        else:
            out["raised"] = _exception_info(raised, self.files)
        try:
            out["rng"] = encoder.node(np.random.get_state())
        except Exception:  # noqa: BLE001
            out["rng"] = None
        self.reply(out, encoder)

    def op_freeze(self, header: dict, buffers) -> None:
        obj = self.handles.get(header["handle"])
        try:
            freeze(obj)
        except Exception:  # noqa: BLE001 - the student's object: its attributes may raise
            pass
        self.reply({"ok": True})

    def op_guard(self, header: dict, buffers) -> None:
        self.reply({"ok": True, "changed": self.guard.changed() if self.guard else []})


def _exception_info(exc: BaseException, files: list[str]) -> dict:
    cls = type(exc)
    try:
        text = str(exc)[:4000]
    except Exception:  # noqa: BLE001 - the student's __str__
        text = ""
    try:
        where = locate(exc, files)
    except Exception:  # noqa: BLE001
        where = None
    base = next((c.__name__ for c in cls.__mro__ if c.__module__ == "builtins"), "Exception")
    info = {"type": cls.__name__[:100], "builtin": base, "text": text,
            "where": list(where) if where else None}
    if isinstance(exc, SystemExit) and isinstance(exc.code, (int, str, type(None))):
        info["code"] = exc.code if not isinstance(exc.code, str) else exc.code[:200]
    return info


def main(argv: list[str]) -> None:
    in_fd, out_fd = int(argv[1]), int(argv[2])
    _die_with_parent(int(argv[3]) if len(argv) > 3 else 0)
    server = Server(in_fd, out_fd)
    try:
        server.serve()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # no atexit handlers or threads of the student's


if __name__ == "__main__":
    main(sys.argv)

"""The grading process's side of the student's process (:mod:`._worker`).

The grading process never imports a student's file. It starts one worker
process, which does, and sees the student's functions as
:class:`RemoteFunction` objects: calling one sends the arguments (and NumPy's
global random state, so that ``np.random.seed(0)`` before a dropout forward
still fixes its mask) and returns the value, or raises the student's exception
rebuilt here with its type, message and line (``_gradproof_where``). Arrays the
student's function wrote into are written back into the caller's arrays, and
dicts it changed (batch norm's ``bn_param``) are updated, so the grading code
sees what it would see in one process. Objects that cannot cross stay there
(:class:`~gradproof.grade.wire.Opaque`).

When the worker dies (``os._exit``, a crash, the CPU limit) or sends what does
not decode, this process ends the same way, and the parent (:mod:`.sandbox`)
reports the function in progress and starts afresh for the rest, as before.
"""

from __future__ import annotations

import builtins
import os
import secrets
import signal
import subprocess
import sys
from typing import Any

import numpy as np

from . import wire

__all__ = ["Worker", "RemoteFunction", "RemoteModule", "StudentError", "not_dumpable",
           "freeze_opaque"]

SLACK_BYTES = 256 * 2 ** 20  # a reply may be this much larger than the worker's memory limit


class StudentError(Exception):
    """An exception of a class that exists only in the student's process."""

    def __init__(self, type_name: str, text: str):
        super().__init__(text)
        self._gradproof_type = type_name


def not_dumpable() -> None:
    """Make this process non-dumpable (Linux): no process of the same user may read its
    memory or file descriptors through ``/proc`` or ptrace (the result channel's key)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0)  # PR_SET_DUMPABLE
    except (OSError, AttributeError):
        pass


class Worker:
    """The student's process, started at once; requests and replies in order."""

    def __init__(self, files: list[str], memory_mb: int, cpu_s: int):
        to_worker, from_grader = os.pipe()
        to_grader, from_worker = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gradproof.grade._worker", str(to_worker), str(from_worker),
             str(os.getpid())],
            stdin=subprocess.DEVNULL, pass_fds=(to_worker, from_worker), close_fds=True)
        os.close(to_worker)
        os.close(from_worker)
        self._out = from_grader
        self._replies = wire.ReplyReader(to_grader, memory_mb * 2 ** 20 + SLACK_BYTES)
        self._modules = 0
        self._junk_seen = 0
        _CURRENT[:] = [self]
        self.request({"op": "setup", "files": files, "memory_mb": memory_mb, "cpu_s": cpu_s})

    # --- the pipe -------------------------------------------------------------------
    def request(self, header: dict, encoder: wire.Encoder | None = None
                ) -> tuple[dict, list[memoryview]]:
        tag = wire.MAGIC + secrets.token_bytes(wire.TAG_BYTES - len(wire.MAGIC))
        try:
            wire.send(self._out, wire.frame(tag, (encoder or wire.Encoder()).message(header)))
            return self._replies.read(tag)
        except (EOFError, OSError):
            self.died()
        except wire.WireError:
            self.died(garbled=True)
        raise AssertionError("unreachable")  # pragma: no cover

    def died(self, garbled: bool = False) -> None:
        """End this process as the worker ended (the parent reports it and goes on)."""
        if garbled:
            self.proc.kill()
        code = self.proc.wait()
        sys.stdout.flush()
        sys.stderr.flush()
        if code < 0:  # killed by a signal: the same signal here (not as a namespace's init)
            try:
                signal.signal(-code, signal.SIG_DFL)
                os.kill(os.getpid(), -code)
            except (OSError, ValueError):
                pass
            os._exit(128 - code)
        os._exit(code)

    def stop(self) -> float:
        """Ask the worker to end; its CPU seconds."""
        header, _ = self.request({"op": "stop"})
        self.proc.wait()
        return float(header.get("cpu", 0.0)) if isinstance(header.get("cpu"), (int, float)) \
            else 0.0

    # --- what the grader asks -------------------------------------------------------
    def load(self, path: str) -> tuple[RemoteModule | None, dict]:
        """Import ``path`` there: ``(module, reply)``; module is None when the import failed
        (the reply has ``kind`` and ``text``)."""
        self._modules += 1
        header, _ = self.request({"op": "import", "path": path, "module": self._modules})
        if not header.get("ok"):
            return None, {"kind": str(header.get("kind", "import-error")),
                          "text": str(header.get("text", "importing failed"))[:4000]}
        module = RemoteModule(f"<student module {self._modules}>")
        sources = header.get("sources") if isinstance(header.get("sources"), dict) else {}
        names = [n for n in header.get("names", []) if isinstance(n, str)]
        for name in names:
            source = sources.get(name)
            setattr(module, name, RemoteFunction(self, self._modules, name, module.__name__,
                                                 source if isinstance(source, str) else None))
        notes = [str(n)[:1000] for n in header.get("notes", []) if isinstance(n, str)]
        return module, {"names": names, "notes": notes}

    def junk(self) -> int:
        """Bytes the student's code wrote into its reply pipe (skipped), since the last ask."""
        total = self._replies.junk
        new, self._junk_seen = total - self._junk_seen, total
        return new

    def changed(self) -> list[str]:
        """What the submission changed in the modules the worker guards."""
        header, _ = self.request({"op": "guard"})
        changed = header.get("changed", [])
        return [str(c)[:200] for c in changed] if isinstance(changed, list) else ["(garbled)"]

    def freeze(self, obj: wire.Opaque) -> None:
        self.request({"op": "freeze", "handle": obj.handle})

    def call(self, module: int, name: str, args: tuple) -> Any:
        encoder = wire.Encoder()
        header = {"op": "call", "module": module, "name": name,
                  "args": encoder.node(tuple(args)), "rng": encoder.node(np.random.get_state())}
        reply, buffers = self.request(header, encoder)
        try:
            decoder = wire.Decoder(buffers, sent=encoder.sent, opaque=self._opaque)
            writes = reply.get("writes", [])
            if not isinstance(writes, list):
                raise wire.WireError("writes that are not a list")
            for entry in writes:
                if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)
                        and 0 <= entry[0] < len(encoder.sent)):
                    raise wire.WireError("a write to nothing")
                _write_back(encoder.sent[entry[0]], decoder.value(entry[1]))
            value = decoder.value(reply["value"]) if reply.get("ok") else None
            state = decoder.value(reply.get("rng"))
        except (wire.WireError, KeyError, TypeError, ValueError):
            self.died(garbled=True)
        if state is not None:
            try:
                np.random.set_state(state)
            except (TypeError, ValueError):
                pass
        if reply.get("ok"):
            return value
        raise _rebuilt(reply.get("raised"))

    def _opaque(self, node: dict) -> wire.Opaque:
        handle = node.get("o")
        if not isinstance(handle, int):
            raise wire.WireError("an opaque handle that is not a number")
        return wire.Opaque(handle, str(node.get("x", ""))[:200],
                           str(node.get("n", "object"))[:60])


_CURRENT: list[Worker] = []  # the one worker of this grading process


def freeze_opaque(obj: wire.Opaque) -> None:
    """Make the arrays inside an object of the student's process read-only, there."""
    if _CURRENT:
        _CURRENT[-1].freeze(obj)


def _write_back(target: Any, new: Any) -> None:
    """What the student's function did to an argument, done to the grader's own object."""
    if isinstance(target, np.ndarray) and isinstance(new, np.ndarray):
        if target.shape == new.shape and target.flags.writeable:
            target[...] = new
    elif isinstance(target, dict) and isinstance(new, dict):
        target.clear()
        target.update(new)
    elif isinstance(target, list) and isinstance(new, list):
        target[:] = new


_NOT_REBUILT = (KeyboardInterrupt, GeneratorExit)


def _rebuilt(info: Any) -> BaseException:
    """The student's exception as an object of this process, with its line."""
    if not isinstance(info, dict):
        return StudentError("Exception", "(an exception that did not arrive intact)")
    name = str(info.get("type", "Exception"))[:100]
    text = str(info.get("text", ""))[:4000]
    base = info.get("builtin")  # the first built-in class among the exception's bases
    cls = getattr(builtins, base, None) if isinstance(base, str) else None
    exc: BaseException
    if isinstance(cls, type) and issubclass(cls, BaseException) and \
            not issubclass(cls, _NOT_REBUILT):
        try:
            exc = cls(info.get("code")) if cls is SystemExit else cls(text)
        except Exception:  # noqa: BLE001 - a class whose constructor wants more
            exc = StudentError(name, text)
    else:
        exc = StudentError(name, text)
    if type(exc).__name__ != name:  # numpy's _ArrayMemoryError, a student's own class
        exc._gradproof_type = name
    where = info.get("where")
    if isinstance(where, list) and len(where) == 4 and isinstance(where[1], int):
        exc._gradproof_where = (str(where[0]), where[1], str(where[2]), str(where[3])[:300])
    return exc


class RemoteModule:
    """A student's module as the grader sees it: its gradable functions, as attributes."""

    def __init__(self, name: str):
        self.__name__ = name


class RemoteFunction:
    """A function of the student's module, called in the worker."""

    def __init__(self, worker: Worker, module: int, name: str, module_name: str,
                 source: str | None):
        self._worker, self._module = worker, module
        self.__name__ = self.__qualname__ = name
        self.__module__ = module_name
        self.__gradproof_source__ = source

    def __call__(self, *args: Any) -> Any:
        return self._worker.call(self._module, self.__name__, args)

    def __repr__(self) -> str:
        return f"<student function {self.__name__}>"

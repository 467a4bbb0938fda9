"""The grading process: ``python -m gradproof.grade._child FD`` (started by :mod:`.sandbox`).

Protocol. The parent writes two lines to stdin: a random key (hex) and the job
(JSON: files, what to grade, limits). This process reads both, keeps the key
only inside an HMAC object, replaces stdin with ``/dev/null`` and makes itself
non-dumpable (no process of the same user can read its memory). Every message
goes to the inherited pipe ``FD`` as one line ``TAG SEQ JSON`` where ``TAG`` is
HMAC-SHA256 of ``SEQ JSON`` under the key.

This process never runs a student's code. It starts one more process,
:mod:`._worker`, which imports the student's files and runs their functions on
request (:mod:`.remote`); the checker, the comparisons and every verdict run
here, on the numbers that come back. Nothing the student's code does in its
own process — print, write to descriptors, exit, patch NumPy or gradproof,
search its memory for the key, which is not there — can produce a result the
parent accepts.

Messages: ``ready``; ``import`` (file i); ``import-error`` (file i, finding);
``found`` (file i, names); ``start`` (file i, name); ``result`` (file i,
result dict); ``done``. The parent's clock runs from each message to the next.

Tampering: a submission that changes NumPy's or the standard modules'
attributes in its process (``np.allclose = ...``) gets ``error`` (kind
``tampering``) for that function and every later one: it cannot change a
grade any more, but it tried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time

from . import runner as _runner
from .findings import finding
from .remote import Worker, not_dumpable


class Channel:
    """Authenticated, numbered messages to the parent over one file descriptor."""

    def __init__(self, fd: int, key: bytes):
        self._fd = fd
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._seq = 0

    def send(self, event: str, **fields) -> None:
        self._seq += 1
        body = json.dumps({"event": event, **fields}, separators=(",", ":"))
        payload = f"{self._seq} {body}"
        mac = self._mac.copy()
        mac.update(payload.encode())
        data = f"{mac.hexdigest()} {payload}\n".encode()
        while data:
            data = data[os.write(self._fd, data):]


def _tampered(name: str, changed: list[str]) -> dict:
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return {"name": name, "status": "error", "findings": [finding(
        "tampering", f"the submission changed NumPy's or Python's own code ({shown}); its "
        "functions run in a process of their own, so this changes no grade, but no result "
        "of that process is taken")], "seconds": 0.0}


def main(argv: list[str]) -> None:
    fd = int(argv[1])
    key = bytes.fromhex(sys.stdin.buffer.readline().decode().strip())
    job = json.loads(sys.stdin.buffer.readline())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    not_dumpable()
    channel = Channel(fd, key)
    del key
    files = job["files"]
    todo = {int(i): names for i, names in job["todo"].items()}
    blocked = {int(i): b for i, b in job.get("blocked", {}).items()}
    worker = Worker(files, job["memory_mb"], job["cpu_s"])
    channel.send("ready")
    broken: list[str] = []
    for i, path in enumerate(files):
        if i not in todo:
            continue
        channel.send("import", file=i)
        module, loaded = worker.load(path)
        if module is None:
            channel.send("import-error", file=i, finding=finding(loaded["kind"], loaded["text"]))
            continue
        names = loaded["names"]
        channel.send("found", file=i, names=names, notes=loaded["notes"])
        grader = _runner.FileGrader(module, files, seed=job["seed"],
                                    max_evals=job["max_evals"], blocked=blocked.get(i))
        wanted = todo[i] if todo[i] is not None else names
        for name in [n for n in names if n in wanted]:
            channel.send("start", file=i, name=name)
            broken = broken or worker.changed()
            if broken:
                result = _tampered(name, broken)
            else:
                result = grader.grade(name)
                broken = worker.changed()
                if broken:
                    result = _tampered(name, broken)
                junk = worker.junk()
                if junk:
                    result["findings"] = [*result["findings"], finding(
                        "note", f"the submission wrote {junk} bytes into the pipe its results "
                        f"travel on while {name} was graded; they were skipped")]
            channel.send("result", file=i, result=result)
    seconds = worker.stop() + time.process_time()
    channel.send("done", seconds=round(seconds, 2))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)

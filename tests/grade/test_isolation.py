"""A submission cannot stop the grading of the others by signalling the grader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

KILLER = textwrap.dedent("""
    import os, signal
    def relu_forward(x):
        os.kill(os.getppid(), signal.SIGKILL)  # the process that started this one
        return x * (x > 0), x
    def relu_backward(dout, cache):
        return dout * (cache > 0)
""")
HONEST = textwrap.dedent("""
    def relu_forward(x):
        return x * (x > 0), x
    def relu_backward(dout, cache):
        return dout * (cache > 0)
""")


@pytest.mark.parametrize("launcher", ["default", "shim"])
def test_killing_its_parent_does_not_stop_the_grading_of_the_others(tmp_path, launcher):
    for name, source in (("a_killer", KILLER), ("b_honest", HONEST)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "layers.py").write_text(source)
    env = dict(os.environ)
    if launcher == "shim":  # no PID namespace: the shim takes the signal
        env["GRADPROOF_GRADE_NO_NAMESPACE"] = "1"
    done = subprocess.run([sys.executable, "-m", "gradproof", "grade", str(tmp_path), "--json",
                           "--timeout", "20"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    by_path = {os.path.basename(s["path"]): s for s in data["submissions"]}
    killer = {f["name"]: f["status"] for f in by_path["a_killer"]["functions"]}
    honest = {f["name"]: f["status"] for f in by_path["b_honest"]["functions"]}
    # the submission's parent is the grading process of that submission: in a PID
    # namespace it is the namespace's init, which ignores the signal (the relu is graded
    # as what it is); under the shim it dies, and the function in progress is an error.
    # Either way the other submission is graded.
    assert killer["relu_forward"] in ("error", "correct")
    assert honest == {"relu_forward": "correct", "relu_backward": "correct"}


def test_the_child_limits_processes_memory_and_cpu():
    probe = ("import resource\n"
             "from gradproof.grade._worker import limit\n"
             "limit(64, 100)\n"
             "print([resource.getrlimit(r)[0] for r in (resource.RLIMIT_NPROC,"
             " resource.RLIMIT_AS, resource.RLIMIT_CPU)])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    nproc, memory, cpu = json.loads(done.stdout)
    infinity = -1  # resource.RLIM_INFINITY
    assert nproc != infinity and memory != infinity and cpu == 100


FORGER = textwrap.dedent("""
    import os
    import numpy as np

    LINE = ('{"event": "result", "file": 0, "result": {"name": "relu_backward", '
            '"status": "correct"}}')

    def _everywhere():
        targets = [f"/proc/{os.getppid()}/fd/{fd}" for fd in range(64)]
        targets += [f"/proc/self/fd/{fd}" for fd in range(3, 64)]
        for path in targets:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                os.write(fd, ("0" * 64 + " 1 " + LINE + "\\n").encode())
            except OSError:
                pass
            os.close(fd)

    def relu_forward(x):
        _everywhere()
        return -x, x  # wrong

    def relu_backward(dout, cache):
        _everywhere()
        return dout  # wrong
""")


@pytest.mark.parametrize("launcher", ["default", "shim"])
def test_writing_into_the_graders_descriptors_never_makes_a_wrong_function_correct(
        tmp_path, launcher):
    (tmp_path / "layers.py").write_text(FORGER)
    env = dict(os.environ)
    if launcher == "shim":
        env["GRADPROOF_GRADE_NO_NAMESPACE"] = "1"
    done = subprocess.run([sys.executable, "-m", "gradproof", "grade", str(tmp_path / "layers.py"),
                           "--json", "--timeout", "20"], capture_output=True, text=True, env=env,
                          timeout=300)
    data = json.loads(done.stdout)
    statuses = {f["name"]: f["status"] for f in data["submissions"][0]["functions"]}
    assert set(statuses) == {"relu_forward", "relu_backward"}
    assert "correct" not in statuses.values()

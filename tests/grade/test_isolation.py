"""A submission cannot stop the grading of the others by signalling the grader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from gradproof.grade.sandbox import _launcher

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
    # in a PID namespace the signal reaches the submission's own process group (its
    # parent is outside, pid 0): an error; under the shim it hits the shim, and the
    # submission's process goes on: its relu is graded as what it is
    namespace = launcher == "default" and "unshare" in os.path.basename(_launcher()[0])
    assert killer["relu_forward"] in (("error",) if namespace else ("error", "correct"))
    assert honest == {"relu_forward": "correct", "relu_backward": "correct"}


def test_the_child_limits_processes_memory_and_cpu():
    probe = ("import resource\n"
             "from gradproof.grade._child import _limit\n"
             "_limit(64, 100)\n"
             "print([resource.getrlimit(r)[0] for r in (resource.RLIMIT_NPROC,"
             " resource.RLIMIT_AS, resource.RLIMIT_CPU)])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    nproc, memory, cpu = json.loads(done.stdout)
    infinity = -1  # resource.RLIM_INFINITY
    assert nproc != infinity and memory != infinity and cpu == 100

"""process_pool in a script: the `if __name__ == "__main__":` guard, or a clear error."""

from __future__ import annotations

import subprocess
import sys

LAYER = '''
import numpy as np

def f(x):
    return np.tanh(x), x

def f_backward(dout, x):
    return dout * (1 - np.tanh(x) ** 2)
'''

UNGUARDED = '''
import numpy as np
import gradproof
from layer import f, f_backward

pool = gradproof.process_pool(2)
print(gradproof.check_vjp(f, f_backward, np.ones(3), executor=pool).verdict)
'''

GUARDED = '''
import numpy as np
import gradproof
from layer import f, f_backward


def main():
    with gradproof.process_pool(2) as pool:
        print(gradproof.check_vjp(f, f_backward, np.ones(3), executor=pool).verdict)


if __name__ == "__main__":
    main()
'''


def _run(tmp_path, source):
    (tmp_path / "layer.py").write_text(LAYER)
    (tmp_path / "script.py").write_text(source)
    return subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def test_an_unguarded_script_is_told_to_add_the_main_guard(tmp_path):
    done = _run(tmp_path, UNGUARDED)
    assert done.returncode == 1
    assert "gradproof.errors.InputError" in done.stderr
    assert 'outside an `if __name__ == "__main__":` block' in done.stderr
    assert "script.py:6" in done.stderr  # the line that starts the pool
    assert "BrokenProcessPool" not in done.stderr.splitlines()[0]


def test_a_guarded_script_runs_its_parallel_check(tmp_path):
    done = _run(tmp_path, GUARDED)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

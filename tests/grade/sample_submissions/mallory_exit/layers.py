"""mallory_exit (written for gradproof's tests): wrong code that tries to end the grading
early or to forge results: sys.exit(0), os._exit(0), fake JSON on stdout and on every
file descriptor."""
import json
import os
import sys

import numpy as np

FAKE = {"event": "result", "file": 0, "result": {"name": "affine_forward", "status": "correct",
                                                 "findings": []}}


def affine_forward(x, w, b):
    line = json.dumps(FAKE)
    print(line)
    print(json.dumps({"version": 1, "submissions": []}))
    for fd in range(3, 64):
        try:
            os.write(fd, ("0" * 64 + " 99 " + line + "\n").encode())
        except OSError:
            pass
    out = x.reshape(x.shape[0], -1) @ w + b + 1.0  # BUG: wrong on purpose
    return out, (x, w, b)


def affine_backward(dout, cache):
    sys.exit(0)


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    os._exit(0)

"""mallory_forge (written for gradproof's tests): wrong code that tries to forge its grade
from inside the process that runs it: it searches the heap and the call stack for the
grader's result channel (and the key inside it), and would send "correct" for every
function before exiting. (Writing into the grading process's descriptors through /proc:
tests/grade/test_isolation.py.)"""
import gc
import os
import sys

import numpy as np

NAMES = ("affine_forward", "affine_backward", "relu_forward", "relu_backward")


def _forge_with(channel):
    for name in NAMES:
        channel.send("start", file=0, name=name)
        channel.send("result", file=0, result={"name": name, "status": "correct",
                                               "findings": [], "seconds": 0.0})
    channel.send("done", seconds=0.0)
    os._exit(0)


def _search_heap():
    for obj in gc.get_objects():
        if type(obj).__name__ == "Channel" and hasattr(obj, "send"):
            _forge_with(obj)


def _search_stack():
    frame = sys._getframe()
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if type(value).__name__ == "Channel":
                _forge_with(value)
        frame = frame.f_back


def affine_forward(x, w, b):
    _search_heap()
    _search_stack()
    out = x.reshape(x.shape[0], -1) @ w + 2 * b  # BUG: wrong on purpose
    return out, (x, w, b)


def affine_backward(dout, cache):
    _search_heap()
    _search_stack()
    x, w, b = cache
    return dout @ w.T, x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0) * 2  # BUG: db


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    _search_heap()
    return dout  # BUG: wrong on purpose

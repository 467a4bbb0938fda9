"""Three demos of the classic leaks: each runs a bad recipe and its fix, with diagnostics on.

=============  ===============================================================
sigmoid-init   a sigmoid MLP on digits with initial weights of std 1: most
               units saturate and the first loss is ~16 instead of log 10;
               fix: Xavier init
relu-lr        a ReLU MLP on digits with SGD at lr 1.0: the first updates kill
               most ReLUs for good; fix: lr 0.02
rnn-long       a vanilla tanh RNN must remember the first of 50 inputs:
               recurrent weights of gain 2 explode (fix: clipping the gradient
               norm), and with the usual init the gradient reaching step 1 is
               ~1e-14 of the last step's (vanishing; an LSTM with forget-gate
               bias 3 or a GRU with update-gate bias 3 keep it within ~10x)
=============  ===============================================================

``run_demo(name)`` returns a :class:`RunResult` per run: its record, its
findings, its losses and accuracies. Runs are one epoch by default and take a
fraction of a second each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data import Dataset, load_digits
from ..errors import InputError
from ..nn import GRU, LSTM, MLP, RNN, Linear, Module
from ..optim import SGD, Adam
from ..train.trainer import Trainer
from .detectors import Finding, detect
from .stats import Diagnostics, RunRecord

__all__ = ["DEMOS", "RunSpec", "RunResult", "run_demo", "run_spec", "LastStepClassifier",
           "remember_first_data"]


class LastStepClassifier(Module):
    """A recurrent layer over x (N, T, D) and a linear head on the last hidden state (N, H).

    ``cell``: ``"rnn"``, ``"lstm"`` or ``"gru"``. ``gain``: when given, the
    recurrent weights ``Wh`` of an RNN are redrawn as N(0, gain^2 / H) (gain > 1
    gives a spectral radius about ``gain``: gradients grow through time).
    ``memory_bias``: added to the LSTM forget-gate or GRU update-gate biases
    (a positive value makes the cell keep its state, so gradients survive).
    """

    CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}

    def __init__(self, cell: str = "rnn", input_size: int = 1, hidden_size: int = 32,
                 num_classes: int = 2, gain: float | None = None, memory_bias: float = 0.0,
                 rng: int = 0) -> None:
        super().__init__()
        if cell not in self.CELLS:
            raise InputError(f"cell must be one of {sorted(self.CELLS)}, got {cell!r}")
        gen = np.random.default_rng(rng)
        H = hidden_size
        self.rnn = self.CELLS[cell](input_size, H, rng=gen)
        self.head = Linear(H, num_classes, init="xavier", rng=gen)
        if gain is not None:
            self.rnn.Wh.data[...] = gain * gen.standard_normal(self.rnn.Wh.shape) / np.sqrt(H)
        if memory_bias:  # LSTM gates i, f, o, g; GRU gates r, z, n: the second block keeps state
            bias = self.rnn.bx if cell == "gru" else self.rnn.b
            bias.data[H:2 * H] += memory_bias
        self._h_shape: tuple[int, ...] = ()

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, T, D) -> scores (N, C)."""
        h = self.rnn.forward(x)
        self._h_shape = h.shape
        return self.head.forward(h[:, -1])

    def backward(self, dscores: np.ndarray) -> np.ndarray:
        """dscores (N, C) -> dx (N, T, D)."""
        dh = np.zeros(self._h_shape)
        dh[:, -1] = self.head.backward(dscores)
        return self.rnn.backward(dh)


def remember_first_data(T: int = 50, n: int = 1200, seed: int = 0) -> Dataset:
    """Sequences x (n, T, 1) of N(0, 1) noise whose first value is +1 or -1; y its sign.

    Only the first step carries the label, so a model must carry it over T steps.
    Split 800 train / 200 val / 200 test (scaled with n).
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = rng.standard_normal((n, T, 1))
    x[:, 0, 0] = 2.0 * y - 1.0
    a, b = int(n * 2 / 3), int(n * 5 / 6)
    return Dataset(x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:], 2, f"remember-first T={T}")


@dataclass
class RunSpec:
    """One run of a demo: a label, whether it is the ``bad`` recipe or a ``fix``, the
    detector kinds it is about (``expect``), and how to build it."""

    label: str
    role: str
    expect: tuple[str, ...]
    make_model: Callable[[], Module]
    make_optimizer: Callable[[list], Any]
    data: str = "digits"
    clip_norm: float | None = None
    batch_size: int = 32


@dataclass
class RunResult:
    """The outcome of one :class:`RunSpec`: its findings and figures."""

    spec: RunSpec
    record: RunRecord
    findings: list[Finding]
    train_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    steps_per_epoch: int = 0
    seconds: float = 0.0

    def fired(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def expected_fired(self) -> bool:
        """Every expected kind fired (bad runs) / none fired (fixes)."""
        kinds = {f.kind for f in self.findings}
        if self.spec.role == "bad":
            return all(k in kinds for k in self.spec.expect)
        return not any(k in kinds for k in self.spec.expect)


def _mlp(activation: str, init) -> Callable[[], Module]:
    return lambda: MLP(64, [64, 64, 64], 10, activation=activation, init=init, rng=0)


def _sgd(lr: float) -> Callable[[list], Any]:
    return lambda params: SGD(params, lr=lr, momentum=0.9)


def _adam(lr: float) -> Callable[[list], Any]:
    return lambda params: Adam(params, lr=lr)


def _seq(cell: str, **options) -> Callable[[], Module]:
    return lambda: LastStepClassifier(cell, **options)


DEMOS: dict[str, tuple[str, list[RunSpec]]] = {
    "sigmoid-init": (
        "Sigmoid MLP (64-64-64-64-10) on digits, weights initialised N(0, 1)",
        [RunSpec("sigmoid, init std 1.0", "bad", ("saturation", "initial_loss"),
                 _mlp("sigmoid", 1.0), _adam(1e-2)),
         RunSpec("sigmoid, Xavier init", "fix", ("saturation", "initial_loss"),
                 _mlp("sigmoid", "xavier"), _adam(1e-2))]),
    "relu-lr": (
        "ReLU MLP (64-64-64-64-10, He init) on digits, SGD with momentum 0.9",
        [RunSpec("relu, lr 1.0", "bad", ("dead_relu", "update_ratio"),
                 _mlp("relu", "he"), _sgd(1.0)),
         RunSpec("relu, lr 0.02", "fix", ("dead_relu", "update_ratio"),
                 _mlp("relu", "he"), _sgd(0.02))]),
    "rnn-long": (
        "Recurrent nets (H=32) that must remember the first of 50 inputs",
        [RunSpec("rnn, Wh gain 2, SGD lr 0.1", "bad", ("exploding",),
                 _seq("rnn", gain=2.0), _sgd(0.1), data="sequence"),
         RunSpec("rnn, Wh gain 2, SGD lr 0.1, clip_norm 1", "fix", ("exploding",),
                 _seq("rnn", gain=2.0), _sgd(0.1), data="sequence", clip_norm=1.0),
         RunSpec("rnn, default init, Adam", "bad", ("vanishing",),
                 _seq("rnn"), _adam(1e-2), data="sequence"),
         RunSpec("lstm, forget-gate bias +3, Adam", "fix", ("vanishing",),
                 _seq("lstm", memory_bias=3.0), _adam(1e-2), data="sequence"),
         RunSpec("gru, update-gate bias +3, Adam", "fix", ("vanishing",),
                 _seq("gru", memory_bias=3.0), _adam(1e-2), data="sequence")]),
}

_DATA: dict[str, Callable[[], Dataset]] = {"digits": load_digits,
                                           "sequence": remember_first_data}


def run_spec(spec: RunSpec, epochs: int = 1, every: int = 1,
             data: Dataset | None = None) -> RunResult:
    """Train ``spec`` for ``epochs`` with :class:`Diagnostics` attached; detect."""
    data = data if data is not None else _DATA[spec.data]()
    model = spec.make_model()
    diag = Diagnostics(every=every)
    trainer = Trainer(model, spec.make_optimizer(model.parameters()), batch_size=spec.batch_size,
                      epochs=epochs, clip_norm=spec.clip_norm, hooks=[diag], progress=False,
                      restore_best=False)
    start = time.perf_counter()
    history = trainer.fit(data)
    seconds = time.perf_counter() - start
    steps_per_epoch = -(-len(data.y_train) // spec.batch_size)
    return RunResult(spec, diag.record, detect(diag.record), list(history.train_loss),
                     list(history.val_acc), steps_per_epoch, seconds)


def run_demo(name: str, epochs: int = 1, every: int = 1) -> list[RunResult]:
    """All runs of demo ``name`` (a key of :data:`DEMOS`), in order."""
    if name not in DEMOS:
        raise InputError(f"name must be one of {sorted(DEMOS)}, got {name!r}")
    cache: dict[str, Dataset] = {}
    results = []
    for spec in DEMOS[name][1]:
        if spec.data not in cache:
            cache[spec.data] = _DATA[spec.data]()
        results.append(run_spec(spec, epochs, every, cache[spec.data]))
    return results

"""The record that describes one zoo case, and the registry that collects them.

A case is a CS231n-style pair ``forward(*inputs) -> (out, cache)`` and
``backward(dout, cache) -> grads`` (``backward(*douts, cache)`` when ``out`` is a
tuple) together with a recipe for its fixed, seeded inputs. ``kind`` says what a
good gradient checker must conclude:

- ``"bug"``: a real backpropagation bug, the kind students and engineers make;
  the checker must flag it. ``expect`` is a short hint of what a good
  diagnosis says ("factor 2", "in place: dout", "shape", ...).
- ``"correct"``: a correct implementation, often numerically awkward (float32,
  huge or tiny values, saturation); the checker must NOT flag it.
- ``"kink"``: a correct implementation evaluated exactly at a
  non-differentiable point where the analytic gradient is a valid
  subgradient; the checker must NOT flag it.

Bug cases carry the correct twin (``ref_forward``, ``ref_backward``) so the
zoo's own tests can show that the bug really changes the behaviour. A bug that
lives on a structure (a column, a stride, one entry per row, a channel, a tap,
the border of an image) says where with ``region``; code that computes in
float32 whatever its inputs says so with ``computes_in``; an input whose
domain ends at 0 (fed by a ReLU, with exact zeros) is named in ``nonnegative``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["Case", "KINDS", "add", "mask", "normal", "register", "registry"]

KINDS = ("bug", "correct", "kink")

Forward = Callable[..., tuple]
Backward = Callable[..., object]


@dataclass(frozen=True)
class Case:
    """One forward/backward pair with fixed inputs and the verdict it deserves.

    Attributes:
        name: unique identifier, snake_case (``"affine_dw_transposed"``).
        family: the layer family (``"dense"``, ``"norm"``, ``"conv"``, ...).
        kind: ``"bug"``, ``"correct"`` or ``"kink"``.
        description: one line; for a bug, what the student did wrong.
        forward: ``forward(*inputs) -> (out, cache)``.
        backward: ``backward(dout, cache)`` (or ``backward(*douts, cache)``)
            returning one gradient per input (``None`` for integer inputs), or a
            single array when there is one input.
        make_inputs: ``make_inputs(rng) -> tuple`` of inputs (float64 unless the
            case is about float32).
        wrt: indices of the inputs to check, or ``None`` for every float input.
        expect: for bugs, what a good checker should say.
        ref_forward, ref_backward: the correct twin of a bug case.
        seed: seed of the generator given to ``make_inputs``.
        region: for a bug confined to a structure, ``region(inputs) ->
            {input index: boolean mask}``: the gradients that differ from the
            twin's, and the coordinates where they may differ (every other
            gradient, and every coordinate outside its mask, equals the twin's).
        computes_in: ``"float32"`` when the forward rounds to float32 inside
            whatever the dtype of its inputs (float32-only code, or a float64
            forward that casts down); its derivatives are only as accurate as
            float32 allows.
        nonnegative: inputs whose domain is ``x >= 0`` (below 0 the forward
            returns NaN or raises); their values include exact zeros.
    """

    name: str
    family: str
    kind: str
    description: str
    forward: Forward
    backward: Backward
    make_inputs: Callable[[np.random.Generator], tuple]
    wrt: tuple[int, ...] | None = None
    expect: str = ""
    ref_forward: Forward | None = None
    ref_backward: Backward | None = None
    seed: int = 0
    region: Callable[[tuple], dict[int, np.ndarray]] | None = None
    computes_in: str | None = None
    nonnegative: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"case {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "bug" and not self.expect:
            raise InputError(f"bug case {self.name!r} needs an expect hint")

    def inputs(self) -> tuple:
        """A fresh copy of the case's inputs (same values on every call)."""
        return tuple(self.make_inputs(np.random.default_rng(self.seed)))

    @property
    def reference(self) -> tuple[Forward, Backward]:
        """The correct (forward, backward) pair: the twin for bugs, the case itself otherwise."""
        return (self.ref_forward or self.forward, self.ref_backward or self.backward)


_REGISTRY: dict[str, Case] = {}


def register(case: Case) -> Case:
    """Add ``case`` to the zoo; names must be unique."""
    if case.name in _REGISTRY:
        raise InputError(f"duplicate zoo case name {case.name!r}")
    _REGISTRY[case.name] = case
    return case


def registry() -> dict[str, Case]:
    """Every registered case by name, in registration order."""
    return dict(_REGISTRY)


def add(kind: str, family: str, name: str, description: str, forward: Forward,
        backward: Backward, make_inputs: Callable[[np.random.Generator], tuple],
        **extra) -> Case:
    """Build a :class:`Case` and register it (``extra``: any other :class:`Case` field)."""
    return register(Case(name=name, family=family, kind=kind, description=description,
                         forward=forward, backward=backward, make_inputs=make_inputs, **extra))


def normal(rng: np.random.Generator, *shape: int, scale: float = 1.0,
           dtype: type = np.float64) -> np.ndarray:
    """Standard normal values times ``scale``, of the given shape and dtype."""
    return (scale * rng.standard_normal(shape)).astype(dtype)


def mask(shape: tuple[int, ...], index) -> np.ndarray:
    """A boolean array of ``shape``, True at ``index`` (anything NumPy can index with)."""
    where = np.zeros(shape, dtype=bool)
    where[index] = True
    return where

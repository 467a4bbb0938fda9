"""The student's forward and backward in :func:`gradproof.check_vjp`'s conventions.

``check_vjp`` sees only the differentiable arrays of a case; everything else
(labels, parameter dicts, G) is closed over and copied for every call. The
student's returns are normalised (lists, ``(next_h, next_c, cache)``,
``(loss, dx)``); exceptions, ``SystemExit`` included, are kept for the report
and raised as :class:`StudentRaised`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .findings import finding
from .specs import Spec
from .student import Unusable, copy_args, parse_forward, parse_grads

__all__ = ["StudentRaised", "Harness", "random_douts"]


class StudentRaised(Exception):
    """The student's code raised inside the checker (SystemExit included)."""


class Harness:
    """The student's forward and backward in :func:`check_vjp`'s conventions, for one case.

    ``check_vjp`` sees only the differentiable arrays; everything else (labels,
    parameter dicts, G) is closed over and copied for every call. With
    ``hybrid`` the outputs come from the reference and the cache from the student.
    """

    def __init__(self, spec: Spec, forward: Callable, backward: Callable | None,
                 args: tuple, options: dict, hybrid: bool):
        self.spec, self.fwd, self.bwd = spec, forward, backward
        self.args, self.options, self.hybrid = args, options, hybrid
        self.last_error: BaseException | None = None

    def full_args(self, arrays: tuple) -> tuple:
        full = list(self.args)
        for i, a in zip(self.spec.wrt, arrays):
            full[i] = a
        return copy_args(tuple(full))

    def raw_forward(self, args: tuple) -> tuple[tuple, Any]:
        """``(outs, cache)`` of the student's forward (reference outs when hybrid)."""
        spec = self.spec
        ref_args = copy_args(args) if self.hybrid else None
        if spec.seeded:
            np.random.seed(0)
        result = self.fwd(*args)
        if self.hybrid:
            n = 1 if spec.kind != "layer" else spec.n_outputs
            if not isinstance(result, (tuple, list)) or len(result) != n + 1:
                raise Unusable("error", finding("structure", "the forward returned no cache"))
            return spec.reference(ref_args, **self.options).outs, result[n]
        return parse_forward(spec, result, spec.forward)

    def forward(self, *arrays: np.ndarray) -> tuple[Any, Any]:
        try:
            outs, cache = self.raw_forward(self.full_args(arrays))
        except Unusable:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: the student's code
            self.last_error = exc
            raise StudentRaised(f"{type(exc).__name__}: {exc}") from exc
        if self.spec.kind != "layer":
            return float(np.asarray(outs[0], dtype=np.float64).reshape(())), cache
        return (outs[0] if len(outs) == 1 else tuple(outs)), cache

    def backward(self, *douts_and_cache: Any) -> Any:
        *douts, cache = douts_and_cache
        if self.spec.kind != "layer":  # losses: the cache is dx
            dx = np.asarray(cache)
            return dx * np.asarray(douts[0], dtype=dx.dtype)
        try:
            raw = self.bwd(*douts, cache)
        except BaseException as exc:  # noqa: BLE001
            self.last_error = exc
            raise StudentRaised(f"{type(exc).__name__}: {exc}") from exc
        grads = parse_grads(self.spec, raw, "backward")
        return grads[0] if len(grads) == 1 else grads


def random_douts(spec: Spec, outs: tuple, rng: np.random.Generator) -> tuple:
    out = []
    for o in outs:
        o = np.asarray(o)
        dtype = o.dtype if o.dtype.kind == "f" else np.float64
        out.append(rng.standard_normal(o.shape).astype(dtype))
    return tuple(out)

"""Assertions for test suites: a failed gradient check fails the test with the report's table.

``GradientError`` is an ``AssertionError`` whose message is the report's table,
so pytest (and unittest) print the table as the failure message::

    from gradproof.testing import assert_vjp, assert_vjp_shapes

    def test_affine_backward():
        assert_vjp(affine, affine_backward, x, w, b)

    def test_affine_backward_over_shapes():
        assert_vjp_shapes(
            affine, affine_backward,
            make_inputs=lambda rng, shape: (rng.standard_normal(shape),
                                            rng.standard_normal((shape[1], 3)),
                                            rng.standard_normal(3)),
            shapes=[(1, 1), (4, 7), (2, 16)],
        )

The pytest plugin (:mod:`gradproof.pytest_plugin`) wraps the same helpers in
a ``gradcheck`` fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .check import Report, check_grad, check_vjp
from .errors import GradientError, InputError, InputTypeError, describe

__all__ = ["assert_vjp", "assert_grad", "assert_vjp_shapes"]


def assert_vjp(forward: Callable, backward: Callable | None, *inputs: Any,
               **options: Any) -> Report:
    """:func:`gradproof.check_vjp`, raising :class:`GradientError` (the table) on failure.

    Returns the report when the check passes, for further assertions.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    return check_vjp(forward, backward, *inputs, **options).raise_if_failed()


def assert_grad(f: Callable[[np.ndarray], Any], grad: Callable[[np.ndarray], np.ndarray],
                x: np.ndarray, **options: Any) -> Report:
    """:func:`gradproof.check_grad` for a scalar ``f(x)``, raising on failure."""
    __tracebackhide__ = True
    return check_grad(f, grad, x, **options).raise_if_failed()


def assert_vjp_shapes(
    forward: Callable,
    backward: Callable | None,
    make_inputs: Callable[[np.random.Generator, Any], Any],
    shapes: Iterable[Any],
    seed: int = 0,
    **options: Any,
) -> list[Report]:
    """Check ``forward``/``backward`` at one random point per shape, in one call.

    Parameters
    ----------
    make_inputs:
        ``make_inputs(rng, shape) -> inputs``: a tuple of inputs (or a single
        array) for that shape, drawn from ``rng``.
    shapes:
        Anything ``make_inputs`` understands: tuples, ints, dicts of sizes.
    seed:
        Shape ``k`` uses ``numpy.random.default_rng([seed, k])`` for its inputs
        and ``seed + k`` as the checker's seed, so each shape is reproducible
        on its own.
    **options:
        Passed to :func:`gradproof.check_vjp`.

    Every shape is checked even after a failure; the error lists each failing
    shape with its table. Returns the reports when all pass.
    """
    __tracebackhide__ = True
    if not callable(make_inputs):
        raise InputTypeError(
            f"make_inputs must be callable as make_inputs(rng, shape), got {describe(make_inputs)}")
    shapes = list(shapes)
    if not shapes:
        raise InputError("shapes must name at least one shape, got an empty sequence")
    reports, failures = [], []
    for k, shape in enumerate(shapes):
        inputs = make_inputs(np.random.default_rng([seed, k]), shape)
        if not isinstance(inputs, tuple):
            inputs = (inputs,)
        report = check_vjp(forward, backward, *inputs, seed=seed + k, **options)
        reports.append(report)
        if not report.ok:
            failures.append(f"shape {shape!r} (shape index {k}, seed {seed + k}):\n{report}")
    if failures:
        raise GradientError(
            f"gradient check failed for {len(failures)} of {len(shapes)} shapes\n\n"
            + "\n\n".join(failures),
            report=next(r for r in reports if not r.ok),
        )
    return reports

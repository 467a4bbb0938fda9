"""pytest plugin: a ``gradcheck`` fixture and a ``--gradproof-seed`` option.

Enable it with ``-p gradproof.pytest_plugin``, ``pytest_plugins =
["gradproof.pytest_plugin"]`` in a conftest, or (once installed with the entry
point) automatically::

    def test_affine(gradcheck):
        gradcheck.vjp(affine, affine_backward, x, w, b)
        gradcheck.shapes(affine, affine_backward, make_inputs, shapes=[(2, 3), (5, 1)])
        gradcheck.grad(f, grad_f, x)

A failing check fails the test with the report's table as the message (the
helpers raise :class:`gradproof.GradientError`, an ``AssertionError``).
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from . import testing

__all__ = ["GradCheck", "gradcheck"]


class GradCheck:
    """The ``gradcheck`` fixture: :mod:`gradproof.testing`'s helpers with a default seed."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def vjp(self, forward, backward, *inputs: Any, **options: Any):
        """:func:`gradproof.testing.assert_vjp`."""
        __tracebackhide__ = True
        options.setdefault("seed", self.seed)
        return testing.assert_vjp(forward, backward, *inputs, **options)

    def grad(self, f, grad, x, **options: Any):
        """:func:`gradproof.testing.assert_grad`."""
        __tracebackhide__ = True
        options.setdefault("seed", self.seed)
        return testing.assert_grad(f, grad, x, **options)

    def shapes(self, forward, backward, make_inputs, shapes, **options: Any):
        """:func:`gradproof.testing.assert_vjp_shapes`."""
        __tracebackhide__ = True
        options.setdefault("seed", self.seed)
        return testing.assert_vjp_shapes(forward, backward, make_inputs, shapes, **options)


def _seed(text: str) -> int:
    """``--gradproof-seed``: an int >= 0 (a usage error, said once, otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--gradproof-seed must be an int >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--gradproof-seed must be an int >= 0, got {value}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradproof")
    group.addoption("--gradproof-seed", type=_seed, default=0,
                    help="seed of the gradcheck fixture's random directions (default 0)")


@pytest.fixture
def gradcheck(request: pytest.FixtureRequest) -> GradCheck:
    """Gradient-check assertions whose failure message is gradproof's report table."""
    return GradCheck(seed=request.config.getoption("--gradproof-seed"))

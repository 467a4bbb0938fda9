"""Second-order checks for NumPy code: Hessian-vector products against differences of
gradients.

A scalar function ``f(x1, ..., xk)`` with gradient ``grad(x1, ..., xk) ->
(g1, ..., gk)`` has a Hessian ``H``; a Newton-type method, an influence
function or a double-backward rule needs ``H v``. The gradient map ``x -> g``
has Jacobian ``H`` and ``H`` is symmetric, so its VJP with a cotangent ``w``
is ``H^T w = H w``: checking ``hvp`` is :func:`gradproof.check_vjp` of
``grad`` with ``hvp`` as its backward. Every measurement is a difference of
gradients along a random direction, with gradproof's step and tolerance
model::

    def f(x):       return np.sum(np.log1p(x ** 2))
    def grad(x):    return 2 * x / (1 + x ** 2)
    def hvp(v, x):  return v * 2 * (1 - x ** 2) / (1 + x ** 2) ** 2

    check_hvp(grad, hvp, x).raise_if_failed()

For torch and JAX code the second derivative comes from autograd:
:func:`gradproof.adapters.torch.gradgradcheck` / ``check_second_order`` and
:func:`gradproof.adapters.jax.check_jax_second_order`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..check import Report, check_vjp
from ..errors import InputTypeError, describe

__all__ = ["check_hvp"]


def check_hvp(grad: Callable, hvp: Callable, *inputs: Any, **options: Any) -> Report:
    """Check ``hvp`` (Hessian-vector products) against differences of ``grad``.

    Parameters
    ----------
    grad:
        ``grad(*inputs) -> g`` (one array per input; a single array for one
        input): the gradient of a scalar function, each of its input's shape.
    hvp:
        ``hvp(vs, *inputs) -> Hv``: ``vs`` holds one array per input (a single
        array for one input), the result one array per input, ``H v`` with
        ``H`` the Hessian of the scalar function at ``inputs``.
    *inputs, **options:
        As in :func:`gradproof.check_vjp` (``wrt``, ``seed``, ``mode``, ...).
        ``grad`` itself is not checked here: check it first with
        :func:`gradproof.check_grad`.

    Returns
    -------
    Report
        Of the map ``inputs -> grad(inputs)``; a failing input means ``hvp`` is
        wrong in the rows of ``H`` that belong to it.
    """
    for name, fn in (("grad", grad), ("hvp", hvp)):
        if not callable(fn):
            raise InputTypeError(f"{name} must be callable, got {describe(fn)}")

    def forward(*xs):
        return grad(*xs), xs

    def backward(*args):
        *ws, xs = args
        return hvp(ws[0] if len(ws) == 1 else tuple(ws), *xs)

    report = check_vjp(forward, backward, *inputs, **options)
    report.function = f"hvp of {getattr(grad, '__qualname__', type(grad).__name__)}"
    return report

"""``torch.autograd.gradcheck`` and ``gradgradcheck``, answered by gradproof.

An existing torch test suite switches by changing one import::

    from torch.autograd import gradcheck, gradgradcheck              # before
    from gradproof.adapters.torch import gradcheck, gradgradcheck    # after

Same signatures, same return value (``True``) and the same exception
(``torch.autograd.gradcheck.GradcheckError``, a ``RuntimeError``) or ``False``
with ``raise_exception=False``. The exception's message is gradproof's report
and it carries the :class:`~gradproof.check.Report` as ``.report``.

What changes underneath: the inputs that ``requires_grad`` are checked by
:func:`gradproof.adapters.torch.check_torch` (random projections with
estimated tolerances, side checks, localisation), not by a full Jacobian with
fixed ``eps``/``atol``/``rtol``. Those arguments, and the switches for checks
gradproof does not make (``check_forward_ad``, ``check_batched_grad``, ...),
are accepted so that calls keep working, and ignored; run torch's own
``gradcheck`` for forward-mode AD and batched gradients. An inconclusive check
(nothing proven either way) fails like a failed one: a gradcheck passes only
what is proven.

:func:`gradgradcheck` checks the second derivative: the function
``(inputs, grad_outputs) -> torch.autograd.grad(fn(inputs), inputs,
grad_outputs, create_graph=True)`` — the backward itself — is checked with
``check_torch``, so its VJP (a Hessian-vector product, through torch's double
backward of your ``Function``) is compared against differences of gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["gradcheck", "gradgradcheck", "check_second_order"]


def _as_tuple(inputs: Any) -> tuple:
    torch = _torch()
    return (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)


def _torch():
    from .torch import _torch as load

    return load()


def _differentiable(inputs: Sequence) -> list[int]:
    torch = _torch()
    return [i for i, x in enumerate(inputs)
            if isinstance(x, torch.Tensor) and x.requires_grad and x.is_floating_point()]


def _verdict(report, raise_exception: bool) -> bool:
    """torch's contract: True, or GradcheckError / False."""
    __tracebackhide__ = True  # pytest shows the caller's line
    if report.ok:
        return True
    if raise_exception:
        from torch.autograd.gradcheck import GradcheckError

        error = GradcheckError(f"gradproof: the gradient check did not pass (verdict "
                               f"{report.verdict}):\n{report}")
        error.report = report
        raise error
    return False


def gradcheck(func: Callable, inputs: Any, *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
              check_batched_grad: bool = False, check_batched_forward_grad: bool = False,
              check_forward_ad: bool = False, check_backward_ad: bool = True,
              fast_mode: bool = False, masked: bool | None = None, seed: int = 0,
              **options: Any) -> bool:
    """``torch.autograd.gradcheck`` with gradproof's checker underneath.

    Parameters
    ----------
    func:
        A function of tensors returning a tensor or a (nested) tuple of tensors.
    inputs:
        A tensor or a tuple of inputs; the float tensors with ``requires_grad``
        are checked, everything else is passed through.
    raise_exception:
        ``True``: raise ``torch.autograd.gradcheck.GradcheckError`` (message:
        the report; ``.report``: the Report) unless the check is ``ok``.
        ``False``: return ``False`` instead.
    eps, atol, rtol, nondet_tol, check_*, fast_mode, masked:
        Accepted for compatibility and ignored: steps and tolerances come from
        gradproof's error model (see the module docstring).
    seed, **options:
        Passed to :func:`gradproof.adapters.torch.check_torch` (``mode``,
        ``dtype``, ``device``, ...).

    Returns
    -------
    bool
        ``True`` when every checked input is proven right.
    """
    __tracebackhide__ = True
    from .torch import check_torch

    inputs = _as_tuple(inputs)
    wrt = _differentiable(inputs)
    if not wrt:
        raise InputError("gradcheck expects at least one input tensor to require gradient, "
                         "got none; call x.requires_grad_() on the inputs to check")
    report = check_torch(func, *inputs, wrt=wrt, seed=seed, **options)
    return _verdict(report, raise_exception)


def _backward_of(func: Callable, n_inputs: int, wrt: list[int]) -> Callable:
    """``(*inputs, *grad_outputs) -> grads of the inputs in wrt`` with ``create_graph``, so
    that torch can differentiate the backward again (zeros where an input is unused)."""
    torch = _torch()

    def backward(*args):
        inputs, grad_outputs = args[:n_inputs], args[n_inputs:]
        from .torch import _flatten

        outs = [o for o in _flatten(func(*inputs)) if o.requires_grad]
        wanted = [inputs[i] for i in wrt]
        grads = torch.autograd.grad(outs, wanted, grad_outputs=list(grad_outputs)[:len(outs)],
                                    create_graph=True, allow_unused=True)
        return tuple(torch.zeros_like(x) if g is None else g for x, g in zip(wanted, grads))

    return backward


def _random_grad_outputs(func: Callable, inputs: tuple, seed: int) -> tuple:
    torch = _torch()
    from .torch import _flatten

    with torch.enable_grad():
        outs = [o for o in _flatten(func(*inputs)) if o.requires_grad]
    rng = np.random.default_rng([seed, 2])
    return tuple(torch.from_numpy(rng.standard_normal(tuple(o.shape))).to(o.dtype)
                 .requires_grad_() for o in outs)


def check_second_order(func: Callable, *inputs: Any, grad_outputs: Sequence | None = None,
                       seed: int = 0, **options: Any):
    """The Report of a second-order check: ``check_torch`` of ``func``'s backward.

    The checked function is ``(*inputs, *grad_outputs) -> d<grad_outputs, func(inputs)>/d
    inputs`` (the inputs that require grad, or every float input when none does);
    its VJP is torch's double backward, compared with differences of gradients.
    ``grad_outputs`` default to seeded standard normal tensors of the outputs' shapes.
    """
    from .torch import check_torch

    torch = _torch()
    wrt = _differentiable(inputs) or [i for i, x in enumerate(inputs)
                                      if isinstance(x, torch.Tensor) and x.is_floating_point()]
    if not wrt:
        raise InputError("check_second_order needs at least one float tensor input")
    leaves = tuple(x.detach().requires_grad_() if i in wrt else x for i, x in enumerate(inputs))
    if grad_outputs is None:
        grad_outputs = _random_grad_outputs(func, leaves, seed)
    grad_outputs = tuple(g.detach() for g in _as_tuple(grad_outputs))
    names = options.pop("names", None) or (
        [f"input{i}" for i in range(len(inputs))]
        + [f"grad_output{k}" for k in range(len(grad_outputs))])
    report = check_torch(_backward_of(func, len(inputs), wrt), *leaves, *grad_outputs,
                         wrt=list(wrt) + list(range(len(inputs), len(inputs)
                                                    + len(grad_outputs))),
                         names=names, seed=seed, **options)
    report.function = f"backward of {report.function}"
    return report


def gradgradcheck(func: Callable, inputs: Any, grad_outputs: Any = None, *, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3,
                  gen_non_contig_grad_outputs: bool = False, raise_exception: bool = True,
                  nondet_tol: float = 0.0, check_undefined_grad: bool = True,
                  check_grad_dtypes: bool = False, check_batched_grad: bool = False,
                  check_fwd_over_rev: bool = False, check_rev_over_rev: bool = True,
                  fast_mode: bool = False, masked: bool = False, seed: int = 0,
                  **options: Any) -> bool:
    """``torch.autograd.gradgradcheck`` with gradproof's checker underneath.

    The backward of ``func`` (a function of the inputs and ``grad_outputs``)
    is checked with :func:`check_second_order`; the return value and the
    exception are :func:`gradcheck`'s. ``grad_outputs`` default to seeded
    random tensors. The torch-specific tolerance arguments are accepted and
    ignored.
    """
    __tracebackhide__ = True
    inputs = _as_tuple(inputs)
    if not _differentiable(inputs):
        raise InputError("gradgradcheck expects at least one input tensor to require "
                         "gradient, got none; call x.requires_grad_() on the inputs to check")
    report = check_second_order(func, *inputs, grad_outputs=grad_outputs, seed=seed, **options)
    return _verdict(report, raise_exception)

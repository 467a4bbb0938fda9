"""The checker: analytic vector-Jacobian products against numerical ones.

``check_vjp`` and ``check_grad`` return a :class:`Report`; see
:mod:`gradproof.check.engine` for the method and :mod:`gradproof.check.numeric`
for how each measurement's error is estimated.
"""

from .calls import process_pool
from .engine import check_grad, check_vjp
from .report import Finding, InputResult, Kink, Report

__all__ = [
    "check_vjp",
    "check_grad",
    "Report",
    "InputResult",
    "Kink",
    "Finding",
    "process_pool",
]

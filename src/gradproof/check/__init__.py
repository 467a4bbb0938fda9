"""The checker: analytic vector-Jacobian products against numerical ones.

``check_vjp`` and ``check_grad`` return a :class:`Report`; see
:mod:`gradproof.check.engine` for the method and :mod:`gradproof.check.numeric`
for how each measurement's error is estimated.
"""

from .calls import process_pool
from .engine import check_grad, check_vjp
from .model import LayerCheck, ModelReport, check_model
from .report import Finding, InputResult, Kink, Report

__all__ = [
    "check_vjp",
    "check_grad",
    "check_model",
    "Report",
    "ModelReport",
    "LayerCheck",
    "InputResult",
    "Kink",
    "Finding",
    "process_pool",
]

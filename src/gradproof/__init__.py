"""gradproof: prove backpropagation right.

The checker (:func:`check_vjp`, :func:`check_grad`) compares analytic
vector-Jacobian products with numerical ones whose error is estimated, not
guessed. ``gradproof.nn`` is a NumPy deep-learning library whose every backward
pass is proven by it.
"""

from .adapters.nn import check_model  # noqa: F401
from .check import Report, check_grad, check_vjp, process_pool  # noqa: F401
from .errors import GradientError, InconclusiveError, InputError, InputTypeError  # noqa: F401

__version__ = "0.1.0"

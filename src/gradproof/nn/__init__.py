"""gradproof.nn: layers with explicit, proven backward passes."""

from . import functional  # noqa: F401
from .module import Module, Parameter  # noqa: F401

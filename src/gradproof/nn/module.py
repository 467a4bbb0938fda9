"""Modules: objects that hold parameters and compose the functional layers.

A module's ``forward(x)`` computes the output and keeps what its backward needs;
``backward(dout)`` returns ``dx`` and *accumulates* parameter gradients into
``param.grad`` (call :meth:`Module.zero_grad` between steps), as PyTorch does.
``dout`` must have the shape and dtype of the last forward's output; every
module checks it (directly, or through the functional layer or child it calls).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .._validate import boolean
from ..errors import InputError, InputTypeError, describe

__all__ = ["Parameter", "Module"]


class Parameter:
    """A trainable array and its gradient.

    ``data`` and ``grad`` have the same shape and dtype; optimizers update
    ``data`` in place from ``grad``.

    :meth:`zero_grad` does not write the zeros at once: it marks the gradient
    as zero, and the next reader of ``grad`` gets the array filled with zeros
    (so ``p.grad`` is always what it would be after an eager fill). A layer's
    backward that finds the mark writes its gradient into the array instead of
    adding it (:meth:`accumulate`, :meth:`grad_to_overwrite`), which spares a
    full pass over the array to zero it and another to add: on an MLP, about
    a tenth of a training step.
    """

    __slots__ = ("data", "_grad", "_zeroed")

    def __init__(self, data: np.ndarray):
        self.data = data
        self._grad: np.ndarray | None = np.zeros_like(data)
        self._zeroed = False  # True: _grad's contents are stale and stand for zeros

    @property
    def grad(self) -> np.ndarray | None:
        """The gradient (``data``'s shape and dtype), zeros after :meth:`zero_grad`."""
        if self._zeroed:
            self._zeroed = False
            self._grad[...] = 0
        return self._grad

    @grad.setter
    def grad(self, value: np.ndarray | None) -> None:
        self._grad = value
        self._zeroed = False

    def zero_grad(self) -> None:
        """Make the gradient zero (lazily: see the class docstring)."""
        if self._grad is not None:
            self._zeroed = True

    def grad_to_overwrite(self) -> tuple[np.ndarray, bool]:
        """``(grad, fresh)`` for a backward about to add its gradient ``g``.

        When ``fresh`` is True the gradient was zeroed and nobody has read it
        since: the caller must *write* ``g`` into ``grad`` (``out=grad``)
        instead of adding it, and must do so before anything else reads it.
        When False it adds ``g`` as usual.
        """
        if self._zeroed:
            self._zeroed = False
            return self._grad, True
        return self.grad, False

    def accumulate(self, g: np.ndarray) -> None:
        """``grad += g`` (a copy when the gradient was just zeroed)."""
        grad, fresh = self.grad_to_overwrite()
        if fresh:
            np.copyto(grad, g)
        else:
            grad += g

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class. Subclasses set parameters, buffers and child modules as attributes.

    Attributes that are :class:`Parameter` are parameters, attributes that are
    :class:`Module` (or lists/tuples of modules) are children; arrays named in
    ``self._buffers`` are state that is saved but not trained (running means).
    """

    training: bool = True

    def __init__(self) -> None:
        self.training = True
        self._buffers: list[str] = []

    # --- computation -------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # --- structure ---------------------------------------------------------
    def children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.children():
            yield from child.named_parameters(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for name in getattr(self, "_buffers", []):
            yield prefix + name, getattr(self, name)
        for name, child in self.children():
            yield from child.named_buffers(prefix + name + ".")

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode: bool = True) -> Module:
        mode = boolean("mode", mode, owner="train(mode)")
        self.training = mode
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    # --- state -------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed by dotted name."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update({name: np.array(b, copy=True) for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays from ``state`` into parameters and buffers.

        All or nothing: every entry is checked first (the same names, shapes,
        numeric arrays), then copied; an error leaves the module untouched.
        Raises :class:`~gradproof.errors.InputError` naming the entry.
        """
        if not isinstance(state, dict):
            raise InputTypeError(f"state must be a dict of arrays (from state_dict()), got "
                                 f"{describe(state)}")
        own = dict(self.named_parameters())
        targets: dict[str, np.ndarray] = {n: p.data for n, p in own.items()}
        targets.update(dict(self.named_buffers()))
        missing = sorted(set(targets) - set(state))
        unexpected = sorted(set(state) - set(targets))
        if missing or unexpected:
            raise InputError(
                f"state does not match the module: missing {missing}, unexpected {unexpected}"
            )
        values = {}
        for name, target in targets.items():
            value = state[name]
            if not (isinstance(value, (np.ndarray, np.generic))
                    and value.dtype.kind in "fiub"):
                raise InputTypeError(f"state[{name!r}] must be a numeric array of shape "
                                     f"{target.shape}, got {describe(value)}")
            value = np.asarray(value)
            if value.shape != target.shape:
                raise InputError(
                    f"state[{name!r}] must have shape {target.shape}, got {value.shape}"
                )
            values[name] = value
        for name, target in targets.items():  # everything checked: now copy
            target[...] = values[name]

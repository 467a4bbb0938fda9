"""Random generator states, saved and restored so that a resumed run draws the same numbers.

A run draws from the trainer's shuffling Generator and from every
``np.random.Generator`` a model keeps (dropout masks). Their
``bit_generator.state`` is a dict of ints and strings (arrays for some bit
generators), so it goes into a checkpoint as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nn.module import Module
from ..nn.tree import named_modules
from .checkpoint import CheckpointError

__all__ = ["model_generators", "generator_states", "restore_generator_states",
           "set_generator_state"]


def model_generators(model: Module) -> dict[str, np.random.Generator]:
    """Every ``np.random.Generator`` attribute of the model's modules, by ``path.attribute``.

    A Generator shared by several modules (an MLP gives all its dropouts one)
    appears under each path; restoring it several times is harmless.
    """
    found: dict[str, np.random.Generator] = {}
    for path, module in named_modules(model):
        for attr, value in vars(module).items():
            if isinstance(value, np.random.Generator):
                found[f"{path}.{attr}" if path else attr] = value
    return found


def generator_states(model: Module) -> dict[str, dict[str, Any]]:
    """The state of each of the model's Generators, by path (see :func:`model_generators`)."""
    return {path: gen.bit_generator.state for path, gen in model_generators(model).items()}


def set_generator_state(gen: np.random.Generator, state: dict[str, Any]) -> None:
    """Put ``gen`` back in ``state`` (same kind of bit generator, else CheckpointError)."""
    kind = type(gen.bit_generator).__name__
    if state.get("bit_generator") != kind:
        raise CheckpointError(
            f"the checkpoint's generator is a {state.get('bit_generator')}, this one a {kind}"
        )
    gen.bit_generator.state = state


def restore_generator_states(model: Module, states: dict[str, dict[str, Any]]) -> None:
    """Restore every Generator of ``model`` from :func:`generator_states` output."""
    generators = model_generators(model)
    if set(generators) != set(states):
        raise CheckpointError(
            f"the model's random generators {sorted(generators)} do not match the "
            f"checkpoint's {sorted(states)}"
        )
    for path, gen in generators.items():
        set_generator_state(gen, states[path])

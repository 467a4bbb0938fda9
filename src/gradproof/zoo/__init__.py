"""The bug zoo: real backpropagation bugs and correct-but-awkward cases.

Each case (:class:`Case`) is a small, self-contained NumPy forward/backward
pair with fixed seeded inputs and the verdict a gradient checker must reach:
``"bug"`` (flag it), ``"correct"`` or ``"kink"`` (do not). The zoo does not
import ``gradproof.nn``: it tests the checker, not the library.

>>> from gradproof.zoo import cases
>>> case = cases()["affine_dw_transposed"]
>>> out, cache = case.forward(*case.inputs())

``gradproof.zoo.runners`` runs a case through gradproof and other tools;
``gradproof.zoo.table`` runs them all and prints the comparison.
"""

from __future__ import annotations

from ..errors import InputError

# Importing a family module registers its cases.
from . import (  # noqa: F401
    activations,
    attention,
    awkward,
    contract,
    conv,
    dense,
    domain,
    kinks,
    norm,
    precision,
    recurrent,
    sequence,
    spatial,
    structured,
)
from .case import KINDS, Case, registry

__all__ = ["Case", "KINDS", "cases", "FAMILIES"]

FAMILIES = ("dense", "activations", "norm", "conv", "recurrent", "attention", "contract",
            "awkward", "kinks", "structured", "spatial", "sequence", "domain", "precision")


def cases(kind: str | None = None, family: str | None = None) -> dict[str, Case]:
    """Zoo cases by name, optionally only those of one ``kind`` and/or ``family``."""
    if kind is not None and kind not in KINDS:
        raise InputError(f"kind must be one of {KINDS} or None, got {kind!r}")
    if family is not None and family not in FAMILIES:
        raise InputError(f"family must be one of {FAMILIES} or None, got {family!r}")
    chosen = [case for case in registry().values()
              if (kind is None or case.kind == kind) and (family is None or case.family == family)]
    chosen.sort(key=lambda case: FAMILIES.index(case.family))  # stable: keeps file order
    return {case.name: case for case in chosen}

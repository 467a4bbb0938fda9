"""The checks besides values: contract, side effects, determinism, linearity.

Each has its own plain-language message naming the cause, because "gradient
mismatch" is the wrong answer to "your backward wrote into dout".

Calls made (3 forward, 4 backward)::

    out0, cache0 = forward(copy)        inputs untouched? output finite?
    g1  = backward(d1, cache0)          shapes, dtypes, finite; dout, cache, inputs untouched?
    g1' = backward(d1, cache0)          repeatable?
    out1, cache1 = forward(copy)        deterministic?
    g2  = backward(d2, cache1)
    out2, cache2 = forward(copy)
    g12 = backward(d1 + d2, cache2)     linear in dout: g12 == g1 + g2?
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import describe
from .arrays import (
    changed_arrays,
    deepcopy_inputs,
    first_difference,
    machine_eps,
    perturbation_scale,
    safe_norm,
    snapshot,
)
from .calls import Call, phi_of
from .report import Finding

__all__ = ["SideResult", "run_side_checks", "noise_levels"]


@dataclass
class SideResult:
    grads: dict[int, np.ndarray | None] = field(default_factory=dict)
    outs: tuple = ()
    phi0: float = 0.0
    noise: list[float] = field(default_factory=list)  # per input
    grad_noise: list[np.ndarray | None] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: dict[int, str] = field(default_factory=dict)
    fatal: bool = False


def _norm(a) -> float:
    return safe_norm(np.asarray(a, dtype=np.float64))


def _mutated_inputs(args: tuple, originals: tuple) -> list[int]:
    out = []
    for i, (a, o) in enumerate(zip(args, originals)):
        if isinstance(o, np.ndarray) and isinstance(a, np.ndarray):
            if a.shape != o.shape or not np.array_equal(a, o, equal_nan=a.dtype.kind == "f"):
                out.append(i)
    return out


def _label(i: int, call: Call) -> str:
    return str(i)


def run_side_checks(call: Call, checked: set[int], rng: np.random.Generator,
                    originals: tuple,
                    on_contract: Callable[[SideResult], None] | None = None) -> SideResult:
    """Run the contract and side-effect checks; return the first gradients and noise levels.

    ``on_contract(side)`` is called once the upstream gradients are drawn and
    the gradients' contract is checked, before the remaining side checks: the
    engine uses it to start the first measurement's evaluations on an executor
    while this process goes on with the side checks.
    """
    side = SideResult(grad_noise=[None] * len(originals))
    # --- first forward --------------------------------------------------------
    args0 = deepcopy_inputs(originals)
    call.stage = "the first forward call"
    outs0, cache0 = call.forward(args0)
    side.outs = outs0
    mutated_fwd = _mutated_inputs(args0, originals)
    if mutated_fwd:
        call.copy_each = True
        for i in mutated_fwd:
            same_shape = args0[i].shape == originals[i].shape
            c, n = first_difference(args0[i], originals[i]) if same_shape else ((), args0[i].size)
            side.problems.append(Finding(
                f"forward modified input {i} in place ({n} element(s) changed, e.g. at {c}): "
                "the caller's array is corrupted; compute into a new array instead "
                "(e.g. x = x * mask, not x *= mask)",
                "mutated-input", i,
            ))
    for j, o in enumerate(outs0):
        if np.issubdtype(o.dtype, np.inexact) and not np.all(np.isfinite(o)):
            bad = int(np.count_nonzero(~np.isfinite(o)))
            side.problems.append(Finding(
                f"forward output {j} contains {bad} NaN/Inf value(s) at the given inputs "
                f"(first at {np.unravel_index(int(np.argmax(~np.isfinite(o))), o.shape)}); "
                "no gradient can be checked there: look for 0/0, log(0), exp overflow "
                "or a division by a zero variance",
                "nan",
            ))
            side.fatal = True
    if side.fatal:
        return side

    # --- first backward -------------------------------------------------------
    d1 = call.make_douts(outs0, rng)
    d1_ref = tuple(None if d is None else np.copy(d) for d in d1)
    d1_arg = tuple(None if d is None else (np.copy(d) if isinstance(d, np.ndarray) else d)
                   for d in d1)
    cache_snap = snapshot(cache0)
    call.stage = "the first backward call"
    g1 = call.grads_per_input(call.backward(d1_arg, cache0))
    for j, (d, ref) in enumerate(zip(d1_arg, d1_ref)):
        if isinstance(d, np.ndarray) and not np.array_equal(d, ref):
            c, n = first_difference(d, ref)
            side.problems.append(Finding(
                f"backward modified its upstream gradient dout{'' if len(d1) == 1 else j} in "
                f"place ({n} element(s) changed, e.g. at {c}): the caller's gradient is "
                "corrupted (e.g. dx = dout; dx[x <= 0] = 0 writes into dout: copy first)",
                "mutated-dout",
            ))
    changed = changed_arrays(cache_snap)
    if changed:
        side.problems.append(Finding(
            f"backward modified its cache in place ({', '.join(changed[:4])}): a second "
            "backward call with the same cache gives a different result; use out-of-place "
            "operations on cached arrays",
            "mutated-cache",
        ))
    mutated_bwd = [i for i in _mutated_inputs(args0, originals) if i not in mutated_fwd]
    for i in mutated_bwd:
        side.problems.append(Finding(
            f"backward modified input {i} in place (through the cache): the caller's array "
            "is corrupted",
            "mutated-input", i,
        ))
    call.douts = d1_ref
    side.phi0 = phi_of(outs0, d1_ref)

    # --- gradient contract: presence, shape, dtype, finiteness -----------------
    for i in sorted(checked):
        x = originals[i]
        g = g1[i]
        if g is None:
            side.notes.append(
                f"input {i} is a float array but the backward returned None for it: not "
                "checked (pass wrt= to say which inputs are differentiable)"
            )
            side.grads[i] = None
            continue
        if x.ndim == 0 and isinstance(g, (np.generic, float)) and not isinstance(g, bool):
            g = np.asarray(g)  # a scalar is a fine gradient for a 0-d input
        if not isinstance(g, np.ndarray):
            side.problems.append(Finding(
                f"gradient for input {i} must be an array of shape {x.shape}, got "
                f"{describe(g)}", "structure", i))
            side.status[i] = "TYPE"
            side.grads[i] = None
            continue
        if g.shape != x.shape:
            hint = ""
            if g.size == x.size:
                hint = (" The values can still be compared, but broadcasting would hide this "
                        "in a model; e.g. db = dout.sum(axis=0), not keepdims=True.")
            elif np.broadcast_shapes(g.shape, x.shape) == g.shape if _broadcastable(g, x) \
                    else False:
                hint = " It is broadcast-compatible, which hides the bug: sum over the extra axes."
            side.problems.append(Finding(
                f"gradient for input {i} has shape {g.shape}, expected {x.shape} (the input's "
                f"shape).{hint}", "shape", i))
            side.status[i] = "SHAPE"
            g = g.reshape(x.shape) if g.size == x.size else None
        if g is not None and g.dtype != x.dtype:
            side.problems.append(Finding(
                f"gradient for input {i} has dtype {g.dtype}, expected {x.dtype} (the input's "
                "dtype); an upcast doubles memory and hides rounding, a downcast loses "
                "precision", "dtype", i))
            side.status.setdefault(i, "DTYPE")
            if g.dtype.kind in "biu":  # an int or bool gradient: its values compared as floats
                g = g.astype(x.dtype)
            elif g.dtype.kind != "f":
                g = None
        if g is not None and np.issubdtype(g.dtype, np.number) and not np.all(np.isfinite(g)):
            bad = int(np.count_nonzero(~np.isfinite(g)))
            first = np.unravel_index(int(np.argmax(~np.isfinite(g))), g.shape)
            side.problems.append(Finding(
                f"gradient for input {i} contains {bad} NaN/Inf value(s) (first at "
                f"{tuple(int(c) for c in first)}) while the forward output is finite: look "
                "for 0/0 or a division by a zero variance in the backward",
                "nan", i))
            side.status[i] = "NAN"
            g = None
        side.grads[i] = None if g is None else np.array(g, copy=True)

    if on_contract is not None:
        on_contract(side)

    # --- repeatability ----------------------------------------------------------
    d1_again = tuple(None if d is None else np.copy(d) for d in d1_ref)
    call.stage = "the repeat of the backward on the same cache"
    g1b = call.grads_per_input(call.backward(_scalar_like(d1_again, d1), cache0))
    if not changed:
        for i in sorted(checked):
            a, b = side.grads.get(i), g1b[i]
            if a is None or not isinstance(b, np.ndarray) or b.size != a.size:
                continue
            if not np.allclose(a, b.reshape(a.shape), rtol=64 * machine_eps(a.dtype), atol=0):
                side.problems.append(Finding(
                    f"backward is not repeatable: a second call with the same dout and cache "
                    f"gave a different gradient for input {i} (state kept between calls, or "
                    "randomness in the backward)",
                    "backward-not-repeatable", i))
                break

    # --- determinism of the forward ---------------------------------------------
    args1 = deepcopy_inputs(originals)
    call.stage = "the second forward call (determinism)"
    outs1, cache1 = call.forward(args1)
    for j, (a, b) in enumerate(zip(outs0, outs1)):
        if a.shape != b.shape or not np.allclose(
            np.asarray(a, np.float64), np.asarray(b, np.float64),
            rtol=64 * machine_eps(a.dtype) if a.dtype.kind == "f" else 0, atol=0, equal_nan=True
        ):
            where = first_difference(a, b) if a.shape == b.shape else ((), a.size)
            side.problems.append(Finding(
                f"forward is not deterministic: two calls with the same inputs gave different "
                f"output {j} ({where[1]} element(s) differ, e.g. at {where[0]}); numerical "
                "derivatives are meaningless then. Seed the randomness (e.g. pass a seed or "
                "a np.random.Generator for dropout) so that forward is a function",
                "nondeterministic"))
            side.fatal = True
            return side

    # --- linearity in dout -------------------------------------------------------
    d2 = call.make_douts(outs0, rng)
    call.stage = "the backward calls of the linearity check"
    g2 = call.grads_per_input(call.backward(_copy(d2), cache1))
    args2 = deepcopy_inputs(originals)
    _, cache2 = call.forward(args2)
    d12 = tuple(None if a is None else _add(a, b) for a, b in zip(d1_ref, d2))
    g12 = call.grads_per_input(call.backward(_scalar_like(d12, d1), cache2))
    nonlinear = []
    ignores = []
    # A gradient that is mathematically zero (a bias before a normalisation)
    # comes back as rounding noise, which is not linear: measure violations
    # against the largest gradient's sensitivity too, in this input's units.
    sens = max((safe_norm(side.grads[j].astype(np.float64).ravel()
                          * perturbation_scale(originals[j]))
                for j in checked if side.grads.get(j) is not None), default=0.0)
    for i in sorted(checked):
        a = side.grads.get(i)
        b, c = g2[i], g12[i]
        if a is None or not isinstance(b, np.ndarray) or not isinstance(c, np.ndarray):
            continue
        if b.size != a.size or c.size != a.size:
            continue
        a64, b64, c64 = (np.asarray(v, np.float64).reshape(a.shape) for v in (a, b, c))
        err = c64 - a64 - b64
        scale = _norm(a64) + _norm(b64) + _norm(c64)
        if scale == 0:
            continue
        thr = machine_eps(a.dtype) ** (1 / 3)
        floor = np.sqrt(machine_eps(a.dtype)) * sens / max(
            safe_norm(perturbation_scale(originals[i])), 1e-300)
        rel = _norm(err) / scale if _norm(err) > floor else 0.0
        if rel > thr:
            if _norm(a64 - b64) <= thr * scale and _norm(c64 - a64) <= thr * scale:
                ignores.append(i)
            else:
                nonlinear.append((i, rel))
        else:
            side.grad_noise[i] = err
    if ignores:
        side.problems.append(Finding(
            f"backward ignores its upstream gradient: inputs {ignores} get the same gradient "
            "for different dout. Multiply by dout (for a loss, dx = dloss * dL/dx)",
            "ignores-dout"))
    for i, rel in nonlinear:
        side.problems.append(Finding(
            f"backward is not linear in dout for input {i}: backward(d1 + d2) differs from "
            f"backward(d1) + backward(d2) by {rel:.2g} (relative). A VJP must be linear in "
            "dout: look for abs(dout), dout**2, a max over dout, or dout used in a mask",
            "nonlinear", i))

    side.noise = noise_levels(outs0, d1_ref, side.grads, originals, side.phi0)
    return side


def noise_levels(outs: tuple, douts: tuple, grads: dict, originals: tuple,
                 phi0: float) -> list[float]:
    """The rounding-noise level of one evaluation of ``phi``, per perturbed input.

    Rounding errors in parts of the forward that do not depend on the perturbed
    input are identical in every evaluation and cancel in differences; what
    changes is bounded (backward-error model, root-sum-square of independent
    errors) by the output's rounding and the perturbed input's own term.
    """
    out_noise = machine_eps(np.float64) * abs(phi0) * 4
    for o, d in zip(outs, douts):
        if d is not None:
            out_noise += 2 * machine_eps(o.dtype) * safe_norm(
                np.asarray(d, np.float64) * np.asarray(o, np.float64))
    noise = [out_noise] * len(originals)
    for i, g in grads.items():
        if g is not None:
            x = originals[i]
            noise[i] = out_noise + 2 * machine_eps(x.dtype) * safe_norm(
                g.astype(np.float64) * x.astype(np.float64))
    return noise


def _broadcastable(g: np.ndarray, x: np.ndarray) -> bool:
    try:
        np.broadcast_shapes(g.shape, x.shape)
        return True
    except ValueError:
        return False


def _copy(ds: tuple) -> tuple:
    return tuple(None if d is None else (np.copy(d) if isinstance(d, np.ndarray) else d)
                 for d in ds)


def _add(a: Any, b: Any) -> Any:
    # np.asarray: the sum of two 0-d arrays is a NumPy scalar; a 0-d dout stays an array
    return np.asarray(np.asarray(a) + np.asarray(b), dtype=np.asarray(a).dtype)


def _scalar_like(ds: tuple, template: tuple) -> tuple:
    """Give scalars back as the scalar type of the template (a loss's dout is a scalar)."""
    out = []
    for d, t in zip(ds, template):
        if d is not None and not isinstance(t, np.ndarray):
            d = type(t)(np.asarray(d).item()) if not isinstance(t, np.generic) else \
                np.asarray(d).astype(t.dtype)[()]
        out.append(d)
    return tuple(out)

"""Check JAX gradients (``jax.custom_vjp`` / ``jax.custom_jvp`` rules) with gradproof.

The adapter turns ``fn`` into the checker's NumPy pair:

* **forward** runs ``out, vjp_fn = jax.vjp(fn, *float_inputs)`` under
  ``jax.jit`` (non-float inputs, such as integer indices, are closed over) and
  returns ``out`` as NumPy; the cache is ``vjp_fn``.
* **backward** calls ``vjp_fn(dout)``: for a ``custom_vjp`` that runs the
  user's ``bwd`` rule; for a ``custom_jvp`` JAX transposes the user's ``jvp``
  rule, so a wrong JVP rule shows up as a wrong VJP.

Precision and a side effect
---------------------------
float32 and float64 are supported. JAX computes in float32 unless the
process-wide flag ``jax_enable_x64`` is on; a float64 check turns it on with
``jax.config.update("jax_enable_x64", True)`` **for the whole process** (it is
never turned off again, since other code may rely on it by then). Without it a
float64 check would silently run in float32.

jax is imported inside the functions, so ``import gradproof`` needs only NumPy.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..check import Report, check_vjp
from ..errors import InputError, InputTypeError, describe

__all__ = ["check_jax"]

DTYPES = (np.float32, np.float64)


def _jax():
    try:
        import jax
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("gradproof.adapters.jax needs JAX: pip install jax jaxlib") from exc
    return jax


def _is_float(x: Any) -> bool:
    return isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)


def _as_numpy_input(x: Any, dtype: np.dtype | None) -> Any:
    """Float arrays (NumPy or JAX) become writable NumPy arrays of ``dtype``; others pass."""
    if hasattr(x, "__jax_array__") or type(x).__module__.startswith("jax"):
        x = np.array(x)
    if _is_float(x):
        return np.array(x, dtype=dtype or x.dtype)
    return x


def _make_pair(fn: Callable, arrays: tuple) -> tuple[Callable, Callable]:
    """The checker's pair for ``fn``; non-float inputs are fixed to those in ``arrays``.

    ``jax.vjp`` runs under ``jax.jit`` (its ``vjp_fn`` is a pytree, so it can be
    returned): the checker calls the forward tens to hundreds of times, and
    tracing op by op each time would dominate the run.
    """
    jax = _jax()
    float_idx = [i for i, a in enumerate(arrays) if _is_float(a)]

    def of_floats(*floats):
        args = list(arrays)
        for i, f in zip(float_idx, floats):
            args[i] = f
        return fn(*args)

    vjp_at = jax.jit(lambda *floats: jax.vjp(of_floats, *floats))
    apply_vjp = jax.jit(lambda vjp_fn, cts: vjp_fn(cts))

    def forward(*inputs):
        out, vjp_fn = vjp_at(*[inputs[i] for i in float_idx])
        is_tuple = isinstance(out, (tuple, list))
        outs = tuple(out) if is_tuple else (out,)
        np_outs = tuple(np.array(o) for o in outs)
        cache = (vjp_fn, tuple(a.dtype if _is_float(a) else None for a in inputs),
                 tuple(o.shape for o in np_outs), tuple(o.dtype for o in np_outs), is_tuple)
        return (np_outs if is_tuple else np_outs[0]), cache

    def backward(*args):
        *douts, (vjp_fn, in_dtypes, out_shapes, out_dtypes, is_tuple) = args
        cts = tuple(np.zeros(s, dt) if d is None else np.asarray(d, dtype=dt)
                    for d, s, dt in zip(douts, out_shapes, out_dtypes))
        grads = apply_vjp(vjp_fn, cts if is_tuple else cts[0])
        result: list = [None] * len(in_dtypes)
        for i, g in zip(float_idx, grads):
            result[i] = np.array(g).astype(in_dtypes[i])
        return result[0] if len(result) == 1 else tuple(result)

    return forward, backward


def _fn_names(fn: Callable, n: int) -> list[str] | None:
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return None
    return params if len(params) == n else None


def check_jax(
    fn: Callable,
    *inputs: Any,
    wrt: int | str | Sequence[int | str] | None = None,
    dtype: Any = None,
    **options: Any,
) -> Report:
    """Check the VJP JAX computes for ``fn(*arrays)`` with :func:`gradproof.check_vjp`.

    Parameters
    ----------
    fn:
        A JAX-traceable function of arrays returning an array or a tuple of
        arrays; typically a ``jax.custom_vjp`` or ``jax.custom_jvp`` function,
        or one that calls them.
    *inputs:
        NumPy or JAX arrays of any shape; float ones are checked, others
        (integer indices, options) are passed through unchanged.
    wrt:
        Which inputs to check (positions or names), as in ``check_vjp``.
    dtype:
        ``"float32"`` or ``"float64"`` (default: each float input's own
        dtype). float64 turns on ``jax_enable_x64`` for the process (see the
        module docstring).
    **options:
        Passed to :func:`gradproof.check_vjp` (``seed``, ``mode``, ``step``,
        ``names``, ...); ``executor`` is not supported (the forward is a closure).

    Returns
    -------
    Report
    """
    jax = _jax()
    if not callable(fn):
        raise InputTypeError(f"fn must be callable, got {describe(fn)}")
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.type not in DTYPES:
            raise InputError(f"dtype must be float32 or float64, got {dtype}")
    if "executor" in options:
        raise InputError("executor is not supported by check_jax: the forward is a closure")
    arrays = tuple(_as_numpy_input(x, dtype) for x in inputs)
    for i, a in enumerate(arrays):
        if _is_float(a) and a.dtype.type not in DTYPES:
            raise InputError(f"input {i} must be float32 or float64 for JAX, got "
                             f"{describe(a)}; pass dtype='float32' to convert")
    if any(_is_float(a) and a.dtype == np.float64 for a in arrays):
        jax.config.update("jax_enable_x64", True)
    if "names" not in options:
        names = _fn_names(fn, len(arrays))
        if names is not None:
            options["names"] = names
    forward, backward = _make_pair(fn, arrays)
    report = check_vjp(forward, backward, *arrays, wrt=wrt, **options)
    report.function = getattr(fn, "__qualname__", type(fn).__name__)
    return report

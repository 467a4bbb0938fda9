"""Check JAX gradients (``jax.custom_vjp`` / ``jax.custom_jvp`` rules) with gradproof.

The adapter turns ``fn`` into the checker's NumPy pair:

* **forward** runs ``out, vjp_fn = jax.vjp(fn, *float_inputs)`` under
  ``jax.jit`` (non-float inputs, such as integer indices, are closed over) and
  returns ``out`` as NumPy; the cache is ``vjp_fn``.
* **backward** calls ``vjp_fn(dout)``: for a ``custom_vjp`` that runs the
  user's ``bwd`` rule; for a ``custom_jvp`` JAX transposes the user's ``jvp``
  rule, so a wrong JVP rule shows up as a wrong VJP.
* **Outputs** may be any pytree (``jnp.linalg.eigh``'s and ``slogdet``'s
  NamedTuples, dicts, nested tuples): its leaves, in ``jax.tree_util`` order,
  are the checker's outputs, and the cotangents are put back into the same
  tree. Integer leaves get ``float0`` cotangents, as JAX requires.
* :func:`check_jax_second_order` checks the VJP of the VJP: the function
  ``(inputs, dout) -> vjp_fn(dout)``, differentiated by JAX (through your
  ``bwd`` rule), against differences of gradients.

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

__all__ = ["check_jax", "check_jax_second_order"]

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
        leaves, tree = jax.tree_util.tree_flatten(out)
        np_outs = tuple(np.array(o) for o in leaves)
        single = tree == jax.tree_util.tree_structure(0)  # out is one array
        cache = (vjp_fn, tuple(a.dtype if _is_float(a) else None for a in inputs),
                 tuple(o.shape for o in np_outs), tuple(o.dtype for o in np_outs), tree)
        return (np_outs[0] if single else np_outs), cache

    def backward(*args):
        *douts, (vjp_fn, in_dtypes, out_shapes, out_dtypes, tree) = args
        cts = [_cotangent(d, s, dt) for d, s, dt in zip(douts, out_shapes, out_dtypes)]
        grads = apply_vjp(vjp_fn, jax.tree_util.tree_unflatten(tree, cts))
        result: list = [None] * len(in_dtypes)
        for i, g in zip(float_idx, grads):
            result[i] = np.array(g).astype(in_dtypes[i])
        return result[0] if len(result) == 1 else tuple(result)

    return forward, backward


def _cotangent(dout: Any, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """The cotangent JAX expects for an output leaf: ``dout`` in the output's dtype, zeros
    when the checker sends none, ``float0`` zeros for an integer or boolean output."""
    if not np.issubdtype(dtype, np.inexact):
        return np.zeros(shape, dtype=_jax().dtypes.float0)
    if dout is None:
        return np.zeros(shape, dtype)
    return np.asarray(dout, dtype=dtype)


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


def check_jax_second_order(fn: Callable, *inputs: Any, dout: Any = None, seed: int = 0,
                           **options: Any) -> Report:
    """Check the derivative of ``fn``'s VJP (the backward itself), like torch's
    ``gradgradcheck``.

    The checked function is ``g(*inputs, dout) = vjp_fn(dout)``, the gradients
    of ``<dout, fn(*inputs)>`` with respect to the float inputs, and its VJP is
    what JAX computes by differentiating through ``fn``'s rules (a
    ``custom_vjp``'s ``bwd`` must itself be differentiable): Hessian-vector
    products, compared with differences of gradients. ``dout`` (a pytree like
    ``fn``'s output) defaults to seeded standard normal arrays.
    """
    jax = _jax()
    if not callable(fn):
        raise InputTypeError(f"fn must be callable, got {describe(fn)}")
    dtype = options.pop("dtype", None)
    arrays = tuple(_as_numpy_input(x, None if dtype is None else np.dtype(dtype))
                   for x in inputs)
    if any(_is_float(a) and a.dtype == np.float64 for a in arrays):
        jax.config.update("jax_enable_x64", True)
    float_idx = [i for i, a in enumerate(arrays) if _is_float(a)]
    if not float_idx:
        raise InputError("check_jax_second_order needs at least one float input")

    def of_floats(*floats):
        args = list(arrays)
        for i, f in zip(float_idx, floats):
            args[i] = f
        return fn(*args)

    out = jax.eval_shape(of_floats, *[arrays[i] for i in float_idx])
    leaves, tree = jax.tree_util.tree_flatten(out)
    if dout is None:
        rng = np.random.default_rng([seed, 2])
        dout_leaves = [rng.standard_normal(o.shape).astype(o.dtype) for o in leaves]
    else:
        dout_leaves = [np.array(d) for d in jax.tree_util.tree_leaves(dout)]
    n_float = len(float_idx)

    def gradients(*args):
        floats, cts = args[:n_float], args[n_float:]
        _, vjp_fn = jax.vjp(of_floats, *floats)
        grads = vjp_fn(jax.tree_util.tree_unflatten(tree, list(cts)))
        return tuple(grads)

    names = options.pop("names", None)
    if names is None:
        params = _fn_names(fn, len(arrays)) or [f"input{i}" for i in range(len(arrays))]
        names = [params[i] for i in float_idx] + [f"dout{k}" for k in range(len(leaves))]
    report = check_jax(gradients, *[arrays[i] for i in float_idx], *dout_leaves,
                       names=names, seed=seed, **options)
    report.function = f"backward of {getattr(fn, '__qualname__', type(fn).__name__)}"
    return report

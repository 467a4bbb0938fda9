"""PyTorch as the oracle for layer tests: run a torch function under autograd in float64.

Generic over layers: give it the torch function, the NumPy inputs and an
upstream gradient; it returns the output and one gradient per input, as NumPy
arrays, ready to compare with a gradproof layer's forward and backward::

    from torch_oracle import assert_close, random_like, torch_vjp

    out, cache = gelu(x)
    dout = random_like(out, seed=1)
    t_out, (t_dx,) = torch_vjp(torch.nn.functional.gelu, [x], dout)
    assert_close(out, t_out, name="gelu out")
    assert_close(gelu_backward(dout, cache), t_dx, name="gelu dx")

Conventions:

* Float arrays become float64 tensors that require grad (whatever their NumPy
  dtype, so torch is always the precise reference); integer arrays become int64
  tensors (labels, indices); anything else (numbers, strings, None, tensors) is
  passed through unchanged. Options go in ``kwargs``.
* The gradient returned for an input that is not a float array is None.
* ``dout`` is the upstream gradient, the shape of the output. For a scalar
  output (a loss) it may be omitted (taken as 1). For functions returning a
  tuple of tensors, pass a tuple of upstream gradients (None entries are
  skipped).
* :func:`assert_close` compares with a *normwise* relative tolerance (1e-10 by
  default): ``max|actual - expected| <= rtol * max(max|expected|, floor)``, so
  tiny entries (saturated gradients, tails) are held to the scale of the array
  rather than to their own magnitude, where float64 torch itself rounds.

Import it as ``from torch_oracle import ...``: pytest puts ``tests/nn`` on the
path (tests/ has no ``__init__.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["to_torch", "to_numpy", "torch_vjp", "random_like", "assert_close"]

# The test machine is shared: one thread per process keeps pytest-xdist workers fair.
torch.set_num_threads(1)


def to_torch(value: Any, requires_grad: bool = False) -> Any:
    """NumPy -> torch: float arrays to float64 tensors, integer arrays to int64; others as is."""
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.floating):
            tensor = torch.tensor(value, dtype=torch.float64)
            return tensor.requires_grad_(requires_grad)
        if np.issubdtype(value.dtype, np.integer) or value.dtype == np.bool_:
            return torch.tensor(value.astype(np.int64) if value.dtype != np.bool_ else value)
    return value


def to_numpy(value: Any) -> Any:
    """torch -> NumPy (detached, float64 stays float64); None and non-tensors unchanged."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value


def torch_vjp(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    dout: Any = None,
    kwargs: dict | None = None,
) -> tuple[Any, tuple[np.ndarray | None, ...]]:
    """Run ``fn(*inputs, **kwargs)`` in torch float64 and backpropagate ``dout``.

    Returns ``(out, grads)``: ``out`` as NumPy (a tuple if ``fn`` returns one, a
    Python float for a 0-d result) and ``grads``, one entry per input -- the
    gradient of ``sum(out * dout)`` with respect to that input as a float64
    array, or None for inputs that are not float arrays (or that ``out`` does
    not depend on: then the gradient is zeros).
    """
    tensors = [to_torch(value, requires_grad=True) for value in inputs]
    out = fn(*tensors, **(kwargs or {}))
    outs = out if isinstance(out, tuple) else (out,)
    if dout is None:
        douts = (None,) * len(outs)
    else:
        douts = dout if isinstance(out, tuple) else (dout,)
    terms = []
    for o, d in zip(outs, douts):
        if d is None:
            if isinstance(out, tuple):
                continue
            if o.numel() != 1:
                raise ValueError("dout is required when fn's output is not a scalar")
            terms.append(o.sum())
        else:
            terms.append((o * torch.as_tensor(np.asarray(d), dtype=torch.float64)).sum())
    wrt = [t for t in tensors if isinstance(t, torch.Tensor) and t.requires_grad]
    grads_wrt = torch.autograd.grad(sum(terms), wrt, allow_unused=True) if wrt else ()
    by_id = {id(t): g for t, g in zip(wrt, grads_wrt)}
    grads = []
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.requires_grad:
            g = by_id[id(t)]
            grads.append(np.zeros(t.shape) if g is None else to_numpy(g))
        else:
            grads.append(None)
    result = tuple(_scalar_or_array(o) for o in outs)
    return (result if isinstance(out, tuple) else result[0]), tuple(grads)


def _scalar_or_array(value: torch.Tensor) -> Any:
    array = to_numpy(value)
    return float(array) if array.ndim == 0 else array


def random_like(value: np.ndarray | tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A standard-normal float64 array shaped like ``value`` (an array or a shape).

    An upstream gradient with no structure, so that no term of a VJP can hide.
    It comes from its own stream, ``default_rng([seed, _DOUT_STREAM])``: inputs
    drawn with ``default_rng(seed)`` never coincide with it (a dout equal to the
    standardised input lies in batch norm's null space, for one).
    """
    shape = value.shape if hasattr(value, "shape") else tuple(value)
    return np.random.default_rng([seed, _DOUT_STREAM]).standard_normal(shape)


_DOUT_STREAM = 0x646F7574  # "dout"


def assert_close(
    actual: Any,
    expected: Any,
    rtol: float = 1e-10,
    name: str = "value",
    floor: float = 1e-300,
) -> None:
    """Assert ``max|actual - expected| <= rtol * max(max|expected|, floor)`` (normwise).

    Shapes must match exactly. The message names the value, the worst index and
    both numbers there.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"{name}: shape {a.shape} != expected {e.shape}"
    if a.size == 0:
        return
    assert np.array_equal(np.isnan(a), np.isnan(e)), f"{name}: NaNs differ"
    diff = np.abs(np.nan_to_num(a) - np.nan_to_num(e))
    scale = max(float(np.max(np.abs(np.nan_to_num(e)))), floor)
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
    assert diff[worst] <= rtol * scale, (
        f"{name}: max |actual - expected| = {diff[worst]:.3e} at {tuple(map(int, worst))} "
        f"(actual {a[worst]!r}, expected {e[worst]!r}) exceeds rtol {rtol:g} * scale {scale:.3e}"
    )

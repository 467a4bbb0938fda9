"""Check PyTorch autograd (custom ``torch.autograd.Function``s, modules) with gradproof.

The checker works on NumPy arrays, so the adapter turns a function of tensors
into the checker's ``forward(*arrays) -> (outs, cache)`` /
``backward(*douts, cache) -> grads`` pair:

* **forward** copies each float array into a leaf tensor of the working dtype
  and device (``requires_grad=True``), runs ``fn`` with grad enabled and returns
  the outputs as NumPy arrays; the cache holds the leaves and the outputs, that
  is, the autograd graph.
* **backward** calls ``torch.autograd.grad(outs, leaves, grad_outputs=douts,
  allow_unused=True, retain_graph=True)`` (the checker calls it more than once
  on one cache) and converts back; an input the outputs do not depend on gets a
  zero gradient (its true VJP), a non-float input gets ``None``.
* **Outputs** may be nested (``nn.LSTM``'s ``(out, (h, c))``, dicts,
  ``torch.return_types``): their tensors, in flattening order, are the
  checker's outputs.
* **The upstream gradient** handed to torch shares memory with the checker's
  ``dout`` (when dtype and device allow), so a custom ``Function`` whose
  backward writes into ``grad_output`` is caught, as the checker catches a
  NumPy backward that writes into ``dout``.
* **Raw gradient shapes.** torch sums a gradient of a broadcastable shape to
  the input's shape before anyone sees it: a custom ``Function`` returning a
  ``(1, M)`` bias gradient for a bias ``(M,)`` passes torch's own checks. The
  adapter watches what each custom ``Function``'s backward returns (before that
  reduction) and reports a shape that differs from its input's as a ``shape``
  problem, as the checker does for a NumPy backward.

Precision
---------
``float64`` and ``float32`` are checked directly: the checker sees arrays of
that dtype and models its rounding. A float32 check is then repeated with
``fn`` evaluated in ``torch.float64`` (``check_vjp``'s ``upcast``), which sees
formula errors below float32's finite-difference resolution; a function that
cannot run in float64 keeps its float32 verdict, with a note.

``bfloat16`` (and ``float16``) cannot be checked that way: a central
difference in bfloat16 has a relative error of at least ``eps / step`` (``eps
= 2**-7``), far too coarse to tell a bug from noise, and the checker's
rounding model is that of the arrays it is given. So a low-precision check is
two honest stages, both in one :class:`Report`:

1. **The formula.** The inputs are rounded to bfloat16; the checker gets
   float32 arrays holding those bfloat16-representable values and checks
   ``fn`` evaluated in float32 (same code path of the custom Function, same
   point).
2. **The low-precision run.** ``fn`` is evaluated in bfloat16 at the same
   point, forward and backward (with a bfloat16-representable upstream
   gradient), and each output and gradient is compared with the float32 one
   that stage 1 proved, norm-wise: ``||g_bf16 - g_f32|| <= LOW_PRECISION_SAFETY
   * eps(dtype) * ||g_f32||``. A failure is added to ``report.problems`` and
   makes ``report.ok`` false. This catches gross bugs that only show in the low
   precision (a wrong dtype branch, overflow, a dropped term); it cannot see
   errors below a few percent, which bfloat16 itself cannot resolve.

torch is imported inside the functions, so ``import gradproof`` needs only NumPy.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..check import Report, check_vjp
from ..check.report import Finding
from ..errors import InputError, InputTypeError, describe

__all__ = ["check_torch", "check_module", "gradcheck", "gradgradcheck", "check_second_order",
           "LOW_PRECISION_SAFETY"]

# Norm-wise relative error allowed between a bfloat16/float16 run and the
# float32 run, in units of the low dtype's eps: a few roundings of inputs,
# intermediates and outputs, each at most eps/2 relative, plus accumulation.
LOW_PRECISION_SAFETY = 8.0


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("gradproof.adapters.torch needs PyTorch: pip install torch") from exc
    return torch


def _is_low_precision(dtype) -> bool:
    torch = _torch()
    return dtype in (torch.bfloat16, torch.float16)


def _as_numpy_input(x: Any, dtype, index: int) -> Any:
    """A float tensor/array becomes a NumPy array of the checker's dtype; others pass."""
    torch = _torch()
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            return x.detach().cpu().numpy()
        t = x.detach().to("cpu")
    elif isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
        t = torch.from_numpy(np.ascontiguousarray(x))
    elif isinstance(x, np.ndarray) or not isinstance(x, (list, tuple)):
        return x
    else:
        raise InputTypeError(
            f"input {index} must be a tensor, an array or a non-array option, "
            f"got {describe(x)}; convert lists with torch.tensor(...)"
        )
    # Low precision: round to the working dtype, hand the checker float32 (exact).
    np_dtype = np.float32 if _is_low_precision(dtype) else None
    t = t.to(dtype)
    if np_dtype is not None:
        t = t.to(torch.float32)
    return t.numpy().copy()


def _default_dtype(inputs: Sequence[Any]):
    torch = _torch()
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            return x.dtype
        if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
            return torch.from_numpy(np.zeros(0, dtype=x.dtype)).dtype
    return torch.float64


def _flatten(result) -> list:
    """The tensors of a (possibly nested) output, in order: tuples, lists, dicts, NamedTuples."""
    torch = _torch()
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, dict):
        return [t for key in result for t in _flatten(result[key])]
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in _flatten(item)]
    return []


def _dout_tensor(d, out, device):
    """``d`` as a tensor for ``out``'s gradient; sharing ``d``'s memory when it can, so that
    a backward writing into ``grad_output`` writes into the checker's ``dout``."""
    torch = _torch()
    if isinstance(d, np.ndarray) and d.flags.writeable and d.flags.c_contiguous \
            and device.type == "cpu":
        t = torch.from_numpy(d)
        if t.dtype == out.dtype:
            return t
    return torch.from_numpy(np.array(d)).to(device=device, dtype=out.dtype)


class _RawShapeWatch:
    """While active, record what each custom ``Function`` backward in the graph of ``outs``
    returns whose shape differs from its input's (torch would sum it away silently).

    A ``Function``'s backward node is called by the engine through its ``apply``
    attribute; an instance attribute of the same name sees the raw gradients.
    """

    MAX_NODES = 100_000

    def __init__(self, outs: Sequence, leaves: Sequence, found: list):
        self.outs, self.leaves, self.found = outs, leaves, found
        self.patched: list = []

    def _nodes(self):
        seen, stack = set(), [o.grad_fn for o in self.outs if getattr(o, "grad_fn", None)]
        while stack and len(seen) < self.MAX_NODES:
            node = stack.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            yield node
            stack.extend(n for n, _ in getattr(node, "next_functions", ()))

    def _expected(self, node) -> list:
        shapes = []
        for nxt, k in node.next_functions:
            if nxt is None:
                shapes.append((None, None))
            elif hasattr(nxt, "variable"):  # AccumulateGrad: a leaf
                index = next((i for i, t in enumerate(self.leaves) if t is nxt.variable), None)
                shapes.append((tuple(nxt.variable.shape), index))
            else:
                shapes.append((tuple(nxt._input_metadata[k].shape), None))
        return shapes

    def __enter__(self):
        for node in self._nodes():
            cls = getattr(node, "_forward_cls", None)
            if cls is None or "apply" in vars(node):
                continue
            try:
                expected = self._expected(node)
            except (AttributeError, IndexError, RuntimeError):  # an older torch
                continue
            node.apply = self._watching(node, cls, expected)
            self.patched.append(node)
        return self

    def _watching(self, node, cls, expected):
        original = type(node).apply

        def apply(*grads):
            raw = original(node, *grads)
            raw_tuple = raw if isinstance(raw, tuple) else (raw,)
            for k, (g, (shape, index)) in enumerate(zip(raw_tuple, expected)):
                if shape is not None and hasattr(g, "shape") and tuple(g.shape) != shape:
                    self.found.append((cls.__qualname__, k, tuple(g.shape), shape, index))
            return raw
        return apply

    def __exit__(self, *exc):
        for node in self.patched:
            del node.apply
        return False


def _make_pair(fn: Callable, dtype, device, raw_shapes: list | None = None
               ) -> tuple[Callable, Callable]:
    """The checker's (forward, backward) for ``fn`` evaluated in ``dtype`` on ``device``.

    ``raw_shapes``: where to record a custom Function's gradient whose raw shape
    differs from its input's (see :class:`_RawShapeWatch`); ``None``: not watched.
    """
    torch = _torch()

    def forward(*arrays):
        leaves, args = [], []
        for a in arrays:
            if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating):
                t = torch.from_numpy(a.copy()).to(device=device, dtype=dtype).requires_grad_()
                leaves.append(t)
                args.append(t)
            elif isinstance(a, np.ndarray):
                leaves.append(None)
                args.append(torch.from_numpy(a.copy()).to(device))
            else:
                leaves.append(None)
                args.append(a)
        with torch.enable_grad():
            result = fn(*args)
        single = isinstance(result, torch.Tensor)
        outs = tuple(_flatten(result))
        if not outs:
            raise InputTypeError(f"fn must return a tensor or a (nested) tuple of tensors, got "
                                 f"{describe(result)}")
        np_outs = tuple(_to_numpy(o, arrays) for o in outs)
        cache = (leaves, outs, tuple(a.dtype if isinstance(a, np.ndarray) else None
                                     for a in arrays))
        return (np_outs[0] if single else np_outs), cache

    def backward(*args):
        *douts, (leaves, outs, in_dtypes) = args
        pairs = [(o, d) for o, d in zip(outs, douts)
                 if d is not None and isinstance(o, torch.Tensor) and o.requires_grad]
        wanted = [t for t in leaves if t is not None]
        grads: list = []
        if pairs and wanted:
            watch = _RawShapeWatch([o for o, _ in pairs], leaves, raw_shapes) \
                if raw_shapes is not None else contextlib.nullcontext()
            with watch:
                grads = list(torch.autograd.grad(
                    [o for o, _ in pairs], wanted,
                    grad_outputs=[_dout_tensor(d, o, device) for o, d in pairs],
                    allow_unused=True, retain_graph=True))
        result, it = [], iter(grads)
        for t, in_dtype in zip(leaves, in_dtypes):
            if t is None:
                result.append(None)
                continue
            g = next(it, None)
            g = torch.zeros_like(t) if g is None else g
            result.append(g.detach().to("cpu", torch.float64).numpy().astype(in_dtype))
        return result[0] if len(result) == 1 else tuple(result)

    return forward, backward


def _to_numpy(out, arrays) -> Any:
    """An output tensor as NumPy, float outputs in the float dtype the checker handed in."""
    torch = _torch()
    if not isinstance(out, torch.Tensor):
        return out
    if not out.is_floating_point():
        return out.detach().cpu().numpy()
    dtypes = [a.dtype for a in arrays
              if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)]
    np_dtype = dtypes[0] if dtypes else np.float64
    return out.detach().to("cpu", torch.float64).numpy().astype(np_dtype)


def _fn_label(fn: Callable) -> str:
    """``Swish.apply`` for a custom Function (whose ``apply`` says ``Function.apply``)."""
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type) and getattr(fn, "__name__", "") == "apply":
        return f"{owner.__qualname__}.apply"
    return getattr(fn, "__qualname__", type(fn).__name__)


def _fn_names(fn: Callable, n: int) -> list[str] | None:
    target = getattr(fn, "__self__", None) if getattr(fn, "__name__", "") == "apply" else None
    target = getattr(target, "forward", None) or fn
    try:
        params = [p.name for p in inspect.signature(target).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return None
    if target is not fn and params and params[0] == "ctx":
        params = params[1:]
    return params[:n] if len(params) >= n else None


def check_torch(
    fn: Callable,
    *inputs: Any,
    wrt: int | str | Sequence[int | str] | None = None,
    dtype=None,
    device=None,
    **options: Any,
) -> Report:
    """Check the autograd gradients of ``fn(*tensors)`` with :func:`gradproof.check_vjp`.

    Parameters
    ----------
    fn:
        A function of tensors returning a tensor or a tuple of tensors, e.g. a
        custom ``torch.autograd.Function``'s ``.apply``.
    *inputs:
        Tensors or NumPy arrays of any shape; float ones are checked, integer
        ones (labels, indices) and non-array options are passed through.
    wrt:
        Which inputs to check (positions or names), as in ``check_vjp``.
    dtype:
        Working dtype: ``torch.float64``, ``torch.float32``, ``torch.bfloat16``
        or ``torch.float16`` (default: the first float input's dtype). Low
        precisions are checked in two stages; see the module docstring.
    device:
        ``"cpu"`` (default), ``"cuda"``, ... where ``fn`` runs.
    **options:
        Passed to :func:`gradproof.check_vjp` (``seed``, ``mode``, ``step``,
        ``n_directions``, ``names``, ...). ``executor`` needs a picklable
        forward and is not supported here.

    Returns
    -------
    Report
        Gradients are compared for every checked input, in the input's shape.
    """
    torch = _torch()
    if not callable(fn):
        raise InputTypeError(f"fn must be callable, got {describe(fn)}")
    if dtype is None:
        dtype = _default_dtype(inputs)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise InputError(f"dtype must be a floating torch dtype, got {dtype!r}")
    if dtype.is_complex:  # pragma: no cover - is_floating_point excludes it
        raise InputError(f"dtype must be real, got {dtype!r}")
    device = torch.device(device if device is not None else "cpu")
    if "executor" in options:
        raise InputError("executor is not supported by check_torch: the forward is a closure")
    arrays = tuple(_as_numpy_input(x, dtype, i) for i, x in enumerate(inputs))
    if "names" not in options:
        names = _fn_names(fn, len(arrays))
        if names is not None:
            options["names"] = names
    low = _is_low_precision(dtype)
    raw_shapes: list = []
    forward, backward = _make_pair(fn, torch.float32 if low else dtype, device, raw_shapes)
    if (low or dtype == torch.float32) and "upcast" not in options:
        # the float64 re-check of float32 code: the same function in torch.float64
        options["upcast"] = _make_pair(fn, torch.float64, device)
    report = check_vjp(forward, backward, *arrays, wrt=wrt, **options)
    report.function = _fn_label(fn)
    if raw_shapes:
        report = _with_raw_shape_problems(report, raw_shapes)
    if low:
        _check_low_precision(report, fn, arrays, dtype, device, options.get("seed", 0))
    return report


def _with_raw_shape_problems(report: Report, raw_shapes: list) -> Report:
    """``report`` failed with a ``shape`` problem per custom Function gradient whose raw
    shape differed from its input's (what torch summed away)."""
    problems, blamed = list(report.problems), set()
    for name, k, got, want, index in dict.fromkeys(raw_shapes):
        who = f"checked input {index}" if index is not None else "an intermediate tensor"
        problems.append(Finding(
            f"{name}.backward returned a gradient of shape {got} for its argument {k} of "
            f"shape {want} ({who}); torch sums it to {want} silently, so the values agree, but the "
            f"backward is wrong: return a gradient of the input's shape (e.g. "
            f"grad.sum(0) for a bias of shape {want})", kind="shape", input=index))
        blamed.add(index)
    inputs = [replace(r, verdict="failed", status="SHAPE") if r.index in blamed and r.checked
              else r for r in report.inputs]
    return replace(report, verdict="failed", problems=problems, inputs=inputs)


def _check_low_precision(report: Report, fn: Callable, arrays: tuple, dtype, device,
                         seed: int | None) -> None:
    """Stage 2 of a low-precision check: the run in ``dtype`` against the float32 run."""
    torch = _torch()
    eps = float(torch.finfo(dtype).eps)
    tol = LOW_PRECISION_SAFETY * eps
    ref_fwd, ref_bwd = _make_pair(fn, torch.float32, device)
    low_fwd, low_bwd = _make_pair(fn, dtype, device)
    ref_out, ref_cache = ref_fwd(*arrays)
    low_out, low_cache = low_fwd(*arrays)
    ref_outs = ref_out if isinstance(ref_out, tuple) else (ref_out,)
    low_outs = low_out if isinstance(low_out, tuple) else (low_out,)
    rng = np.random.default_rng(seed)
    douts = tuple(
        torch.from_numpy(rng.standard_normal(np.shape(o))).to(dtype).to(torch.float32).numpy()
        if isinstance(o, np.ndarray) and np.issubdtype(o.dtype, np.floating) else None
        for o in ref_outs)
    ref_g = ref_bwd(*douts, ref_cache)
    low_g = low_bwd(*douts, low_cache)
    if len(arrays) == 1:
        ref_g, low_g = (ref_g,), (low_g,)
    checked = {r.index for r in report.inputs if r.checked}
    pairs = [(f"output {k}", None, r, lo) for k, (r, lo) in enumerate(zip(ref_outs, low_outs))]
    pairs += [(f"gradient of input {i}", i, r, lo) for i, (r, lo) in enumerate(zip(ref_g, low_g))
              if i in checked and r is not None]
    worst = 0.0
    for what, index, ref, got in pairs:
        if ref is None or not np.issubdtype(np.asarray(ref).dtype, np.floating):
            continue
        ref64, got64 = np.asarray(ref, np.float64), np.asarray(got, np.float64)
        scale = float(np.linalg.norm(ref64))
        err = float(np.linalg.norm(got64 - ref64)) / max(scale, np.finfo(np.float32).tiny)
        if not np.isfinite(err) and scale == 0.0 and not np.any(got64):
            err = 0.0
        worst = max(worst, err)
        if not err <= tol:
            report.verdict = "failed"
            report.inputs[:] = [
                replace(res, verdict="failed", status="FAIL", diagnosis=res.diagnosis + (
                    f"{dtype} gradient off by {err:.3g} (norm-wise)",))
                if res.index == index else res for res in report.inputs]
            report.problems.append(Finding(
                f"{dtype} run: {what} differs from the float32 run by {err:.3g} (norm-wise "
                f"relative), above {tol:.3g} = {LOW_PRECISION_SAFETY:g} * eps({dtype}); "
                "the low-precision path computes something else (a dtype-dependent branch, "
                "overflow, a term lost to rounding?)", kind="low_precision", input=index))
    report.notes.append(
        f"{dtype}: inputs rounded to {dtype}; the checker proved the float32 run at that "
        f"point; the {dtype} run agrees with it to {worst:.3g} (tolerance {tol:.3g})")


def check_module(module, *inputs: Any, dtype=None, device=None, **options: Any) -> Report:
    """Check an ``nn.Module``'s gradients for its inputs AND every trainable parameter.

    The parameters become extra inputs after ``inputs``, named by
    ``named_parameters()`` (``"0.weight"``, ...), and the module is called
    with ``torch.func.functional_call`` on a copy moved to ``dtype``/``device``,
    so the caller's module is never changed. Buffers (running statistics) are
    left as they are; put the module in ``eval()`` mode when they would change.

    Parameters
    ----------
    module:
        A ``torch.nn.Module``.
    *inputs:
        The module's positional inputs (tensors or arrays).
    dtype, device, **options:
        As in :func:`check_torch`.
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise InputTypeError(f"module must be a torch.nn.Module, got {describe(module)}")
    if dtype is None:
        dtype = _default_dtype(inputs) if inputs else next(
            (p.dtype for p in module.parameters()), torch.float64)
    work = copy.deepcopy(module).to(device=device or "cpu",
                                    dtype=torch.float32 if _is_low_precision(dtype) else dtype)
    named = [(n, p) for n, p in work.named_parameters() if p.requires_grad]
    n_in = len(inputs)
    param_names = [n for n, _ in named]

    def call(*args):
        params = dict(zip(param_names, args[n_in:]))
        # the working dtype of the call decides the module's dtype (stage 2 of bf16)
        run = work.to(args[n_in].dtype) if params and args[n_in].dtype != next(
            work.parameters()).dtype else work
        return torch.func.functional_call(run, params, args[:n_in])

    options.setdefault("names", [f"input{i}" for i in range(n_in)] + param_names)
    report = check_torch(call, *inputs, *[p.detach() for _, p in named],
                         dtype=dtype, device=device, **options)
    report.function = type(module).__name__
    return report


# torch.autograd.gradcheck / gradgradcheck with gradproof underneath (one import to switch)
# ----------------------------------------------------------------------
# ``torch.autograd.gradcheck`` and ``gradgradcheck``, answered by gradproof.
#
# An existing torch test suite switches by changing one import::
#
#     from torch.autograd import gradcheck, gradgradcheck              # before
#     from gradproof.adapters.torch import gradcheck, gradgradcheck    # after
#
# Same signatures, same return value (``True``) and the same exception
# (``torch.autograd.gradcheck.GradcheckError``, a ``RuntimeError``) or ``False``
# with ``raise_exception=False``. The exception's message is gradproof's report
# and it carries the :class:`~gradproof.check.Report` as ``.report``.
#
# What changes underneath: the inputs that ``requires_grad`` are checked by
# :func:`gradproof.adapters.torch.check_torch` (random projections with
# estimated tolerances, side checks, localisation), not by a full Jacobian with
# fixed ``eps``/``atol``/``rtol``. Those arguments, and the switches for checks
# gradproof does not make (``check_forward_ad``, ``check_batched_grad``, ...),
# are accepted so that calls keep working, and ignored; run torch's own
# ``gradcheck`` for forward-mode AD and batched gradients. An inconclusive check
# (nothing proven either way) fails like a failed one: a gradcheck passes only
# what is proven.
#
# :func:`gradgradcheck` checks the second derivative: the function
# ``(inputs, grad_outputs) -> torch.autograd.grad(fn(inputs), inputs,
# grad_outputs, create_graph=True)`` — the backward itself — is checked with
# ``check_torch``, so its VJP (a Hessian-vector product, through torch's double
# backward of your ``Function``) is compared against differences of gradients.
def _as_tuple(inputs: Any) -> tuple:
    torch = _torch()
    return (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)


def _differentiable(inputs: Sequence) -> list[int]:
    torch = _torch()
    return [i for i, x in enumerate(inputs)
            if isinstance(x, torch.Tensor) and x.requires_grad and x.is_floating_point()]


def _verdict(report, raise_exception: bool) -> bool:
    """torch's contract: True, or GradcheckError / False."""
    __tracebackhide__ = True  # pytest shows the caller's line
    if report.ok:
        return True
    if raise_exception:
        from torch.autograd.gradcheck import GradcheckError

        error = GradcheckError(f"gradproof: the gradient check did not pass (verdict "
                               f"{report.verdict}):\n{report}")
        error.report = report
        raise error
    return False


def gradcheck(func: Callable, inputs: Any, *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
              check_batched_grad: bool = False, check_batched_forward_grad: bool = False,
              check_forward_ad: bool = False, check_backward_ad: bool = True,
              fast_mode: bool = False, masked: bool | None = None, seed: int = 0,
              **options: Any) -> bool:
    """``torch.autograd.gradcheck`` with gradproof's checker underneath.

    Parameters
    ----------
    func:
        A function of tensors returning a tensor or a (nested) tuple of tensors.
    inputs:
        A tensor or a tuple of inputs; the float tensors with ``requires_grad``
        are checked, everything else is passed through.
    raise_exception:
        ``True``: raise ``torch.autograd.gradcheck.GradcheckError`` (message:
        the report; ``.report``: the Report) unless the check is ``ok``.
        ``False``: return ``False`` instead.
    eps, atol, rtol, nondet_tol, check_*, fast_mode, masked:
        Accepted for compatibility and ignored: steps and tolerances come from
        gradproof's error model (see the module docstring).
    seed, **options:
        Passed to :func:`gradproof.adapters.torch.check_torch` (``mode``,
        ``dtype``, ``device``, ...).

    Returns
    -------
    bool
        ``True`` when every checked input is proven right.
    """
    __tracebackhide__ = True

    inputs = _as_tuple(inputs)
    wrt = _differentiable(inputs)
    if not wrt:
        raise InputError("gradcheck expects at least one input tensor to require gradient, "
                         "got none; call x.requires_grad_() on the inputs to check")
    report = check_torch(func, *inputs, wrt=wrt, seed=seed, **options)
    return _verdict(report, raise_exception)


def _backward_of(func: Callable, n_inputs: int, wrt: list[int]) -> Callable:
    """``(*inputs, *grad_outputs) -> grads of the inputs in wrt`` with ``create_graph``, so
    that torch can differentiate the backward again (zeros where an input is unused)."""
    torch = _torch()

    def backward(*args):
        inputs, grad_outputs = args[:n_inputs], args[n_inputs:]

        outs = [o for o in _flatten(func(*inputs)) if o.requires_grad]
        wanted = [inputs[i] for i in wrt]
        grads = torch.autograd.grad(outs, wanted, grad_outputs=list(grad_outputs)[:len(outs)],
                                    create_graph=True, allow_unused=True)
        return tuple(torch.zeros_like(x) if g is None else g for x, g in zip(wanted, grads))

    return backward


def _random_grad_outputs(func: Callable, inputs: tuple, seed: int) -> tuple:
    torch = _torch()

    with torch.enable_grad():
        outs = [o for o in _flatten(func(*inputs)) if o.requires_grad]
    rng = np.random.default_rng([seed, 2])
    return tuple(torch.from_numpy(rng.standard_normal(tuple(o.shape))).to(o.dtype)
                 .requires_grad_() for o in outs)


def check_second_order(func: Callable, *inputs: Any, grad_outputs: Sequence | None = None,
                       seed: int = 0, **options: Any):
    """The Report of a second-order check: ``check_torch`` of ``func``'s backward.

    The checked function is ``(*inputs, *grad_outputs) -> d<grad_outputs, func(inputs)>/d
    inputs`` (the inputs that require grad, or every float input when none does);
    its VJP is torch's double backward, compared with differences of gradients.
    ``grad_outputs`` default to seeded standard normal tensors of the outputs' shapes.
    """

    torch = _torch()
    wrt = _differentiable(inputs) or [i for i, x in enumerate(inputs)
                                      if isinstance(x, torch.Tensor) and x.is_floating_point()]
    if not wrt:
        raise InputError("check_second_order needs at least one float tensor input")
    leaves = tuple(x.detach().requires_grad_() if i in wrt else x for i, x in enumerate(inputs))
    if grad_outputs is None:
        grad_outputs = _random_grad_outputs(func, leaves, seed)
    grad_outputs = tuple(g.detach() for g in _as_tuple(grad_outputs))
    names = options.pop("names", None) or (
        [f"input{i}" for i in range(len(inputs))]
        + [f"grad_output{k}" for k in range(len(grad_outputs))])
    report = check_torch(_backward_of(func, len(inputs), wrt), *leaves, *grad_outputs,
                         wrt=list(wrt) + list(range(len(inputs), len(inputs)
                                                    + len(grad_outputs))),
                         names=names, seed=seed, **options)
    report.function = f"backward of {report.function}"
    return report


def gradgradcheck(func: Callable, inputs: Any, grad_outputs: Any = None, *, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3,
                  gen_non_contig_grad_outputs: bool = False, raise_exception: bool = True,
                  nondet_tol: float = 0.0, check_undefined_grad: bool = True,
                  check_grad_dtypes: bool = False, check_batched_grad: bool = False,
                  check_fwd_over_rev: bool = False, check_rev_over_rev: bool = True,
                  fast_mode: bool = False, masked: bool = False, seed: int = 0,
                  **options: Any) -> bool:
    """``torch.autograd.gradgradcheck`` with gradproof's checker underneath.

    The backward of ``func`` (a function of the inputs and ``grad_outputs``)
    is checked with :func:`check_second_order`; the return value and the
    exception are :func:`gradcheck`'s. ``grad_outputs`` default to seeded
    random tensors. The torch-specific tolerance arguments are accepted and
    ignored.
    """
    __tracebackhide__ = True
    inputs = _as_tuple(inputs)
    if not _differentiable(inputs):
        raise InputError("gradgradcheck expects at least one input tensor to require "
                         "gradient, got none; call x.requires_grad_() on the inputs to check")
    report = check_second_order(func, *inputs, grad_outputs=grad_outputs, seed=seed, **options)
    return _verdict(report, raise_exception)

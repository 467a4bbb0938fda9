"""The numeric layer, the lazy path: a layer whose backward is measured from its forward.

``numeric(f)`` wraps a NumPy function ``out = f(x)`` into a layer: the forward
calls ``f``; the backward measures the derivative of ``f`` with finite
differences instead of a hand-written formula::

    softsign = numeric(lambda x: x / (1 + np.abs(x)))
    out, cache = softsign.forward(x)            # functional pair, CS231n style
    dx = softsign.backward(dout, cache)
    gradproof.check_vjp(softsign.forward, softsign.backward, x)
    model = MLP(64, [64], 10, activation=softsign.module_class)   # as a Module

What a backward costs, in calls of ``f`` (``n = x.size``):

* **Elementwise** ``f`` (``out[k]`` depends on ``x[k]`` only): the Jacobian is
  diagonal, so one perturbation of the *whole array at once* measures every
  derivative: ``(f(x + h) - f(x - h)) / 2h`` is 2 calls whatever ``n``; with
  ``richardson=True`` steps ``h`` and ``h/2`` are combined (4 calls, error
  ``O(h^4)``); complex step ``Im f(x + i t) / t`` is 1 call, exact to rounding.
* **General** ``f``: a full numerical VJP, one central difference per input
  coordinate (``2n`` calls; ``n`` with complex step). A
  :class:`NumericCostWarning` says so once per layer.

Whether ``f`` is elementwise is *verified*, once per input shape and dtype,
by :func:`elementwise_probe`: ``f`` must keep ``x``'s shape, and each output
must change only with its own input (to rounding) when some coordinates of
``x`` move to other values. The probe moves every coordinate at once (1 call), then
for each bit ``b`` of the flat index the coordinates whose bit ``b`` is set
(``ceil(log2 n)`` calls): any two coordinates differ in some bit, so an output
that depends on another coordinate's input is caught, whether the Jacobian is
dense (softmax, ``x - x.mean()``, ``x / norm(x)``) or sparse (``x[::-1]``,
``np.roll``, ``cumsum``, ``sort``). Cost: ``1 + ceil(log2 n)`` calls of ``f``
(5 for 16 values, 21 for 10^6), once per shape; a size-1 input is trivially
elementwise (0 calls). With ``elementwise=None`` (the default) a failed probe
sends that shape to the full numerical VJP with a :class:`NotElementwiseWarning`
naming the shape and why; ``elementwise=True`` is verified the same way and a
failure raises :class:`~gradproof.errors.InputError`; ``elementwise=False``
skips the probe. A decision is cached per (shape, dtype), never per layer, and
only when ``f(x)`` is finite everywhere (a NaN output hides what it depends on:
such a call is probed again). The probe sees ``f`` at the values of the first
input of each shape, moved to other values of that input (so ``sort`` of
already sorted values is caught): a function that mixes only at some values
(a branch on ``x.sum()``) can pass there and mix later -- say
``elementwise=False``.

``method="complex"`` is validated against central differences on the first
backward; a ``f`` that is not complex-analytic (``abs``, ``maximum``,
comparisons) falls back to central differences with a note in
:attr:`NumericLayer.notes` and a warning.

Steps: relative ``step`` (default: the checker's, :func:`gradproof.check.arrays.default_step`
and :func:`~gradproof.check.arrays.complex_step` for float64: ``eps^(1/3)`` for
central, ``eps^(1/5)`` with Richardson, ``1e-20`` for complex step) times
``max(|x_k|, 1)``, taken as the steps actually representable,
``(x + h) - x``. Derivatives are measured in float64 and cast back to
``x``'s dtype, so float32 layers get float64-quality gradients.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..check.arrays import complex_step, default_step
from ..errors import InputError, InputTypeError, describe
from .module import Module

__all__ = ["numeric", "NumericLayer", "NumericCostWarning", "NotElementwiseWarning", "METHODS",
           "numerical_vjp", "directional_vjp", "elementwise_probe"]

METHODS = ("central", "complex")
_PROBE_ULPS = 4  # "unchanged": equal to this many units in the last place of the output


class NumericCostWarning(UserWarning):
    """A numerical backward that costs one or more forward calls per input coordinate."""


class NotElementwiseWarning(UserWarning):
    """``elementwise=None`` found ``f`` not elementwise for an input shape: that shape's
    backward is a full numerical VJP (pass ``elementwise=False`` to say so up front)."""


def _default_step(method: str, richardson: bool) -> float:
    """The checker's steps for float64, where derivatives are measured: truncation
    ``O(h^2)`` (``O(h^4)`` with Richardson) balanced against rounding ``eps / h``."""
    if method == "complex":
        return complex_step(np.float64)
    return default_step(np.float64, order=4 if richardson else 2)


def _steps(x: np.ndarray, step: float) -> np.ndarray:
    """Per-coordinate steps ``step * max(|x|, 1)``, made exactly representable.

    Not the checker's :func:`~gradproof.check.arrays.perturbation_scale`, which caps
    each coordinate's scale at the spread of the whole input: right for a random
    direction through a function that mixes coordinates, whose step the checker then
    adapts. Here each derivative is one coordinate's own, and the step is not adapted
    (capped, tanh's derivative on ``3 + 0.01 N(0, 1)`` errs 100x more).
    """
    h = step * np.maximum(np.abs(x), 1.0)
    return (x + h) - x


def directional_vjp(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray,
                    k: int, h: float, method: str = "central") -> float:
    """``<dout, df/dx_k>`` for the flat coordinate ``k`` of ``x``: 2 calls of f (central,
    step ``h``) or 1 (complex step ``h``)."""
    if method == "complex":
        xc = x.astype(np.complex128)
        xc.reshape(-1)[k] += 1j * h
        return float(np.sum(dout * np.imag(f(xc)))) / h
    plus, minus = x.copy(), x.copy()
    plus.reshape(-1)[k] += h
    minus.reshape(-1)[k] -= h
    return float(np.sum(dout * (f(plus) - f(minus)))) / (2 * h)


def numerical_vjp(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray,
                  method: str = "central", step: float | None = None,
                  coords: np.ndarray | None = None) -> np.ndarray:
    """The full numerical VJP ``J^T dout`` of ``f`` at ``x`` (float64), one coordinate at a time.

    ``x`` any shape; ``dout`` f(x)'s shape; returns ``dx`` of x's shape, or with
    ``coords`` (flat indices) only those entries (shape ``coords.shape``).
    Costs 2 calls of f per coordinate (central) or 1 (complex step).
    """
    flat = x.reshape(-1)
    index = np.arange(flat.size) if coords is None else np.asarray(coords)
    if method == "complex":  # no cancellation: the step needs no rounding care
        steps = np.full(index.size, step or _default_step("complex", False))
    else:
        steps = _steps(flat[index], step or _default_step("central", False))
    dx = np.array([directional_vjp(f, x, dout, int(k), float(h), method)
                   for k, h in zip(index, steps)])
    return dx.reshape(x.shape) if coords is None else dx


def _unchanged(a: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """``a == b`` to rounding (``_PROBE_ULPS`` ulps of the larger), NaN equal to NaN."""
    with np.errstate(invalid="ignore"):
        close = np.abs(a - b) <= _PROBE_ULPS * eps * np.maximum(np.abs(a), np.abs(b))
    return (a == b) | close | (np.isnan(a) & np.isnan(b))


def _moved(flat: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every coordinate of the 1-D ``flat`` moved: to the value of another coordinate (a
    random cycle through all of them, so moves are as large as x's spread and stay among
    values f accepts) plus a positive step ``eps^(1/3) * max(|v|, 1)`` of x's dtype, so
    that equal values move too."""
    cycle = rng.permutation(flat.size)
    shuffled = np.empty_like(flat)
    shuffled[cycle] = flat[np.roll(cycle, -1)]  # no coordinate keeps its own value
    base = np.where(np.isfinite(shuffled), shuffled, flat).astype(np.float64)
    step = (np.finfo(flat.dtype).eps ** (1 / 3) * rng.uniform(0.5, 1.0, flat.size)
            * np.maximum(np.abs(np.nan_to_num(base)), 1.0))
    return (base + step).astype(flat.dtype)


def elementwise_probe(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, out: np.ndarray,
                      seed: int = 0) -> str | None:
    """Why ``f`` is not elementwise at ``x`` (``out = f(x)``), or None if every output
    depends on its own input only.

    ``x`` any shape (n values), ``out`` must have x's shape. Let ``m`` be ``x``
    with every coordinate moved (:func:`_moved`) and, for each bit ``b`` of the
    flat index, ``p_b`` be ``x`` with only the coordinates whose bit ``b`` is 1
    moved to ``m``. For an elementwise ``f``, ``f(p_b)`` equals ``f(m)`` where
    ``x`` moved and ``out`` where it did not, to rounding. An output ``i`` that
    depends on an input ``j != i`` breaks this for a bit where ``i`` and ``j``
    differ (one moves, the other does not), unless the moves cancel exactly
    (probability 0 for the random moves). Calls of f: 0 for n <= 1, else
    ``1 + ceil(log2 n)``; stops at the first output that changed. Exceptions
    raised by ``f`` propagate.
    """
    if out.shape != x.shape:
        return f"f changes the shape: x {x.shape} -> out {out.shape}"
    n = x.size
    if n <= 1:  # a 1x1 (or empty) Jacobian is diagonal
        return None
    flat, out_flat = x.reshape(-1), out.reshape(-1)
    eps = float(np.finfo(out.dtype).eps) if out.dtype.kind in "fc" else 0.0
    moved = _moved(flat, np.random.default_rng(seed))
    index = np.arange(n)
    with np.errstate(all="ignore"):  # moved values may leave f's domain: NaN there is fine
        everywhere = np.asarray(f(moved.reshape(x.shape)))
        if everywhere.shape != x.shape:
            return f"f changes the shape: x {x.shape} -> out {everywhere.shape}"
        for bit in range(int(n - 1).bit_length()):
            part = (index >> bit) & 1 == 1
            partly = np.asarray(f(np.where(part, moved, flat).reshape(x.shape)))
            if partly.shape != x.shape:
                return f"f changes the shape: x {x.shape} -> out {partly.shape}"
            expected = np.where(part, everywhere.reshape(-1), out_flat)
            changed = ~_unchanged(partly.reshape(-1), expected, eps)
            if changed.any():
                k = int(np.argmax(changed))
                at = "[" + ", ".join(str(int(c)) for c in np.unravel_index(k, x.shape)) + "]"
                others = int(n - part.sum()) if part[k] else int(part.sum())
                return (f"out{at} is {expected[k]:.6g} at one point and "
                        f"{partly.reshape(-1)[k]:.6g} at another where x{at} is the same and "
                        f"{others} other coordinate(s) differ: out{at} depends on other inputs")
    return None


def _complex_agrees(by_complex, by_central) -> bool:
    """Complex-step and central-difference derivatives agree (to 1e-6, relative to
    ``max(|central|, 1)``): f is complex-analytic here."""
    scale = np.maximum(np.abs(by_central), 1.0)
    return bool(np.all(np.abs(np.asarray(by_complex) - by_central) <= 1e-6 * scale))


class NumericLayer:
    """A layer ``out = f(x)`` whose backward is measured numerically; see :func:`numeric`.

    Attributes: ``calls`` (calls of ``f`` so far, forward, probes and backward),
    ``backward_calls`` (calls made by backward passes), ``declared`` (the
    ``elementwise`` argument: None, True or False), ``structure`` (the verified
    decision per input ``(shape, dtype)``: True for the elementwise fast path),
    ``elementwise`` (the decision for the latest input; the argument until the
    first forward), ``method`` (the method in use: may become ``"central"``
    after a complex-step fallback), ``notes`` (plain-language notes).
    """

    def __init__(self, f: Callable[[np.ndarray], np.ndarray], method: str = "central",
                 step: float | None = None, elementwise: bool | None = None,
                 richardson: bool = False, name: str | None = None) -> None:
        if not callable(f):
            raise InputTypeError(f"f must be a function x -> f(x), got {describe(f)}")
        if method not in METHODS:
            raise InputError(f"method must be one of {METHODS}, got {method!r}")
        if step is not None and not (isinstance(step, (int, float)) and 0 < step < 1):
            raise InputError(f"step must be None or a float in (0, 1), got {step!r}")
        if elementwise not in (None, True, False):
            raise InputTypeError(f"elementwise must be None, True or False, got {elementwise!r}")
        self.f = f
        self.name = name or getattr(f, "__name__", "f")
        self.method = method
        self.richardson = bool(richardson)
        self.step = step
        self.declared = elementwise
        self.elementwise = elementwise
        self.structure: dict[tuple[tuple[int, ...], np.dtype], bool] = {}
        self.notes: list[str] = []
        self.calls = 0
        self.backward_calls = 0
        self._complex_validated = False
        self._warned_cost = False

    def __repr__(self) -> str:
        return f"numeric({self.name}, method={self.method!r}, elementwise={self.declared})"

    # --- calls of f ----------------------------------------------------------
    def _f(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.asarray(self.f(x))

    def _note(self, text: str, category: type[Warning] = UserWarning) -> None:
        self.notes.append(text)
        warnings.warn(f"{self!r}: {text}", category, stacklevel=4)

    # --- forward -------------------------------------------------------------
    def forward(self, x: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """``x`` (any shape, float) -> ``(out, cache)`` with ``out = f(x)``.

        The first forward of each ``(shape, dtype)`` also runs the elementwise
        probe (``1 + ceil(log2 x.size)`` calls) unless ``elementwise=False``.
        """
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            raise InputTypeError(f"{self!r}: x must be a float array, got {describe(x)}")
        out = self._f(x)
        self._decide(x, out)
        return out, (x, out)

    def _decide(self, x: np.ndarray, out: np.ndarray) -> bool:
        """Whether the backward at ``x`` may take the elementwise fast path: the cached
        decision for x's (shape, dtype), else the probe's (cached when f(x) is finite)."""
        if self.declared is False:
            return False
        key = (x.shape, x.dtype)
        if key in self.structure:
            self.elementwise = self.structure[key]
            return self.elementwise
        where = f"x of shape {x.shape} and dtype {x.dtype}"
        try:
            reason = elementwise_probe(self._f, x, out, seed=x.size)
        except Exception as exc:  # noqa: BLE001 - f failed at the probe's points
            if self.declared:
                raise InputError(
                    f"{self!r}: could not verify that f is elementwise on {where}: f raised "
                    f"{type(exc).__name__}: {exc} at the probe's points (x with coordinates "
                    "moved to other values of x); pass elementwise=None to fall back to a full "
                    "numerical VJP") from exc
            reason = f"the probe could not tell (f raised {type(exc).__name__}: {exc})"
        if reason is None:
            if np.all(np.isfinite(out)):  # a NaN output hides what it depends on
                self.structure[key] = True
            self.elementwise = True
            return True
        if self.declared:
            raise InputError(
                f"{self!r}: f is not elementwise on {where}: {reason}. The elementwise "
                "backward would be wrong; pass elementwise=None (detect it per shape, falling "
                "back to a full numerical VJP) or elementwise=False")
        self.structure[key] = self.elementwise = False
        per = 1 if self.method == "complex" else 2
        self._note(f"f is not elementwise on {where}: {reason}. Its backward is a full "
                   f"numerical VJP, {per * x.size} calls of f (pass elementwise=False to say "
                   "so up front)", NotElementwiseWarning)
        return False

    # --- backward ------------------------------------------------------------
    def backward(self, dout: np.ndarray, cache: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """``dout`` (out's shape) -> ``dx`` (x's shape and dtype), numerically."""
        x, out = cache
        if np.shape(dout) != out.shape:
            raise InputError(f"{self!r}: dout must have shape {out.shape}, got {np.shape(dout)}")
        before = self.calls
        x64 = x.astype(np.float64)
        if self._decide(x, out):
            dx = np.asarray(dout, np.float64) * self._diagonal(x64)
        else:
            dx = self._full_vjp(x64, np.asarray(dout, np.float64))
        self.backward_calls += self.calls - before
        return dx.astype(x.dtype, copy=False)

    def _diagonal(self, x: np.ndarray) -> np.ndarray:
        """f'(x) for an elementwise f, every coordinate at once (1, 2 or 4 calls)."""
        if self.method == "complex":
            if self._complex_validated:
                return self._complex_diagonal(x)
            derivative = self._validated_complex(x)
            if derivative is not None:
                return derivative
        return self._central_diagonal(x)

    def _central_diagonal(self, x: np.ndarray) -> np.ndarray:
        step = self.step or _default_step("central", self.richardson)

        def slope(h: np.ndarray) -> np.ndarray:
            return (self._f(x + h) - self._f(x - h)) / (2 * h)

        h = _steps(x, step)
        if not self.richardson:
            return slope(h)
        # D(h) = f' + c h^2 + O(h^4): (4 D(h/2) - D(h)) / 3 removes the h^2 term
        return (4 * slope(h / 2) - slope(h)) / 3

    def _complex_diagonal(self, x: np.ndarray) -> np.ndarray:
        t = self.step or _default_step("complex", False)
        return np.imag(self._f(x + 1j * t)) / t

    def _validated_complex(self, x: np.ndarray) -> np.ndarray | None:
        """The complex-step derivative if f is complex-analytic here, else None (and a note)."""
        reason = None
        try:
            derivative = self._complex_diagonal(x)
        except Exception as exc:  # noqa: BLE001 - f rejected complex input
            derivative, reason = None, f"f raised {type(exc).__name__} on complex input"
        if derivative is not None:
            central = self._central_diagonal(x)  # 2 calls: 3 in all on this first backward
            if not np.all(np.isfinite(derivative)):
                reason = "f gave non-finite values on complex input"
            elif not _complex_agrees(derivative, central):
                reason = ("its complex-step derivative disagrees with central differences "
                          "(abs, maximum, comparisons or casts are not complex-analytic)")
        if reason is None:
            self._complex_validated = True
            return derivative
        self.method = "central"
        self._note(f"complex step unavailable: {reason}; using central differences")
        return None

    def _full_vjp(self, x: np.ndarray, dout: np.ndarray) -> np.ndarray:
        """``dx[k] = <dout, df/dx_k>`` for every coordinate k: n or 2n calls of f."""
        n = x.size
        per = 1 if self.method == "complex" else 2
        if not self._warned_cost:
            self._warned_cost = True
            self._note(
                f"f is not elementwise: each backward measures a full numerical VJP, "
                f"{per} forward call(s) per input coordinate = {per * n} calls of f for "
                f"x of shape {x.shape} (an analytic backward costs about one forward)",
                NumericCostWarning,
            )
        if self.method == "complex" and not self._complex_validated:
            self._validate_complex_vjp(x, dout)
        return numerical_vjp(self._f, x, dout, self.method, self.step)

    def _directional(self, x: np.ndarray, k: int, h: float, dout: np.ndarray) -> float:
        return directional_vjp(self._f, x, dout, k, h, self.method)

    def _validate_complex_vjp(self, x: np.ndarray, dout: np.ndarray) -> None:
        """One coordinate by both methods; a disagreement switches to central for good."""
        h_c = self.step or _default_step("complex", False)
        try:
            by_complex = self._directional(x, 0, h_c, dout)
        except Exception as exc:  # noqa: BLE001
            self.method = "central"
            self._note(f"complex step unavailable: f raised {type(exc).__name__} on complex "
                       "input; using central differences")
            return
        self.method = "central"
        h = float(_steps(x.reshape(-1)[:1], _default_step("central", False))[0])
        by_central = self._directional(x, 0, h, dout)
        if _complex_agrees(by_complex, by_central):
            self.method, self._complex_validated = "complex", True
        else:
            self._note("complex step unavailable: f is not complex-analytic here; "
                       "using central differences")

    # --- as a Module ---------------------------------------------------------
    @property
    def module_class(self) -> type[Module]:
        """A Module class (no constructor arguments) whose instances use this layer.

        Pass it where a model takes an activation class:
        ``MLP(64, [64], 10, activation=layer.module_class)``.
        """
        layer = self
        return type(f"Numeric_{self.name}", (NumericModule,), {
            "__init__": lambda module: NumericModule.__init__(module, layer)})

    def module(self) -> NumericModule:
        """A new Module instance using this layer."""
        return NumericModule(self)


class NumericModule(Module):
    """A parameter-free Module around a :class:`NumericLayer` (forward, numerical backward)."""

    def __init__(self, layer: NumericLayer) -> None:
        super().__init__()
        self.layer = layer
        self._cache: Any = None

    def __repr__(self) -> str:
        return f"NumericModule({self.layer!r})"

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self._cache = self.layer.forward(x)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise InputError(f"{self!r}: backward called before forward")
        return self.layer.backward(dout, self._cache)


def numeric(f: Callable[[np.ndarray], np.ndarray], method: str = "central",
            step: float | None = None, elementwise: bool | None = None,
            richardson: bool = False, name: str | None = None) -> NumericLayer:
    """Wrap ``f`` (a NumPy function ``x -> out``) into a layer with a numerical backward.

    Args:
        f: the forward function. Elementwise functions keep x's shape.
        method: ``"central"`` differences, or ``"complex"`` step where f
            accepts complex input (validated; falls back to central with a note).
        step: relative step (default: see the module docstring).
        elementwise: None (default) to detect per input shape whether ``out[k]``
            depends on ``x[k]`` only, falling back to a full numerical VJP with a
            :class:`NotElementwiseWarning` when it does not; True to promise it
            (verified per shape all the same; a broken promise raises
            :class:`~gradproof.errors.InputError`); False for the full VJP always.
            The probe costs ``1 + ceil(log2 n)`` calls once per shape.
        richardson: central differences with steps h and h/2 combined
            (4 calls per backward instead of 2, error O(h^4) instead of O(h^2)).
        name: the name shown in messages (default: ``f.__name__``).

    Returns:
        A :class:`NumericLayer`: ``forward(x) -> (out, cache)``,
        ``backward(dout, cache) -> dx``, ``module()`` and ``module_class``.
    """
    return NumericLayer(f, method=method, step=step, elementwise=elementwise,
                        richardson=richardson, name=name)

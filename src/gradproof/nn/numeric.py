"""The lazy path: a layer whose backward is computed numerically from its forward.

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

``elementwise=None`` (the default) decides on the first forward: ``f`` must
keep ``x``'s shape and give, on a sample of ``x``'s values taken as a 1-D
array, the same values as on the whole array (a normalisation or a
reduction does not). ``method="complex"`` is validated against central
differences on the first backward; a ``f`` that is not complex-analytic
(``abs``, ``maximum``, comparisons) falls back to central differences with a
note in :attr:`NumericLayer.notes` and a warning.

Steps: relative ``step`` (default ``eps^(1/3)`` for central, ``eps^(1/5)``
with Richardson, ``1e-20`` for complex step, ``eps`` of float64) times
``max(|x_k|, 1)``, taken as the steps actually representable,
``(x + h) - x``. Derivatives are measured in float64 and cast back to
``x``'s dtype, so float32 layers get float64-quality gradients.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import InputError, InputTypeError, describe
from .module import Module

__all__ = ["numeric", "NumericLayer", "NumericCostWarning", "METHODS", "numerical_vjp",
           "directional_vjp"]

METHODS = ("central", "complex")
_EPS = np.finfo(np.float64).eps
_SAMPLE = 16  # coordinates compared by the elementwise probe


class NumericCostWarning(UserWarning):
    """A numerical backward that costs one or more forward calls per input coordinate."""


def _default_step(method: str, richardson: bool) -> float:
    if method == "complex":
        return 1e-20
    # truncation ~h^2 (h^4 with Richardson) balances rounding ~eps/h
    return float(_EPS ** (1 / 5 if richardson else 1 / 3))


def _steps(x: np.ndarray, step: float) -> np.ndarray:
    """Per-coordinate steps ``step * max(|x|, 1)``, made exactly representable."""
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


def _complex_agrees(by_complex, by_central) -> bool:
    """Complex-step and central-difference derivatives agree (to 1e-6, relative to
    ``max(|central|, 1)``): f is complex-analytic here."""
    scale = np.maximum(np.abs(by_central), 1.0)
    return bool(np.all(np.abs(np.asarray(by_complex) - by_central) <= 1e-6 * scale))


class NumericLayer:
    """A layer ``out = f(x)`` whose backward is measured numerically; see :func:`numeric`.

    Attributes: ``calls`` (calls of ``f`` so far, forward and backward),
    ``backward_calls`` (calls made by backward passes), ``elementwise`` (None
    until decided), ``method`` (the method in use: may become ``"central"``
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
        self.elementwise = elementwise
        self.notes: list[str] = []
        self.calls = 0
        self.backward_calls = 0
        self._complex_validated = False
        self._warned_cost = False

    def __repr__(self) -> str:
        return f"numeric({self.name}, method={self.method!r}, elementwise={self.elementwise})"

    # --- calls of f ----------------------------------------------------------
    def _f(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.asarray(self.f(x))

    def _note(self, text: str, category: type[Warning] = UserWarning) -> None:
        self.notes.append(text)
        warnings.warn(f"{self!r}: {text}", category, stacklevel=4)

    # --- forward -------------------------------------------------------------
    def forward(self, x: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """``x`` (any shape, float) -> ``(out, cache)`` with ``out = f(x)``."""
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            raise InputTypeError(f"{self!r}: x must be a float array, got {describe(x)}")
        out = self._f(x)
        if self.elementwise is None:
            self.elementwise = self._looks_elementwise(x, out)
            if not self.elementwise:
                self._note("f is not elementwise (or the probe could not tell): its backward is "
                           "a full numerical VJP")
        return out, (x, out)

    def _looks_elementwise(self, x: np.ndarray, out: np.ndarray) -> bool:
        """Same shape, and f on a 1-D sample of x's values equals the same entries of f(x)."""
        if out.shape != x.shape or x.size == 0:
            return False
        rng = np.random.default_rng(x.size)
        index = rng.choice(x.size, size=min(_SAMPLE, x.size), replace=False)
        try:
            sample = self._f(x.reshape(-1)[index])
        except Exception:  # noqa: BLE001 - any failure means "cannot tell": take the safe path
            return False
        expected = out.reshape(-1)[index]
        return sample.shape == expected.shape and bool(
            np.allclose(sample, expected, rtol=1e-12, atol=0.0, equal_nan=True))

    # --- backward ------------------------------------------------------------
    def backward(self, dout: np.ndarray, cache: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """``dout`` (out's shape) -> ``dx`` (x's shape and dtype), numerically."""
        x, out = cache
        if np.shape(dout) != out.shape:
            raise InputError(f"{self!r}: dout must have shape {out.shape}, got {np.shape(dout)}")
        before = self.calls
        x64 = x.astype(np.float64)
        if self.elementwise:
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
        elementwise: True/False to say whether ``out[k]`` depends on ``x[k]``
            only; None to detect it on the first forward (one extra call).
        richardson: central differences with steps h and h/2 combined
            (4 calls per backward instead of 2, error O(h^4) instead of O(h^2)).
        name: the name shown in messages (default: ``f.__name__``).

    Returns:
        A :class:`NumericLayer`: ``forward(x) -> (out, cache)``,
        ``backward(dout, cache) -> dx``, ``module()`` and ``module_class``.
    """
    return NumericLayer(f, method=method, step=step, elementwise=elementwise,
                        richardson=richardson, name=name)

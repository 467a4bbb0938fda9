"""The optimizer base: parameter groups, per-parameter state, checkpoints.

An optimizer holds ``param_groups``, a list of dicts as in ``torch.optim``:
``{"params": [Parameter, ...], "lr": ..., <other options>}``. ``step()``
updates every ``p.data`` in place from ``p.grad`` (parameters whose ``grad`` is
None are skipped, as in PyTorch), so modules keep their references.

A subclass declares its options as a table ``{name: check}`` and writes one
method, ``_update(w, dw, state, scratch, group)``, the update rule for one
parameter. ``state`` is that parameter's dict (``"step"`` plus the arrays named
in ``state_names``, created on first use); ``scratch`` is a pair of arrays of
the parameter's shape and dtype, reused every step so that a step allocates
nothing.

Checkpoint format (``state_dict()``), trivially saved as JSON + ``.npz`` with
``allow_pickle=False``::

    {"hyper": {"optimizer": "Adam", "format": 1,
               "param_groups": [{"lr": 0.001, "betas": [0.9, 0.999], ...,
                                 "params": [0, 1, 2]}],
               "steps": [50, 50, 50]},          # JSON: numbers, strings, lists
     "arrays": {"0.exp_avg": ndarray, "0.exp_avg_sq": ndarray, ...}}

Parameters are numbered in the order of ``param_groups``; array keys are
``"<parameter number>.<state name>"``. Loading checks everything before it
changes anything: a parameter that has taken steps must have every state
array its rule uses (a deleted moment would silently restart at zero), each
of the parameter's shape, finite, and non-negative where it is a running
square (Adam's ``exp_avg_sq``, RMSProp's ``square_avg``, AdaGrad's ``sum``).

Non-finite gradients (``on_nonfinite``): by default ``step()`` raises
:class:`~gradproof.errors.InputError` naming the parameter before updating
any parameter; ``on_nonfinite="skip"`` skips the whole step with a
:class:`NonFiniteGradientWarning` instead (loss-scaling style). Either way no
NaN or infinity reaches the parameters through a gradient.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np

from .._validate import check_options, non_negative
from ..errors import InputError, InputTypeError, describe
from ..nn.module import Module, Parameter

__all__ = ["Optimizer", "ParamsArg", "NonFiniteGradientWarning", "ON_NONFINITE"]

ParamsArg = Iterable[Parameter] | Iterable[dict[str, Any]]
STATE_FORMAT = 1
# Keys a group may carry besides the options: schedulers record the lr they started from.
#: an option's check: ``check(name, value, owner=...)`` returns the value normalised
Check = Callable[..., Any]

EXTRA_GROUP_KEYS: dict[str, Check] = {"initial_lr": non_negative}
ON_NONFINITE = ("raise", "skip")


class NonFiniteGradientWarning(UserWarning):
    """``step()`` skipped a step because a gradient held NaN or an infinity."""


class Optimizer:
    """Base class: subclasses set ``options`` and ``state_names`` and write ``_update``."""

    options: ClassVar[dict[str, Check]] = {}
    state_names: ClassVar[tuple[str, ...]] = ()
    nonnegative_state: ClassVar[tuple[str, ...]] = ()  # running squares: never negative

    def __init__(self, params: ParamsArg, defaults: dict[str, Any], unknown: dict[str, Any],
                 on_nonfinite: str = "raise"):
        owner = type(self).__name__
        check_options(owner, unknown, [*self.options, "on_nonfinite"], kind="option",
                      error=InputTypeError)
        if on_nonfinite not in ON_NONFINITE:
            raise InputError(f"{owner}: on_nonfinite must be one of {ON_NONFINITE}, got "
                             f"{on_nonfinite!r}")
        self.on_nonfinite = on_nonfinite
        self.defaults = self._check_hyper(defaults, owner)
        self.param_groups: list[dict[str, Any]] = self._build_groups(params, owner)
        self._params = [p for group in self.param_groups for p in group["params"]]
        _reject_duplicates(self._params, owner)
        self.state: list[dict[str, Any]] = [{"step": 0} for _ in self._params]
        self._scratch: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(self._params)

    # --- the rule ----------------------------------------------------------
    def _update(
        self,
        w: np.ndarray,
        dw: np.ndarray,
        state: dict[str, Any],
        scratch: tuple[np.ndarray, np.ndarray],
        group: dict[str, Any],
    ) -> None:  # pragma: no cover - abstract
        """Update ``w`` in place from ``dw``; ``state["step"]`` already counts this step."""
        raise NotImplementedError

    def _check_combination(self, hyper: dict[str, Any], owner: str) -> None:
        """Checks that involve several options (SGD's nesterov); none by default."""

    def _state_needed(self, group: dict[str, Any]) -> tuple[str, ...]:
        """The state arrays a parameter of ``group`` has once it has taken a step."""
        return self.state_names

    # --- public API --------------------------------------------------------
    def step(self) -> None:
        """Update every parameter that has a gradient, in place.

        A gradient with NaN or an infinity raises (nothing is updated) or, with
        ``on_nonfinite="skip"``, skips the step with a warning.
        """
        bad = self._nonfinite_gradient()
        if bad is not None:
            message = (f"{type(self).__name__}.step: the gradient of parameter {bad} "
                       f"({describe(self._params[bad].data)}) holds NaN or an infinity")
            if self.on_nonfinite == "raise":
                raise InputError(
                    f"{message}; no parameter was updated. Lower the learning rate, clip "
                    "the gradients, or build the optimizer with on_nonfinite='skip'")
            warnings.warn(f"{message}: step skipped", NonFiniteGradientWarning, stacklevel=2)
            return
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    scratch = self._scratch_for(index, p)
                    state = self.state[index]
                    state["step"] += 1
                    self._update(p.data, p.grad, state, scratch, group)
                index += 1

    def _nonfinite_gradient(self) -> int | None:
        """The index of the first parameter whose gradient is not finite, or None."""
        for index, p in enumerate(self._params):
            grad = p.grad
            if grad is None:
                continue
            flat = grad.ravel()
            # a BLAS dot (sum of squares) is cheaper than sum() or isfinite(): NaN and inf
            # make it non-finite; only then (or when large finite values overflow it) is
            # the gradient looked at element by element
            with np.errstate(over="ignore", invalid="ignore"):
                squares = np.dot(flat, flat)
            if not np.isfinite(squares) and not np.isfinite(grad).all():
                return index
        return None

    def zero_grad(self) -> None:
        """Make every parameter's gradient zero (lazily: see ``Parameter.zero_grad``)."""
        for p in self._params:
            p.zero_grad()

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as ``{"hyper": JSON-able dict, "arrays": {name: ndarray}}``.

        Arrays are copies; see the module docstring for the format.
        """
        groups, start = [], 0
        for group in self.param_groups:
            entry = {k: _jsonable(v) for k, v in group.items() if k != "params"}
            entry["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(entry)
        arrays = {
            f"{i}.{name}": value.copy()
            for i, state in enumerate(self.state)
            for name, value in state.items()
            if isinstance(value, np.ndarray)
        }
        hyper = {
            "optimizer": type(self).__name__,
            "format": STATE_FORMAT,
            "param_groups": groups,
            "steps": [int(state["step"]) for state in self.state],
        }
        return {"hyper": hyper, "arrays": arrays}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and state from :meth:`state_dict`'s output.

        Everything is checked before anything changes; training then continues
        bit for bit as if it had never stopped.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        hyper, arrays = _split_state_dict(state_dict, owner)
        if hyper.get("optimizer") != type(self).__name__:
            raise InputError(
                f"{owner}: the state is from optimizer {hyper.get('optimizer')!r}, "
                f"this is {type(self).__name__!r}"
            )
        new_hypers = self._check_loaded_groups(hyper.get("param_groups"), owner)
        new_state = self._check_loaded_state(hyper.get("steps"), arrays, owner, new_hypers)
        for group, new in zip(self.param_groups, new_hypers):
            params = group["params"]
            group.clear()
            group["params"] = params
            group.update(new)
        self.state = new_state

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return (
            f"{type(self).__name__}({options}; {len(self._params)} parameters "
            f"in {len(self.param_groups)} group(s))"
        )

    # --- construction ------------------------------------------------------
    def _check_hyper(self, hyper: dict[str, Any], owner: str) -> dict[str, Any]:
        """Every option checked and normalised; unknown or missing keys are errors."""
        check_options(owner, [k for k in hyper if k not in EXTRA_GROUP_KEYS], self.options,
                      kind="option", error=InputTypeError)
        missing = [k for k in self.options if k not in hyper]
        if missing:
            raise InputError(f"{owner}: missing option(s) {', '.join(missing)}")
        checked = {k: check(k, hyper[k], owner=owner) for k, check in self.options.items()}
        checked.update(
            {k: check(k, hyper[k], owner=owner)
             for k, check in EXTRA_GROUP_KEYS.items() if k in hyper}
        )
        self._check_combination(checked, owner)
        return checked

    def _build_groups(self, params: Any, owner: str) -> list[dict[str, Any]]:
        if isinstance(params, Iterable) and not isinstance(
            params, (Parameter, Module, np.ndarray, str, bytes, dict)
        ):
            params = list(params)
            if params and isinstance(params[0], dict):
                return [self._build_group(g, i, owner) for i, g in enumerate(params)]
        return [{"params": as_parameter_list(params, "params", owner), **self.defaults}]

    def _build_group(self, group: Any, i: int, owner: str) -> dict[str, Any]:
        where = f"{owner} param_groups[{i}]"
        if not isinstance(group, dict) or "params" not in group:
            raise InputTypeError(
                f"{where} must be a dict with a 'params' entry (param groups are "
                f"[{{'params': [...], 'lr': ...}}, ...]), got {describe(group)}"
            )
        overrides = {k: v for k, v in group.items() if k != "params"}
        params = as_parameter_list(group["params"], f"param_groups[{i}]['params']", owner)
        return {"params": params, **self._check_hyper({**self.defaults, **overrides}, where)}

    def _scratch_for(self, index: int, p: Parameter) -> tuple[np.ndarray, np.ndarray]:
        """The parameter's two scratch arrays, after checking it still fits its state."""
        scratch = self._scratch[index]
        if scratch is None:
            scratch = self._scratch[index] = (np.empty_like(p.data), np.empty_like(p.data))
        data, grad = p.data, p.grad
        if grad.shape != data.shape or scratch[0].shape != data.shape or (
            scratch[0].dtype != data.dtype
        ):
            raise InputError(
                f"{type(self).__name__}.step: parameter {index} has data {describe(data)} "
                f"and grad {describe(grad)}; grad must have data's shape, and data must keep "
                f"the shape and dtype it had when the optimizer was built "
                f"({scratch[0].shape}, {scratch[0].dtype}); build a new optimizer after "
                "changing a model's dtype"
            )
        return scratch

    # --- loading -----------------------------------------------------------
    def _check_loaded_groups(self, groups: Any, owner: str) -> list[dict[str, Any]]:
        if not isinstance(groups, list) or len(groups) != len(self.param_groups):
            got = len(groups) if isinstance(groups, list) else describe(groups)
            raise InputError(
                f"{owner}: state has param_groups {got}, "
                f"this optimizer has {len(self.param_groups)} group(s)"
            )
        checked = []
        for i, (loaded, group) in enumerate(zip(groups, self.param_groups)):
            size = len(loaded.get("params", [])) if isinstance(loaded, dict) else None
            if size != len(group["params"]):
                raise InputError(
                    f"{owner}: param_groups[{i}] has {size} parameters in the state, "
                    f"{len(group['params'])} in this optimizer"
                )
            hyper = {k: v for k, v in loaded.items() if k != "params"}
            checked.append(self._check_hyper(hyper, f"{owner}: param_groups[{i}]"))
        return checked

    def _check_loaded_state(self, steps: Any, arrays: dict, owner: str,
                            hypers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        n = len(self._params)
        if not isinstance(steps, list) or len(steps) != n or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in steps
        ):
            raise InputError(
                f"{owner}: hyper['steps'] must be a list of {n} integers >= 0, "
                f"got {describe(steps)}"
            )
        state: list[dict[str, Any]] = [{"step": s} for s in steps]
        for key, value in arrays.items():
            index, _, name = str(key).partition(".")
            if not index.isdigit() or int(index) >= n or name not in self.state_names:
                raise InputError(
                    f"{owner}: unexpected array {key!r}; expected '<parameter number < {n}>."
                    f"<name>' with name in {self.state_names}"
                )
            data = self._params[int(index)].data
            if not isinstance(value, np.ndarray) or value.shape != data.shape:
                raise InputError(
                    f"{owner}: arrays[{key!r}] must be an array of shape {data.shape}, "
                    f"got {describe(value)}"
                )
            square = name in self.nonnegative_state
            bad = ~np.isfinite(value) if np.issubdtype(value.dtype, np.number) else None
            if bad is None or bad.any() or (square and (value < 0).any()):
                need = "finite and >= 0 (a running mean of squares)" if square else "finite"
                raise InputError(f"{owner}: arrays[{key!r}] must be {need}, got "
                                 f"{describe(value)} with {_first_bad(value, square)}")
            state[int(index)][name] = np.array(value, dtype=data.dtype, copy=True)
        index = 0
        for group, hyper in zip(self.param_groups, hypers):
            needed = self._state_needed(hyper)
            for _ in group["params"]:
                missing = [n for n in needed if n not in state[index]]
                if state[index]["step"] > 0 and missing:
                    raise InputError(
                        f"{owner}: parameter {index} has taken {state[index]['step']} steps but "
                        f"its state lacks {', '.join(repr(f'{index}.{n}') for n in missing)}; "
                        "a moment restarted at zero would change the run")
                index += 1
        return state


def _reject_duplicates(params: list[Parameter], owner: str) -> None:
    seen: dict[int, int] = {}
    for i, p in enumerate(params):
        if id(p) in seen:
            raise InputError(
                f"{owner}: params has the same Parameter at positions {seen[id(p)]} and {i}; "
                "each parameter must appear once"
            )
        seen[id(p)] = i


def _first_bad(value: np.ndarray, nonnegative: bool) -> str:
    """Where an array first holds a non-finite (or negative) value, for a message."""
    if not np.issubdtype(value.dtype, np.number):
        return "a non-numeric dtype"
    bad = ~np.isfinite(value) | ((value < 0) if nonnegative else False)
    index = np.unravel_index(int(np.argmax(bad)), value.shape) if value.ndim else ()
    return f"{float(value[index])} at index {tuple(int(i) for i in index)}"


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _split_state_dict(state_dict: Any, owner: str) -> tuple[dict, dict]:
    if not isinstance(state_dict, dict) or set(state_dict) != {"hyper", "arrays"}:
        raise InputError(
            f"{owner}: state_dict must be {{'hyper': dict, 'arrays': dict}} as returned by "
            f"state_dict(), got {describe(state_dict)}"
        )
    hyper, arrays = state_dict["hyper"], state_dict["arrays"]
    if not isinstance(hyper, dict) or not hasattr(arrays, "items"):
        raise InputError(f"{owner}: state_dict['hyper'] and ['arrays'] must be dicts")
    return hyper, dict(arrays.items())


def as_parameter_list(params: Any, name: str, owner: str) -> list[Parameter]:
    """``params`` (a Parameter or an iterable of them) as a non-empty list of Parameters."""
    if isinstance(params, Parameter):
        return [params]
    if isinstance(params, Module):
        raise InputTypeError(
            f"{owner}: {name} must be an iterable of Parameter, got the module "
            f"{type(params).__name__}; pass model.parameters()"
        )
    if isinstance(params, (np.ndarray, str, bytes, dict)) or not isinstance(params, Iterable):
        hint = ""
        if isinstance(params, dict):
            hint = "; put a param group in a list: [{'params': ...}]"
        raise InputTypeError(
            f"{owner}: {name} must be an iterable of gradproof.nn.Parameter, "
            f"got {describe(params)}{hint}"
        )
    result = list(params)
    if not result:
        raise InputError(
            f"{owner}: {name} is empty; give at least one Parameter "
            "(a generator that was already consumed is empty too)"
        )
    for i, p in enumerate(result):
        if not isinstance(p, Parameter):
            hint = "; wrap arrays as gradproof.nn.Parameter(x)" if isinstance(p, np.ndarray) else ""
            raise InputTypeError(
                f"{owner}: {name}[{i}] must be a gradproof.nn.Parameter, got {describe(p)}{hint}"
            )
        if not (isinstance(p.data, np.ndarray) and np.issubdtype(p.data.dtype, np.floating)):
            raise InputTypeError(
                f"{owner}: {name}[{i}].data must be a float array, got {describe(p.data)}"
            )
    return result

"""Inverted dropout, with the probability spelled out: ``p_drop`` or ``p_keep``.

CS231n's ``p`` is the probability of KEEPING a unit; torch's ``p`` is the
probability of DROPPING one. A bare ``p`` is therefore ambiguous, so
:func:`dropout` refuses it and asks for one of

* ``"p_drop"``: probability of zeroing each unit (torch's ``p``), in [0, 1);
* ``"p_keep"``: probability of keeping each unit (CS231n's ``p``), in (0, 1].

:func:`dropout_forward` is the CS231n-compatible alias: it reads ``"p"`` as the
KEEP probability, exactly as CS231n assignment 2 does.

In 'train' mode each unit is kept with probability ``p_keep`` and the kept ones
are scaled by ``1 / p_keep`` (inverted dropout), so 'test' mode is the
identity. Randomness, in order of precedence:

* ``"rng"``: an ``np.random.Generator`` (advances on every call);
* ``"seed"``: an int -- the same mask on every call, which is what a gradient
  check needs; the mask equals CS231n's ``np.random.seed(seed);
  np.random.rand(*x.shape) < p`` but NumPy's global state is left untouched;
* neither: NumPy's global legacy generator (``np.random.seed`` controls it), as
  in CS231n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._validate import cache_of, check_options, choice, float_array, int_at_least, upstream
from ...errors import InputError, InputTypeError, describe

__all__ = ["dropout", "dropout_backward", "dropout_forward"]

_AMBIGUOUS_P = (
    "dropout_param['p'] is ambiguous: CS231n's p is the probability of KEEPING a unit, "
    "torch's p the probability of DROPPING one. Give 'p_drop' (torch's meaning) or "
    "'p_keep' (CS231n's meaning), or call dropout_forward(), which reads 'p' as CS231n "
    "does (keep probability)"
)


DROPOUT_PARAM_KEYS = ("p_drop", "p_keep", "p", "mode", "seed", "rng")


@dataclass
class DropoutCache:
    """The scaled mask (``keep / p_keep``, x's shape and dtype), or None in 'test' mode;
    the shape and dtype of x (and of the output)."""

    mask: np.ndarray | None
    shape: tuple[int, ...]
    dtype: np.dtype


def _keep_probability(param: dict, p_means_keep: bool) -> float:
    given = [key for key in ("p", "p_keep", "p_drop") if key in param]
    if "p" in given and not p_means_keep:
        raise InputError(_AMBIGUOUS_P)
    if len(given) != 1:
        raise InputError(
            "dropout_param must give exactly one of 'p_drop' (probability of dropping a "
            f"unit) or 'p_keep' (probability of keeping it), got keys {sorted(param)}"
        )
    key = given[0]
    value = param[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise InputError(f"dropout_param[{key!r}] must be a number, got {value!r}")
    meaning = (
        "the probability of DROPPING a unit"
        if key == "p_drop"
        else ("the probability of KEEPING a unit")
    )
    p_keep = 1.0 - float(value) if key == "p_drop" else float(value)
    if not 0.0 < p_keep <= 1.0:
        allowed = "[0, 1)" if key == "p_drop" else "(0, 1]"
        raise InputError(
            f"dropout_param[{key!r}] is {meaning}, so it must be in {allowed}, got {value!r}"
        )
    return p_keep


def _uniform(param: dict, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform [0, 1) draws of ``shape`` from the generator the options name."""
    rng, seed = param.get("rng"), param.get("seed")
    if rng is not None and seed is not None:
        raise InputError("dropout_param takes 'rng' or 'seed', not both")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise InputTypeError(
                f"dropout_param['rng'] must be an np.random.Generator, got {describe(rng)}"
            )
        return rng.random(shape)
    if seed is not None:
        seed = int_at_least("dropout_param['seed']", seed, 0)
        return np.random.RandomState(seed).random_sample(shape)
    return np.random.random_sample(shape)


def _dropout(x: object, dropout_param: object, p_means_keep: bool):
    x = float_array("x", x)
    if not isinstance(dropout_param, dict):
        raise InputTypeError(
            f"dropout_param must be a dict (keys 'p_drop' or 'p_keep', 'mode', 'seed'), "
            f"got {describe(dropout_param)}"
        )
    check_options("dropout_param", dropout_param, DROPOUT_PARAM_KEYS)
    p_keep = _keep_probability(dropout_param, p_means_keep)
    mode = choice("dropout_param['mode']", dropout_param.get("mode"), ("train", "test"))
    if mode == "test":
        return x.copy(), DropoutCache(None, x.shape, x.dtype)
    keep = _uniform(dropout_param, x.shape) < p_keep
    mask = keep.astype(x.dtype) / x.dtype.type(p_keep)
    return x * mask, DropoutCache(mask, x.shape, x.dtype)


def dropout(x: np.ndarray, dropout_param: dict) -> tuple[np.ndarray, DropoutCache]:
    """Inverted dropout; the probability must be named ``p_drop`` or ``p_keep`` (see module doc).

    Args:
        x: any shape, float.
        dropout_param: dict with exactly one of 'p_drop' (probability of DROPPING
            a unit, torch's p) or 'p_keep' (probability of KEEPING it, CS231n's p);
            'mode' ('train' or 'test'); optionally 'seed' (int) or 'rng'
            (np.random.Generator). A bare 'p' raises InputError.

    Returns:
        out: x's shape and dtype; ``x * keep / p_keep`` in 'train' mode, a copy
        of x in 'test' mode. cache: a :class:`DropoutCache`.
    """
    return _dropout(x, dropout_param, p_means_keep=False)


def dropout_forward(x: np.ndarray, dropout_param: dict) -> tuple[np.ndarray, DropoutCache]:
    """CS231n's ``dropout_forward``: ``dropout_param['p']`` is the probability of KEEPING a unit.

    Keys as in CS231n: 'p' (KEEP probability), 'mode', optional 'seed'; 'p_keep'
    or 'p_drop' are also accepted instead of 'p'. Otherwise identical to
    :func:`dropout`; with the same seed it draws the same mask as CS231n.
    """
    return _dropout(x, dropout_param, p_means_keep=True)


def dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """Backward of :func:`dropout`: ``dx = dout * keep / p_keep`` ('train'), ``dout`` ('test').

    dout: x's shape; dx: x's shape and dtype.
    """
    cache = cache_of(cache, DropoutCache, "dropout_backward", "dropout")
    dout = upstream(dout, cache.shape, cache.dtype, "dropout")
    if cache.mask is None:
        return dout.copy()
    return (dout * cache.mask).astype(cache.mask.dtype, copy=False)

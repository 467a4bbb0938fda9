"""Normalisation layers: batch, spatial batch, layer and group normalisation.

All four are one idea -- normalise x over some axes, then scale and shift::

    xhat = (x - mean) / sqrt(var + eps)     # mean and (biased) var over the normalised axes
    out = gamma * xhat + beta

=================== ============== =========================== =====================
layer               x              statistics over             gamma, beta
=================== ============== =========================== =====================
batchnorm           (N, D)         N (one per feature)         (D,)
spatial_batchnorm   (N, C, H, W)   N, H, W (one per channel)   (C,)
layernorm           (..., D)       D (one per example)         (D,)
groupnorm           (N, C, H, W)   C/G, H, W (per example      (1, C, 1, 1) or (C,)
                                   and group of channels)
=================== ============== =========================== =====================

so there is one forward core, :func:`_normalize`, and one closed-form backward,
:func:`_normalized_grad`, with means over the normalised axes::

    dxhat = dout * gamma
    dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps)

:func:`batchnorm_backward` instead walks the computational graph node by node,
for learning; :func:`batchnorm_backward_alt` is the closed form (faster; see
``benchmarks/batchnorm_backward.py``). Both give the same gradients.

Batch-norm options (``bn_param``, as in CS231n): ``mode`` ('train' or 'test',
required), ``eps`` (1e-5), ``momentum`` (0.9), ``running_mean``/``running_var``
(created as zeros/ones of shape (C,) and *replaced* by new arrays on each
train-mode call)::

    running = momentum * running + (1 - momentum) * batch_statistic

This ``momentum`` is the weight of the *old* value: CS231n's 0.9 is torch's
``momentum=0.1`` (torch weighs the new value). The batch variance used for the
running average is the biased one (divide by the count M), like CS231n; torch
uses the unbiased one (divide by M - 1) -- set ``bn_param["unbiased_running_var"]
= True`` to match torch exactly. Both normalise a training batch with the biased
variance. In 'test' mode the running statistics normalise x and the backward is
that of a fixed affine map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import InputError, InputTypeError, describe
from .dense import cache_of, check_shape, float_array, upstream

__all__ = [
    "batchnorm",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "spatial_batchnorm",
    "spatial_batchnorm_backward",
    "layernorm",
    "layernorm_backward",
    "groupnorm",
    "groupnorm_backward",
    "spatial_groupnorm",
    # CS231n names
    "batchnorm_forward",
    "spatial_batchnorm_forward",
    "layernorm_forward",
    "spatial_groupnorm_forward",
    "spatial_groupnorm_backward",
]


@dataclass
class NormCache:
    """What a normalisation's backward needs.

    ``xhat`` has x's shape; ``view`` is the shape in which the statistics were
    taken over ``axes`` (x's shape, or (N, G, -1) for group norm); ``axes`` is
    None when the statistics were fixed (batch norm in 'test' mode).
    """

    layer: str
    xhat: np.ndarray
    inv_std: np.ndarray  # 1 / sqrt(var + eps), broadcastable against the view
    gamma: np.ndarray  # gamma reshaped to broadcast against out
    axes: tuple[int, ...] | None
    view: tuple[int, ...]
    param_axes: tuple[int, ...]  # axes of out summed for dgamma, dbeta
    param_shape: tuple[int, ...]  # gamma's own shape
    dtypes: tuple[np.dtype, np.dtype, np.dtype]  # of x, gamma, beta
    xc: np.ndarray | None = None  # x - mean, for the staged batch-norm backward


# --- the shared core ------------------------------------------------------------
def _normalize(x: np.ndarray, axes: tuple[int, ...], eps: float):
    """``(xhat, xc, var, inv_std)`` with mean and biased var over ``axes`` (kept as size-1 dims)."""
    xc = x - x.mean(axis=axes, keepdims=True)
    var = (xc * xc).mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    return xc * inv_std, xc, var, inv_std


def _normalized_grad(dxhat, xhat, inv_std, axes):
    """Closed-form gradient through ``xhat = (x - mean) * inv_std`` (means over ``axes``)."""
    if axes is None:  # fixed statistics: a plain affine map
        return dxhat * inv_std
    mean_dxhat = dxhat.mean(axis=axes, keepdims=True)
    mean_dxhat_xhat = (dxhat * xhat).mean(axis=axes, keepdims=True)
    return inv_std * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)


def _scale_shift(cache_fields: dict, xhat, gamma_b, beta_b, x, gamma, beta):
    out = (gamma_b * xhat + beta_b).astype(np.result_type(x, gamma, beta), copy=False)
    return out, NormCache(
        xhat=xhat, gamma=gamma_b, param_shape=gamma.shape,
        dtypes=(x.dtype, gamma.dtype, beta.dtype), **cache_fields,
    )  # fmt: skip


def _param_grads(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray]:
    dgamma = (dout * cache.xhat).sum(axis=cache.param_axes).reshape(cache.param_shape)
    dbeta = dout.sum(axis=cache.param_axes).reshape(cache.param_shape)
    return dgamma.astype(cache.dtypes[1], copy=False), dbeta.astype(cache.dtypes[2], copy=False)


def _backward(dout, cache, layers: tuple[str, ...], name: str):
    """Closed-form ``(dx, dgamma, dbeta)`` for any cache whose layer is in ``layers``."""
    cache = _check_cache(cache, layers, name)
    dout = upstream(dout, cache.xhat.shape, cache.layer)
    dxhat = (dout * cache.gamma).reshape(cache.view)
    xhat = cache.xhat.reshape(cache.view)
    dx = _normalized_grad(dxhat, xhat, cache.inv_std, cache.axes).reshape(cache.xhat.shape)
    return (dx.astype(cache.dtypes[0], copy=False), *_param_grads(dout, cache))


def _check_cache(cache: object, layers: tuple[str, ...], name: str) -> NormCache:
    cache = cache_of(cache, NormCache, name, layers[0])
    if cache.layer not in layers:
        raise InputError(
            f"{name}() takes the cache of {' or '.join(layers)}(), got one from "
            f"{cache.layer}(); use {cache.layer}_backward()"
        )
    return cache


# --- options ----------------------------------------------------------------------
def _options(param: object, name: str) -> dict:
    if param is None:
        return {}
    if not isinstance(param, dict):
        raise InputTypeError(f"{name} must be a dict of options, got {describe(param)}")
    return param


def _number(param: dict, name: str, key: str, default: float, low: float, high: float) -> float:
    value = param.get(key, default)
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not (low <= value <= high):
        raise InputError(f"{name}[{key!r}] must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _eps(param: object, name: str) -> float:
    return _number(_options(param, name), name, "eps", 1e-5, 0.0, math.inf)


def _running(bn_param: dict, key: str, C: int, dtype: np.dtype, fill: float) -> np.ndarray:
    value = bn_param.get(key)
    if value is None:
        return np.full(C, fill, dtype=dtype)
    value = float_array(f"bn_param[{key!r}]", value)
    check_shape(f"bn_param[{key!r}]", value, (C,), "(C,), one per channel")
    return value


def _channel_params(x, gamma, beta, C: int, meaning: str):
    gamma, beta = float_array("gamma", gamma), float_array("beta", beta)
    check_shape("gamma", gamma, (C,), meaning)
    check_shape("beta", beta, (C,), meaning)
    return gamma, beta


# --- batch norm ---------------------------------------------------------------------
def _batch_stats_forward(layer, x, gamma, beta, bn_param, axes):
    """Batch norm over ``axes`` with channels on axis 1; updates the running statistics."""
    param = _options(bn_param, "bn_param")
    mode = param.get("mode")
    if mode not in ("train", "test"):
        raise InputError(f"bn_param['mode'] must be 'train' or 'test', got {mode!r}")
    eps = _number(param, "bn_param", "eps", 1e-5, 0.0, math.inf)
    momentum = _number(param, "bn_param", "momentum", 0.9, 0.0, 1.0)
    C = x.shape[1]
    shape = (1, C) + (1,) * (x.ndim - 2)  # broadcasts a per-channel (C,) array against x
    running_mean = _running(param, "running_mean", C, x.dtype, 0.0)
    running_var = _running(param, "running_var", C, x.dtype, 1.0)
    if mode == "train":
        xhat, xc, var, inv_std = _normalize(x, axes, eps)
        count = x.size // C
        batch_var = var.reshape(C)
        if param.get("unbiased_running_var", False):
            if count < 2:
                raise InputError("unbiased_running_var needs at least 2 values per channel")
            batch_var = batch_var * (count / (count - 1))
        mean = (x - xc).reshape(x.shape)[(0,) * x.ndim] if False else x.mean(axis=axes)
        param["running_mean"] = (momentum * running_mean + (1 - momentum) * mean).astype(
            running_mean.dtype, copy=False
        )
        param["running_var"] = (momentum * running_var + (1 - momentum) * batch_var).astype(
            running_var.dtype, copy=False
        )
        param.setdefault("mode", mode)
    else:
        xc = x - running_mean.reshape(shape)
        inv_std = 1 / np.sqrt(running_var.reshape(shape) + eps)
        xhat = xc * inv_std
        axes, xc = None, None
        param.setdefault("running_mean", running_mean)
        param.setdefault("running_var", running_var)
    fields = dict(layer=layer, inv_std=inv_std, axes=axes, view=x.shape, xc=xc,
                  param_axes=(0,) + tuple(range(2, x.ndim)))  # fmt: skip
    return _scale_shift(fields, xhat, gamma.reshape(shape), beta.reshape(shape), x, gamma, beta)

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

(for batch norm, whose gamma is constant over the normalised axes, it is
CS231n's ``dx = gamma / (M std) * (M dout - dbeta - xhat * dgamma)``).

:func:`batchnorm_backward` instead walks the computational graph node by node,
for learning; :func:`batchnorm_backward_alt` is the closed form (faster; see
``benchmarks/batchnorm_backward.py``). Both give the same gradients.

Batch-norm options (``bn_param``, as in CS231n): ``mode`` ('train' or 'test',
required), ``eps`` (1e-5), ``momentum`` (0.9), ``running_mean``/``running_var``
(shape (C,), *replaced* by new arrays on each train-mode call; when absent both
start at zeros, as in CS231n -- torch starts ``running_var`` at ones, so pass
``bn_param["running_var"] = np.ones(C)`` to follow torch from the first step)::

    running = momentum * running + (1 - momentum) * batch_statistic

This ``momentum`` is the weight of the *old* value: CS231n's 0.9 is torch's
``momentum=0.1`` (torch weighs the new value). The batch variance used for the
running average is the biased one (divide by the count M), like CS231n; torch
uses the unbiased one (divide by M - 1) -- set ``bn_param["unbiased_running_var"]
= True`` to match torch exactly. Both normalise a training batch with the biased
variance. In 'test' mode the running statistics normalise x and the backward is
that of a fixed affine map.

Under ``bn_param`` is one core, :func:`batchnorm_core`, which takes the running
statistics and the weight of the new value (torch's ``momentum``) as plain
arguments and returns the updated statistics: ``BatchNorm1d`` keeps its own and
calls it directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..._validate import (
    boolean,
    cache_of,
    check_options,
    check_shape,
    choice,
    float_array,
    fraction,
    non_negative,
    upstream,
)
from ...errors import InputError, InputTypeError, describe

__all__ = [
    "batchnorm",
    "batchnorm_core",
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


@dataclass(frozen=True)
class NormCache:
    """What a normalisation's backward reads: ``out = gamma * xhat + beta`` with
    ``xhat = (x - mean) * inv_std``.

    The parameter gradients sum over the axes where ``gamma`` (kept in the shape
    that broadcasts against x) has size 1; ``dx`` goes through the normalisation
    in ``view``, the shape the statistics were taken in.
    """

    layer: str  # the forward that made it: each backward takes its own layers' caches
    xhat: np.ndarray  # x's shape
    inv_std: np.ndarray  # 1 / sqrt(var + eps), size 1 on the normalised axes of view
    axes: tuple[int, ...] | None  # the normalised axes of view; None: fixed statistics
    view: tuple[int, ...]  # x's shape, or (N, G, -1) for group norm
    gamma: np.ndarray  # gamma reshaped to broadcast against x (same number of axes)
    param_shape: tuple[int, ...]  # gamma's and beta's own shape, the gradients'
    dtypes: tuple[np.dtype, np.dtype, np.dtype]  # of x, gamma, beta: the gradients'
    xc: np.ndarray | None = None  # x - mean, for the staged batch-norm backward (train mode)


# --- the shared core ------------------------------------------------------------
def _normalize(x: np.ndarray, axes: tuple[int, ...], eps: float):
    """``(xhat, xc, mean, var, inv_std)``; mean and biased var over ``axes`` (kept, size 1)."""
    mean = x.mean(axis=axes, keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    return xc * inv_std, xc, mean, var, inv_std


def _scale_shift(xhat, gamma_b, beta_b, x, gamma, beta) -> np.ndarray:
    """``gamma * xhat + beta`` in the dtype NumPy gives ``x``, ``gamma``, ``beta`` together."""
    return (gamma_b * xhat + beta_b).astype(np.result_type(x, gamma, beta), copy=False)


def _param_sums(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray]:
    """``sum(dout * xhat)`` and ``sum(dout)`` over the axes gamma is broadcast along (kept,
    size 1): ``dgamma`` and ``dbeta`` of ``out = gamma * xhat + beta``, in gamma's view."""
    axes = tuple(i for i, n in enumerate(cache.gamma.shape) if n == 1)
    return (dout * cache.xhat).sum(axis=axes, keepdims=True), dout.sum(axis=axes, keepdims=True)


def _param_grads(sums: tuple[np.ndarray, np.ndarray], cache: NormCache):
    """``(dgamma, dbeta)`` from :func:`_param_sums`, in gamma's and beta's shapes and dtypes."""
    dgamma, dbeta = (total.reshape(cache.param_shape) for total in sums)
    return dgamma.astype(cache.dtypes[1], copy=False), dbeta.astype(cache.dtypes[2], copy=False)


def _normalized_grad(dxhat, xhat, inv_std, axes):
    """Closed-form gradient through ``xhat = (x - mean) * inv_std`` (means over ``axes``)."""
    if axes is None:  # fixed statistics: a plain affine map
        return dxhat * inv_std
    mean_dxhat = dxhat.mean(axis=axes, keepdims=True)
    mean_dxhat_xhat = (dxhat * xhat).mean(axis=axes, keepdims=True)
    return inv_std * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)


def _backward(dout, cache, layers: tuple[str, ...], name: str):
    """Closed-form ``(dx, dgamma, dbeta)`` of layer and group norm (the general form)."""
    cache = _check_cache(cache, layers, name)
    dout = upstream(dout, cache.xhat.shape, np.result_type(*cache.dtypes), cache.layer)
    dxhat = (dout * cache.gamma).reshape(cache.view)
    xhat = cache.xhat.reshape(cache.view)
    dx = _normalized_grad(dxhat, xhat, cache.inv_std, cache.axes).reshape(dout.shape)
    return (dx.astype(cache.dtypes[0], copy=False), *_param_grads(_param_sums(dout, cache), cache))


def _check_cache(cache: object, layers: tuple[str, ...], name: str) -> NormCache:
    cache = cache_of(cache, NormCache, name, layers[0])
    if cache.layer not in layers:
        raise InputError(
            f"{name}() takes the cache of {' or '.join(layers)}(), got one from "
            f"{cache.layer}(); use {cache.layer}_backward()"
        )
    return cache


# --- options ----------------------------------------------------------------------
BN_PARAM_KEYS = ("mode", "eps", "momentum", "running_mean", "running_var",
                 "unbiased_running_var")
# layer and group norm read 'eps'; 'mode' is accepted and ignored (CS231n's nets set it on
# every normalisation's options, and train and test are the same for these layers)
LN_PARAM_KEYS = ("eps", "mode")


def _options(param: object, name: str, allowed) -> dict:
    if param is None:
        return {}
    if not isinstance(param, dict):
        raise InputTypeError(f"{name} must be a dict of options, got {describe(param)}")
    check_options(name, param, allowed)
    return param


def _eps(param: object, name: str) -> float:
    return non_negative(f"{name}['eps']", _options(param, name, LN_PARAM_KEYS).get("eps", 1e-5))


def _running(bn_param: dict, key: str, C: int, dtype: np.dtype) -> np.ndarray:
    """A running statistic of shape (C,); zeros when absent (CS231n; torch starts var at 1)."""
    value = bn_param.get(key)
    if value is None:
        return np.zeros(C, dtype=dtype)
    value = float_array(f"bn_param[{key!r}]", value)
    check_shape(f"bn_param[{key!r}]", value, (C,), "(C,), one per channel")
    bad = ~np.isfinite(value) | ((value < 0) if key == "running_var" else False)
    if bad.any():
        index = int(np.argmax(bad))
        need = "finite and non-negative (a variance)" if key == "running_var" else "finite"
        raise InputError(f"bn_param[{key!r}] must be {need}, got {float(value[index])} at index "
                         f"{index}")
    return value


def _channel_params(gamma, beta, C: int, meaning: str):
    """gamma and beta: float arrays of shape (C,)."""
    gamma, beta = float_array("gamma", gamma), float_array("beta", beta)
    check_shape("gamma", gamma, (C,), meaning)
    check_shape("beta", beta, (C,), meaning)
    return gamma, beta


# --- batch norm ---------------------------------------------------------------------
def batchnorm_core(x, gamma, beta, running_mean, running_var, *, train: bool, eps: float,
                   new_weight: float, unbiased: bool = False, axes=(0,), layer="batchnorm"):
    """Batch norm with its running statistics passed in and handed back, nothing hidden.

    x (N, C) or (N, C, H, W), channels on axis 1; gamma, beta, running_mean,
    running_var (C,), checked by the caller (:func:`batchnorm`, ``BatchNorm1d``).
    ``train`` normalises with the batch's statistics over ``axes`` and moves the
    running ones towards them, ``running = (1 - new_weight) * running + new_weight
    * batch`` (torch's ``momentum`` is ``new_weight``; the variance unbiased when
    ``unbiased``, as torch keeps it); otherwise the running statistics normalise.
    Returns ``(out, cache, running_mean, running_var)``: new running arrays in
    train mode, the given ones otherwise.
    """
    C = x.shape[1]
    shape = (1, C) + (1,) * (x.ndim - 2)  # broadcasts a per-channel (C,) array against x
    xc = None
    if train:
        if x.size == 0:
            raise InputError(
                f"x has shape {x.shape}: an empty batch has no batch statistics (train mode "
                "would make the running mean and variance NaN); skip empty batches")
        xhat, xc, mean, var, inv_std = _normalize(x, axes, eps)
        count = x.size // C
        batch_var = var.reshape(C)
        if unbiased:
            if count < 2:
                raise InputError("unbiased_running_var needs at least 2 values per channel")
            batch_var = batch_var * (count / (count - 1))
        keep = 1 - new_weight
        running_mean = (keep * running_mean + new_weight * mean.reshape(C)).astype(
            running_mean.dtype, copy=False)
        running_var = (keep * running_var + new_weight * batch_var).astype(
            running_var.dtype, copy=False)
    else:  # fixed statistics: a per-channel affine map
        inv_std = 1 / np.sqrt(running_var.reshape(shape) + eps)
        xhat, axes = (x - running_mean.reshape(shape)) * inv_std, None
    gamma_b = gamma.reshape(shape)
    out = _scale_shift(xhat, gamma_b, beta.reshape(shape), x, gamma, beta)
    cache = NormCache(layer=layer, xhat=xhat, inv_std=inv_std, axes=axes, view=x.shape,
                      gamma=gamma_b, param_shape=gamma.shape,
                      dtypes=(x.dtype, gamma.dtype, beta.dtype), xc=xc)
    return out, cache, running_mean, running_var


def _batchnorm_param(layer, x, gamma, beta, bn_param, axes):
    """CS231n's face of :func:`batchnorm_core`: options from ``bn_param``, whose
    ``momentum`` weighs the *old* value; the new running statistics go back into it."""
    param = _options(bn_param, "bn_param", BN_PARAM_KEYS)
    mode = choice("bn_param['mode']", param.get("mode"), ("train", "test"))
    eps = non_negative("bn_param['eps']", param.get("eps", 1e-5))
    momentum = fraction("bn_param['momentum']", param.get("momentum", 0.9))
    unbiased = boolean("bn_param['unbiased_running_var']",
                       param.get("unbiased_running_var", False))
    C = x.shape[1]
    out, cache, param["running_mean"], param["running_var"] = batchnorm_core(
        x, gamma, beta, _running(param, "running_mean", C, x.dtype),
        _running(param, "running_var", C, x.dtype), train=mode == "train", eps=eps,
        new_weight=1 - momentum, unbiased=unbiased, axes=axes, layer=layer)
    return out, cache


def batchnorm(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict
) -> tuple[np.ndarray, NormCache]:
    """Batch normalisation of x (N, D) over the batch, one mean/var per feature (CS231n).

    Args:
        x: shape (N, D), float.
        gamma, beta: scale and shift, shape (D,).
        bn_param: dict with 'mode' ('train' or 'test'), optional 'eps' (1e-5),
            'momentum' (0.9, the weight of the old running value), 'running_mean',
            'running_var' (shape (D,); zeros when absent, as CS231n; replaced by
            updated arrays in 'train' mode) and 'unbiased_running_var' (False;
            True matches torch).

    Returns:
        out: shape (N, D). cache: a :class:`NormCache`.
    """
    x = float_array("x", x)
    if x.ndim != 2:
        raise InputError(
            f"x must have shape (N, D) (2 dimensions), got {x.shape}; "
            "use spatial_batchnorm for (N, C, H, W)"
        )
    gamma, beta = _channel_params(gamma, beta, x.shape[1], "(D,) with D = x.shape[1]")
    return _batchnorm_param("batchnorm", x, gamma, beta, bn_param, (0,))


def batchnorm_backward_alt(dout: np.ndarray, cache: NormCache):
    """Backward of :func:`batchnorm`, closed form (fast), as the CS231n notes write it.

    Takes the cache of :func:`batchnorm` or :func:`spatial_batchnorm`; dout has
    out's shape. Returns ``(dx, dgamma, dbeta)`` in the shapes and dtypes of x,
    gamma, beta. M is the number of values behind each mean (N, or N*H*W).
    """
    cache = _check_cache(cache, ("batchnorm", "spatial_batchnorm"), "batchnorm_backward_alt")
    dout = upstream(dout, cache.xhat.shape, np.result_type(*cache.dtypes), cache.layer)
    xhat, gamma, inv_std = cache.xhat, cache.gamma, cache.inv_std
    dgamma, dbeta = _param_sums(dout, cache)  # out = gamma * xhat + beta
    if cache.axes is None:  # 'test' mode: fixed statistics, a plain affine map
        dx = dout * gamma * inv_std
    else:  # dx = gamma / (M std) * (M dout - dbeta - xhat * dgamma)
        M = xhat.size // dbeta.size
        dx = gamma * inv_std / M * (M * dout - dbeta - xhat * dgamma)
    return (dx.astype(cache.dtypes[0], copy=False), *_param_grads((dgamma, dbeta), cache))


def batchnorm_backward(dout: np.ndarray, cache: NormCache):
    """Backward of :func:`batchnorm`, staged: walks the graph node by node (for learning).

    Takes the cache of :func:`batchnorm` or :func:`spatial_batchnorm`.
    dout: out's shape. Returns ``(dx, dgamma, dbeta)`` with the shapes and
    dtypes of x, gamma, beta. Same values as :func:`batchnorm_backward_alt`.
    """
    cache = _check_cache(cache, ("batchnorm", "spatial_batchnorm"), "batchnorm_backward")
    dout = upstream(dout, cache.xhat.shape, np.result_type(*cache.dtypes), cache.layer)
    dgamma, dbeta = _param_grads(_param_sums(dout, cache), cache)  # out = gamma * xhat + beta
    dxhat = dout * cache.gamma
    inv, xc, axes = cache.inv_std, cache.xc, cache.axes
    if axes is None:  # 'test' mode: xhat = (x - running_mean) * inv, inv fixed
        return (dxhat * inv).astype(cache.dtypes[0], copy=False), dgamma, dbeta
    count = cache.xhat.size // inv.size  # M, the number of values in each mean
    # Forward graph:  mu = mean(x);  xc = x - mu;  sq = xc**2;  var = mean(sq);
    #                 std = sqrt(var + eps);  inv = 1 / std;  xhat = xc * inv
    dinv = (dxhat * xc).sum(axis=axes, keepdims=True)  # xhat = xc * inv, branch inv
    dxc = dxhat * inv  # xhat = xc * inv, branch xc
    dstd = -dinv * inv * inv  # inv = 1 / std
    dvar = 0.5 * dstd * inv  # std = sqrt(var + eps)
    dsq = dvar / count  # var = mean(sq), spread evenly over the M values
    dxc = dxc + 2 * xc * dsq  # sq = xc**2, second branch into xc
    dmu = -dxc.sum(axis=axes, keepdims=True)  # xc = x - mu
    dx = dxc + dmu / count  # mu = mean(x), plus the direct branch x -> xc
    return dx.astype(cache.dtypes[0], copy=False), dgamma, dbeta


def spatial_batchnorm(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict
) -> tuple[np.ndarray, NormCache]:
    """Spatial batch normalisation of x (N, C, H, W): one mean/var per channel over N, H, W.

    gamma, beta: shape (C,). ``bn_param`` as in :func:`batchnorm`, with running
    statistics of shape (C,). Returns ``(out, cache)``, out of x's shape.
    """
    x = float_array("x", x)
    if x.ndim != 4:
        raise InputError(f"x must have shape (N, C, H, W) (4 dimensions), got {x.shape}")
    gamma, beta = _channel_params(gamma, beta, x.shape[1], "(C,) with C = x.shape[1]")
    return _batchnorm_param("spatial_batchnorm", x, gamma, beta, bn_param, (0, 2, 3))


def spatial_batchnorm_backward(dout: np.ndarray, cache: NormCache):
    """Backward of :func:`spatial_batchnorm` (closed form): ``(dx, dgamma, dbeta)``.

    dout, dx: (N, C, H, W); dgamma, dbeta: (C,). Batch norm's closed form with M = N*H*W.
    """
    _check_cache(cache, ("spatial_batchnorm",), "spatial_batchnorm_backward")
    return batchnorm_backward_alt(dout, cache)


# --- layer norm -----------------------------------------------------------------------
def layernorm(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, ln_param: dict | None = None
) -> tuple[np.ndarray, NormCache]:
    """Layer normalisation: each example (last axis) normalised on its own (CS231n, torch).

    Args:
        x: shape (N, D), or (..., D) -- statistics over the last axis only.
        gamma, beta: shape (D,).
        ln_param: optional dict; 'eps' (1e-5) is read, anything else (CS231n
            passes 'mode') is ignored: train and test are the same.

    Returns:
        out: x's shape. cache: a :class:`NormCache`.
    """
    eps = _eps(ln_param, "ln_param")
    x = float_array("x", x)
    if x.ndim < 1 or x.shape[-1] == 0:
        raise InputError(f"x must have shape (..., D) with D >= 1, got {x.shape}")
    gamma, beta = _channel_params(gamma, beta, x.shape[-1], "(D,) with D = x.shape[-1]")
    xhat, _, _, _, inv_std = _normalize(x, (-1,), eps)
    gamma_b = gamma.reshape((1,) * (x.ndim - 1) + gamma.shape)
    return _scale_shift(xhat, gamma_b, beta, x, gamma, beta), NormCache(
        layer="layernorm", xhat=xhat, inv_std=inv_std, axes=(-1,), view=x.shape, gamma=gamma_b,
        param_shape=gamma.shape, dtypes=(x.dtype, gamma.dtype, beta.dtype))


def layernorm_backward(dout: np.ndarray, cache: NormCache):
    """Backward of :func:`layernorm`: ``(dx, dgamma, dbeta)`` with x's, gamma's, beta's shapes."""
    return _backward(dout, cache, ("layernorm",), "layernorm_backward")


# --- group norm -----------------------------------------------------------------------
def groupnorm(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int, gn_param: dict | None = None
) -> tuple[np.ndarray, NormCache]:
    """Group normalisation (Wu & He 2018): channels split into G groups, each example's
    group normalised over its C/G channels and all positions.

    Args:
        x: shape (N, C, H, W) (any number of trailing spatial axes works).
        gamma, beta: shape (1, C, 1, 1) as in CS231n, or (C,) as in torch; the
            gradients come back in the shape given.
        G: number of groups, dividing C.
        gn_param: optional dict; 'eps' (1e-5) is read, anything else ignored.

    Returns:
        out: x's shape. cache: a :class:`NormCache`.
    """
    eps = _eps(gn_param, "gn_param")
    x = float_array("x", x)
    if x.ndim < 2:
        raise InputError(f"x must have shape (N, C, H, W), got {x.shape}")
    N, C = x.shape[:2]
    if isinstance(G, bool) or not isinstance(G, (int, np.integer)) or G < 1 or C % G:
        raise InputError(f"G must be a positive integer dividing C = {C}, got {G!r}")
    gamma, beta = float_array("gamma", gamma), float_array("beta", beta)
    shape = (1, C) + (1,) * (x.ndim - 2)
    for name, value in (("gamma", gamma), ("beta", beta)):
        # one value per channel: (C,) as torch, or (1, C, 1, ...) as CS231n with any
        # number of trailing ones (a (1, C, 1, 1) gamma serves a 5-D x just as well)
        if not (value.shape == (C,) or (value.ndim >= 2 and value.shape[:2] == (1, C)
                                         and all(s == 1 for s in value.shape[2:]))):
            raise InputError(
                f"{name} must hold one value per channel of x (shape {x.shape}, C = {C}): "
                f"shape ({C},) or {shape}, got {value.shape}")
    view = (N, int(G), C // int(G) * math.prod(x.shape[2:]))  # explicit: N = 0 works too
    xhat, _, _, _, inv_std = _normalize(x.reshape(view), (2,), eps)
    xhat, gamma_b = xhat.reshape(x.shape), gamma.reshape(shape)
    return _scale_shift(xhat, gamma_b, beta.reshape(shape), x, gamma, beta), NormCache(
        layer="groupnorm", xhat=xhat, inv_std=inv_std, axes=(2,), view=view, gamma=gamma_b,
        param_shape=gamma.shape, dtypes=(x.dtype, gamma.dtype, beta.dtype))


def groupnorm_backward(dout: np.ndarray, cache: NormCache):
    """Backward of :func:`groupnorm`: ``(dx, dgamma, dbeta)``, dgamma/dbeta in gamma's shape."""
    return _backward(dout, cache, ("groupnorm",), "groupnorm_backward")


# CS231n names: the same functions.
batchnorm_forward = batchnorm
spatial_batchnorm_forward = spatial_batchnorm
layernorm_forward = layernorm
spatial_groupnorm = spatial_groupnorm_forward = groupnorm
spatial_groupnorm_backward = groupnorm_backward

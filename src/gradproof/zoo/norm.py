"""Zoo family "norm": batch normalisation (training mode) and layer normalisation.

Shapes: x (N, D), gamma (D,), beta (D,) -> out (N, D). Batch norm normalises each
feature over the batch (axis 0), layer norm each sample over its features (axis 1).
"""

from __future__ import annotations

import numpy as np

from .case import add, normal

EPS = 1e-5


def _normalize(x, axis):
    mu = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True)
    std = np.sqrt(var + EPS)
    return (x - mu) / std, std


def _dx_normalized(dxhat, xhat, std, axis):
    """Gradient through xhat = (x - mean) / std, reductions along ``axis``."""
    return (dxhat - dxhat.mean(axis=axis, keepdims=True)
            - xhat * (dxhat * xhat).mean(axis=axis, keepdims=True)) / std


# --- batch norm ----------------------------------------------------------------


def batchnorm_forward(x, gamma, beta):
    """Training-mode batch norm: statistics over the batch (axis 0)."""
    xhat, std = _normalize(x, axis=0)
    return gamma * xhat + beta, (xhat, gamma, std)


def batchnorm_backward(dout, cache):
    xhat, gamma, std = cache
    dx = _dx_normalized(dout * gamma, xhat, std, axis=0)
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def batchnorm_backward_no_mean_term(dout, cache):
    xhat, gamma, std = cache
    dxhat = dout * gamma
    dx = (dxhat - xhat * (dxhat * xhat).mean(axis=0)) / std  # - mean(dxhat) is missing
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def batchnorm_backward_no_variance_term(dout, cache):
    xhat, gamma, std = cache
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0)) / std  # treats the variance as a constant
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def batchnorm_backward_dgamma_not_summed(dout, cache):
    xhat, gamma, std = cache
    dx = _dx_normalized(dout * gamma, xhat, std, axis=0)
    return dx, dout * xhat, dout.sum(axis=0)  # dgamma (N, D) for gamma (D,)


def batchnorm_backward_unbiased_variance(dout, cache):
    # Staged backward derived for the unbiased variance (divides by N - 1),
    # while the forward uses np.var (divides by N).
    xhat, gamma, std = cache
    n = xhat.shape[0]
    dxhat = dout * gamma
    centered = xhat * std
    dvar = (dxhat * centered).sum(axis=0) * -0.5 * std**-3
    dmean = -dxhat.sum(axis=0) / std
    dx = dxhat / std + dvar * 2 * centered / (n - 1) + dmean / n
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


# --- layer norm ------------------------------------------------------------------


def layernorm_forward(x, gamma, beta):
    """Layer norm: statistics over the features (axis 1) of each sample."""
    xhat, std = _normalize(x, axis=1)
    return gamma * xhat + beta, (x, xhat, gamma, std)


def layernorm_backward(dout, cache):
    _, xhat, gamma, std = cache
    dx = _dx_normalized(dout * gamma, xhat, std, axis=1)
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def layernorm_backward_batch_axis(dout, cache):
    _, xhat, gamma, std = cache
    dx = _dx_normalized(dout * gamma, xhat, std, axis=0)  # copied from batch norm
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def layernorm_backward_recompute_no_eps(dout, cache):
    x, _, gamma, _ = cache
    centered = x - x.mean(axis=1, keepdims=True)
    std = np.sqrt((centered**2).mean(axis=1, keepdims=True))  # eps forgotten: 0 for a flat row
    xhat = centered / std  # 0 / 0 = nan on a constant row
    dx = _dx_normalized(dout * gamma, xhat, std, axis=1)
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def norm_inputs(n, d, dtype=np.float64):
    def make(rng):
        x = normal(rng, n, d, scale=2.0, dtype=dtype) + dtype(0.5)
        gamma = (1 + 0.5 * normal(rng, d)).astype(dtype)
        return x, gamma, normal(rng, d, dtype=dtype)
    return make


def _inputs_with_flat_row(rng):
    x, gamma, beta = norm_inputs(4, 6)(rng)
    x[2] = 0.75  # a constant sample whose mean is exact: variance exactly 0
    return x, gamma, beta


# --- registration ----------------------------------------------------------------

F = "norm"
BN, BNB = batchnorm_forward, batchnorm_backward
LN, LNB = layernorm_forward, layernorm_backward
add("correct", F, "batchnorm", "batch norm, training mode", BN, BNB, norm_inputs(8, 5))
add("bug", F, "batchnorm_no_mean_term", "batch norm dx misses the - mean(dxhat) term",
    BN, batchnorm_backward_no_mean_term, norm_inputs(8, 5), expect="missing term in dx (input 0)",
    ref_backward=BNB)
add("bug", F, "batchnorm_no_variance_term",
    "batch norm dx ignores that the variance depends on x", BN,
    batchnorm_backward_no_variance_term, norm_inputs(8, 5), expect="missing term in dx (input 0)",
    ref_backward=BNB)
add("bug", F, "batchnorm_dgamma_not_summed", "dgamma is dout * xhat, not summed over the batch",
    BN, batchnorm_backward_dgamma_not_summed, norm_inputs(8, 5), expect="shape (input 1)",
    ref_backward=BNB)
add("bug", F, "batchnorm_unbiased_variance",
    "backward derived for the N-1 variance while the forward divides by N",
    BN, batchnorm_backward_unbiased_variance, norm_inputs(8, 5),
    expect="dx (input 0) off by a factor ~N/(N-1) in the variance term", ref_backward=BNB)
add("correct", F, "layernorm", "layer norm over the features", LN, LNB, norm_inputs(4, 6))
add("bug", F, "layernorm_batch_axis", "layer norm backward reduces over the batch axis",
    LN, layernorm_backward_batch_axis, norm_inputs(4, 6), expect="dx (input 0) wrong axis",
    ref_backward=LNB)
add("bug", F, "layernorm_nan_flat_row",
    "layer norm backward recomputes the std without eps: 0/0 on a constant row",
    LN, layernorm_backward_recompute_no_eps, _inputs_with_flat_row, expect="nan (row 2)",
    ref_backward=LNB)

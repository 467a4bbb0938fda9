"""Zoo family "structured": bugs confined to a structure of a realistic-size matrix.

Real backpropagation bugs rarely spoil a contiguous block of a gradient. They
live on a column of a weight matrix (one output unit), a stride (one feature of
every attention head, one lane of every 8-wide block), one entry per row (the
label entries of a loss) or a diagonal, and they are often small. Each bug
here says where it lives with ``region``; inputs are realistic sizes:

- affine: x (64, 256), w (256, 128), b (128,) -> (64, 128);
- layer norm: x (64, 512), gamma, beta (512,);
- losses: scores x (256, 100), integer labels y (256,) -> 0-d mean loss;
- multi-head attention: q, k, v (4, 16, 128) in 8 heads of 16 features;
- embedding: W (1000, 64) looked up by idx (32, 20) with repeated indices;
- a lower-triangular factor with a positive diagonal: x (128, 64), w (64, 64).
"""

from __future__ import annotations

import math

import numpy as np

from .case import add, mask, normal
from .dense import (
    _softmax_minus_onehot,
    affine_backward,
    affine_forward,
    embedding_backward,
    embedding_forward,
    scores_and_labels,
    softmax_loss_backward,
    softmax_loss_forward,
    svm_loss_backward,
    svm_loss_backward_counts_correct_class,
    svm_loss_forward,
    svm_loss_forward_keeps_correct_margin,
)
from .norm import layernorm_backward, layernorm_forward, norm_inputs


def label_entries(inputs) -> np.ndarray:
    """Mask of x[i, y[i]] for scores x (N, C) and labels y (N,): one entry per row."""
    x, y = inputs[0], inputs[1]
    return mask(x.shape, (np.arange(len(y)), y))


def columns(shape, index) -> np.ndarray:
    """Mask of the columns ``index`` (an int, a slice) of every row of a matrix."""
    return mask(shape, (..., index))


# --- affine x (64, 256) @ w (256, 128): one column, every 8th column -------------------

UNIT = 40  # the output unit whose column of dw is wrong
LANES = 8  # width of the blocks of output units a vectorised kernel handles at once


def affine_backward_unit_halved(dout, cache):
    dx, dw, db = affine_backward(dout, cache)
    dw[:, UNIT] /= 2  # unit 40 treated as tied to a second unit: its gradient averaged over two
    return dx, dw, db


def affine_backward_unit_gain(dout, cache):
    dx, dw, db = affine_backward(dout, cache)
    dw[:, UNIT] *= 1.001  # a per-unit gain of 1.001 left in the backward only
    return dx, dw, db


def affine_backward_last_lane(dout, cache):
    dx, dw, db = affine_backward(dout, cache)
    dw[:, LANES - 1::LANES] *= 0.98  # the last lane of each 8-wide block: 2 % too small
    return dx, dw, db


def affine_inputs(rng):
    return normal(rng, 64, 256), normal(rng, 256, 128, scale=0.1), normal(rng, 128)


# --- layer norm (64, 512): the last feature's column of dx ---------------------------------


def layernorm_backward_tail_feature(dout, cache):
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    dx[:, -1] *= 1.02  # the remainder loop of a blocked backward: feature 511 is 2 % off
    return dx, dgamma, dbeta


# --- losses on scores (256, 100): the label entries ------------------------------------------


def softmax_loss_backward_label_entries_halved(dout, cache):
    probs, y = cache
    dx = dout * _softmax_minus_onehot(probs, y) / len(y)
    dx[np.arange(len(y)), y] *= 0.5  # the label entries averaged over two "views"
    return dx, None


SMOOTHING = 0.1


def smoothed_loss_forward(x, y, smoothing=SMOOTHING):
    """Cross-entropy of x (N, C) against label-smoothed targets -> 0-d mean loss.

    target = (1 - smoothing) * onehot(y) + smoothing / C.
    """
    n, c = x.shape
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    target = np.full(x.shape, smoothing / c, dtype=x.dtype)
    target[np.arange(n), y] += 1 - smoothing
    loss = -(target * log_probs).sum() / n
    return np.asarray(loss, dtype=x.dtype), (np.exp(log_probs), target, y)


def smoothed_loss_backward(dout, cache):
    """dout () -> dx (N, C) = dout * (softmax(x) - target) / N, None."""
    probs, target, _ = cache
    return dout * (probs - target) / len(probs), None


def smoothed_loss_backward_hard_label(dout, cache):
    probs, target, y = cache
    grad = probs - target
    rows = np.arange(len(y))
    grad[rows, y] = probs[rows, y] - 1  # the label entry copied from the unsmoothed loss
    return dout * grad / len(y), None


# --- multi-head attention: 8 heads of 16 features in 128 columns ----------------------------

HEADS = 8
PRUNED = 5  # the head a head mask switches off


def _split_heads(a):
    """(N, T, HEADS * dh) -> (N, HEADS, T, dh)."""
    n, t, d = a.shape
    return a.reshape(n, t, HEADS, d // HEADS).transpose(0, 2, 1, 3)


def _merge_heads(a):
    """(N, HEADS, T, dh) -> (N, T, HEADS * dh)."""
    n, h, t, dh = a.shape
    return a.transpose(0, 2, 1, 3).reshape(n, t, h * dh)


def mha_forward(q, k, v, head_mask=None):
    """Multi-head attention without projections: q, k, v (N, T, 128) -> (N, T, 128).

    Each head h attends with softmax(q_h k_h^T / sqrt(16)) v_h; ``head_mask``
    (HEADS,) multiplies each head's output (0 prunes a head).
    """
    qh, kh, vh = _split_heads(q), _split_heads(k), _split_heads(v)
    scale = 1 / math.sqrt(qh.shape[-1])
    scores = qh @ kh.swapaxes(-1, -2) * scale
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    attn = e / e.sum(axis=-1, keepdims=True)
    keep = np.ones(HEADS, dtype=q.dtype) if head_mask is None else head_mask
    out = (attn @ vh) * keep[:, None, None]
    return _merge_heads(out), (qh, kh, vh, attn, scale, keep)


def _mha_grads(douth, cache):
    qh, kh, vh, attn, scale, _ = cache
    dattn = douth @ vh.swapaxes(-1, -2)
    dscores = attn * (dattn - (dattn * attn).sum(axis=-1, keepdims=True))
    return (_merge_heads(dscores @ kh * scale), _merge_heads(dscores.swapaxes(-1, -2) @ qh * scale),
            _merge_heads(attn.swapaxes(-1, -2) @ douth))


def mha_backward(dout, cache):
    """dout (N, T, 128) -> dq, dk, dv, each (N, T, 128)."""
    return _mha_grads(_split_heads(dout) * cache[5][:, None, None], cache)


def mha_backward_drops_first_feature(dout, cache):
    dq, dk, dv = mha_backward(dout, cache)
    dv[..., ::dv.shape[-1] // HEADS] = 0  # the head merge skips feature 0 of every head
    return dq, dk, dv


def mha_pruned_forward(q, k, v):
    """Multi-head attention with head 5 pruned by a head mask of 0."""
    head_mask = np.ones(HEADS, dtype=q.dtype)
    head_mask[PRUNED] = 0
    return mha_forward(q, k, v, head_mask)


def mha_backward_ignores_head_mask(dout, cache):
    return _mha_grads(_split_heads(dout), cache)  # the head mask is not applied to dout


def mha_inputs(rng):
    return tuple(normal(rng, 4, 16, 128) for _ in range(3))


def _head_columns(inputs):
    d = inputs[0].shape[-1]
    return columns(inputs[0].shape, slice(PRUNED * d // HEADS, (PRUNED + 1) * d // HEADS))


# --- embedding W (1000, 64): one feature column ------------------------------------------

FEATURE = 7


def embedding_backward_feature_gain(dout, cache):
    _, dw = embedding_backward(dout, cache)
    dw[:, FEATURE] *= 1.1  # feature 7 keeps a stale 1.1 weight-norm gain
    return None, dw


def embedding_inputs(rng):
    """idx (32, 20) in [0, 1000) whose first 4 tokens repeat a few frequent words; W (1000, 64)."""
    idx = rng.integers(0, 1000, size=(32, 20))
    idx[:, :4] = rng.integers(0, 10, size=(32, 4))
    return idx, normal(rng, 1000, 64)


# --- lower-triangular factor with a positive diagonal: the diagonal ------------------------


def tril_factor_forward(x, w):
    """x (N, D), w (D, D) -> x @ L^T (N, D), L = tril(w, -1) + diag(exp(diag(w))).

    The parameterisation of a Cholesky factor (a Gaussian's scale): w's upper
    triangle is unused, its diagonal is log-scales.
    """
    scales = np.exp(np.diag(w))
    factor = np.tril(w, -1) + np.diag(scales)
    return x @ factor.T, (x, factor, scales)


def tril_factor_backward(dout, cache):
    """dout (N, D) -> dx (N, D), dw (D, D) (zero above the diagonal)."""
    x, factor, scales = cache
    dfactor = dout.T @ x
    return dout @ factor, np.tril(dfactor, -1) + np.diag(np.diag(dfactor) * scales)


def tril_factor_backward_no_exp(dout, cache):
    x, factor, _ = cache
    dfactor = dout.T @ x
    return dout @ factor, np.tril(dfactor, -1) + np.diag(np.diag(dfactor))  # exp' forgotten


def tril_factor_inputs(rng):
    return normal(rng, 128, 64), normal(rng, 64, 64, scale=0.3)


# --- registration ---------------------------------------------------------------------------

F = "structured"
A, AB = affine_forward, affine_backward
add("correct", F, "affine_64x256x128", "affine layer x (64, 256) @ w (256, 128) + b", A, AB,
    affine_inputs)
add("bug", F, "affine_dw_column_halved",
    "dw[:, 40] halved: output unit 40 treated as tied to another unit", A,
    affine_backward_unit_halved, affine_inputs, expect="column 40 of dw (input 1), factor 0.5",
    ref_backward=AB, region=lambda inputs: {1: columns(inputs[1].shape, UNIT)})
add("bug", F, "affine_dw_column_tiny", "dw[:, 40] 0.1 % too large (a per-unit gain left in)",
    A, affine_backward_unit_gain, affine_inputs, expect="column 40 of dw (input 1), factor 1.001",
    ref_backward=AB, region=lambda inputs: {1: columns(inputs[1].shape, UNIT)})
add("bug", F, "affine_dw_every_8th_column",
    "the last lane of every 8-wide block of output units: dw[:, 7::8] 2 % too small", A,
    affine_backward_last_lane, affine_inputs, expect="every 8th column of dw (input 1) from 7",
    ref_backward=AB, region=lambda inputs: {1: columns(inputs[1].shape, slice(7, None, 8))})

LN, LNB = layernorm_forward, layernorm_backward
LN_INPUTS = norm_inputs(64, 512)
add("correct", F, "layernorm_64x512", "layer norm over 512 features", LN, LNB, LN_INPUTS)
add("bug", F, "layernorm_dx_last_column", "layer norm dx[:, 511] 2 % off (a blocked tail loop)",
    LN, layernorm_backward_tail_feature, LN_INPUTS, expect="column 511 of dx (input 0)",
    ref_backward=LNB, region=lambda inputs: {0: columns(inputs[0].shape, -1)})

SCORES = scores_and_labels(256, 100)
add("correct", F, "softmax_loss_256x100", "softmax cross-entropy, 256 samples, 100 classes",
    softmax_loss_forward, softmax_loss_backward, SCORES)
add("bug", F, "softmax_loss_label_entries_halved",
    "softmax loss dx halved at the label entries x[i, y[i]] only", softmax_loss_forward,
    softmax_loss_backward_label_entries_halved, SCORES,
    expect="one entry per row of x (input 0): the label entries",
    ref_backward=softmax_loss_backward,
    region=lambda inputs: {0: label_entries(inputs)})
add("correct", F, "smoothed_loss_256x100", "cross-entropy with label smoothing 0.1",
    smoothed_loss_forward, smoothed_loss_backward, SCORES)
add("bug", F, "smoothed_loss_hard_label_entries",
    "label-smoothed loss whose backward uses the hard target 1 at the label entries",
    smoothed_loss_forward, smoothed_loss_backward_hard_label, SCORES,
    expect="one entry per row of x (input 0): the label entries, off by 0.099 / N",
    ref_backward=smoothed_loss_backward, region=lambda inputs: {0: label_entries(inputs)})
add("correct", F, "svm_loss_256x100", "multiclass SVM hinge loss, 256 samples, 100 classes",
    svm_loss_forward, svm_loss_backward, SCORES)
add("bug", F, "svm_loss_counts_correct_class_256x100",
    "the correct class's own margin is counted in its gradient (256 x 100)",
    svm_loss_forward_keeps_correct_margin, svm_loss_backward_counts_correct_class, SCORES,
    expect="one entry per row of x (input 0): the label entries, off by -1 / N",
    ref_forward=svm_loss_forward, ref_backward=svm_loss_backward,
    region=lambda inputs: {0: label_entries(inputs)})

add("correct", F, "mha_8_heads", "multi-head attention, 8 heads of 16 features",
    mha_forward, mha_backward, mha_inputs)
add("bug", F, "mha_dv_first_feature_of_each_head",
    "multi-head attention dv zeroed on feature 0 of every head", mha_forward,
    mha_backward_drops_first_feature, mha_inputs, expect="every 16th column of dv (input 2)",
    ref_backward=mha_backward,
    region=lambda inputs: {2: columns(inputs[2].shape, slice(None, None, 16))})
add("correct", F, "mha_pruned_head", "multi-head attention with head 5 pruned (head mask 0)",
    mha_pruned_forward, mha_backward, mha_inputs)
add("bug", F, "mha_pruned_head_unmasked",
    "head 5 is pruned in the forward, but the backward forgets the head mask", mha_pruned_forward,
    mha_backward_ignores_head_mask, mha_inputs,
    expect="head 5's columns 80:96 of dq, dk, dv (inputs 0-2): should be 0",
    ref_backward=mha_backward,
    region=lambda inputs: {i: _head_columns(inputs) for i in range(3)})

add("correct", F, "embedding_1000x64", "embedding lookup, W (1000, 64), repeated indices",
    embedding_forward, embedding_backward, embedding_inputs)
add("bug", F, "embedding_dw_column", "embedding dW[:, 7] 10 % too large (a stale gain)",
    embedding_forward, embedding_backward_feature_gain, embedding_inputs,
    expect="column 7 of dW (input 1), rows of the looked-up words", ref_backward=embedding_backward,
    region=lambda inputs: {1: columns(inputs[1].shape, FEATURE)})

add("correct", F, "tril_factor", "x @ L^T, L lower triangular with diagonal exp(diag(w))",
    tril_factor_forward, tril_factor_backward, tril_factor_inputs)
add("bug", F, "tril_factor_diagonal_no_exp",
    "the diagonal's gradient forgets the exp of the log-scale parameterisation",
    tril_factor_forward, tril_factor_backward_no_exp, tril_factor_inputs,
    expect="the diagonal of dw (input 1)", ref_backward=tril_factor_backward,
    region=lambda inputs: {1: np.eye(inputs[1].shape[0], dtype=bool)})

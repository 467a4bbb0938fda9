"""Zoo family "dense": affine layers, classification losses, weight decay, embeddings.

Shapes: ``x`` (N, D), ``w`` (D, M), ``b`` (M,); losses take scores ``x`` (N, C)
and integer labels ``y`` (N,) and return a 0-d array (the mean loss) whose
backward returns ``(dx, None)``.
"""

from __future__ import annotations

import numpy as np

from .case import add, normal

# --- affine: out = x @ w + b ------------------------------------------------


def affine_forward(x, w, b):
    """x (N, D), w (D, M), b (M,) -> out (N, M)."""
    return x @ w + b, (x, w)


def affine_backward(dout, cache):
    """dout (N, M) -> dx (N, D), dw (D, M), db (M,)."""
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def affine_backward_dw_transposed(dout, cache):
    x, w = cache
    return dout @ w.T, dout.T @ x, dout.sum(axis=0)  # (M, D): fits only because D == M


def affine_backward_db_keepdims(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0, keepdims=True)  # (1, M) for b (M,)


def affine_backward_forgets_db(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout


def _affine_inputs(n, d, m, dtype=np.float64, scale=1.0):
    def make(rng):
        return (normal(rng, n, d, scale=scale, dtype=dtype),
                normal(rng, d, m, scale=scale, dtype=dtype), normal(rng, m, dtype=dtype))
    return make


# --- softmax cross-entropy loss ----------------------------------------------


def softmax_loss_forward(x, y):
    """Mean cross-entropy of scores x (N, C) for labels y (N,) -> 0-d loss."""
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    loss = -log_probs[np.arange(n), y].mean()
    return np.asarray(loss, dtype=x.dtype), (np.exp(log_probs), y)


def _softmax_minus_onehot(probs, y):
    grad = probs.copy()
    grad[np.arange(len(y)), y] -= 1
    return grad


def softmax_loss_backward(dout, cache):
    """dout () -> dx (N, C) = dout * (softmax(x) - onehot(y)) / N, None."""
    probs, y = cache
    return dout * _softmax_minus_onehot(probs, y) / len(y), None


def softmax_loss_backward_no_mean(dout, cache):
    probs, y = cache
    return dout * _softmax_minus_onehot(probs, y), None  # forgot the 1/N of the mean


def softmax_loss_backward_ignores_dout(dout, cache):
    probs, y = cache
    return _softmax_minus_onehot(probs, y) / len(y), None  # as if dout were always 1


def softmax_loss_backward_wrong_sign(dout, cache):
    probs, y = cache
    return -dout * _softmax_minus_onehot(probs, y) / len(y), None  # onehot - p


def scores_and_labels(n, c, dtype=np.float64, scale=1.0):
    def make(rng):
        return normal(rng, n, c, scale=scale, dtype=dtype), rng.integers(0, c, size=n)
    return make


# --- multiclass SVM (hinge) loss --------------------------------------------


def svm_loss_forward(x, y):
    """Mean multiclass hinge loss sum_j max(0, x_j - x_y + 1), j != y -> 0-d loss."""
    n = x.shape[0]
    margins = np.maximum(0.0, x - x[np.arange(n), y][:, None] + 1.0)
    margins[np.arange(n), y] = 0.0
    return np.asarray(margins.sum() / n, dtype=x.dtype), (margins, y)


def svm_loss_backward(dout, cache):
    margins, y = cache
    n = len(y)
    active = (margins > 0).astype(margins.dtype)
    active[np.arange(n), y] = -active.sum(axis=1)
    return dout * active / n, None


def svm_loss_forward_keeps_correct_margin(x, y):
    n = x.shape[0]
    margins = np.maximum(0.0, x - x[np.arange(n), y][:, None] + 1.0)
    loss = (margins.sum() - n) / n  # subtracts the correct class's margin of 1 from the loss ...
    return np.asarray(loss, dtype=x.dtype), (margins, y)


def svm_loss_backward_counts_correct_class(dout, cache):
    margins, y = cache  # ... but its margin (always 1 > 0) is still counted here
    n = len(y)
    active = (margins > 0).astype(margins.dtype)
    active[np.arange(n), y] = -active.sum(axis=1)
    return dout * active / n, None


# --- L2 weight decay: reg * sum(w**2) -----------------------------------------

REG = 0.1


def l2_forward(w):
    """reg * sum(w**2) with reg = 0.1 -> 0-d."""
    return np.asarray(REG * np.sum(w * w), dtype=w.dtype), w


def l2_backward(dout, w):
    return dout * 2 * REG * w


def l2_backward_no_factor_2(dout, w):
    return dout * REG * w


def l2_backward_no_reg(dout, w):
    return dout * 2 * w


# --- residual block: out = x + tanh(x @ w) -------------------------------------


def residual_forward(x, w):
    """x (N, D), w (D, D) -> x + tanh(x @ w) (N, D)."""
    t = np.tanh(x @ w)
    return x + t, (x, w, t)


def residual_backward(dout, cache):
    x, w, t = cache
    da = dout * (1 - t**2)
    return dout + da @ w.T, x.T @ da


def residual_backward_no_skip(dout, cache):
    x, w, t = cache
    da = dout * (1 - t**2)
    return da @ w.T, x.T @ da  # the identity path's dout is missing


# --- embedding lookup: out = W[idx] -------------------------------------------


def embedding_forward(idx, w):
    """idx (N, T) integers in [0, V), w (V, D) -> out (N, T, D)."""
    return w[idx], (idx, w.shape)


def embedding_backward(dout, cache):
    idx, shape = cache
    dw = np.zeros(shape, dtype=dout.dtype)
    np.add.at(dw, idx, dout)  # unbuffered: repeated indices accumulate
    return None, dw


def embedding_backward_fancy_add(dout, cache):
    idx, shape = cache
    dw = np.zeros(shape, dtype=dout.dtype)
    dw[idx] += dout  # buffered: a repeated index keeps only its last contribution
    return None, dw


def embedding_inputs(rng):
    idx = rng.integers(0, 6, size=(3, 5))
    idx[0, :2] = idx[1, 3] = 2  # make sure an index repeats
    return idx, normal(rng, 6, 4)


# --- elementwise product: out = x * y ---------------------------------------


def mul_forward(x, y):
    """x, y (N, D) -> x * y."""
    return x * y, (x, y)


def mul_backward(dout, cache):
    x, y = cache
    return dout * y, dout * x


def mul_backward_swapped(dout, cache):
    x, y = cache
    return dout * x, dout * y  # each input got its own value instead of the other's


def _two(rng):
    return normal(rng, 4, 5), normal(rng, 4, 5)


# --- registration -------------------------------------------------------------

F = "dense"
A, AB = affine_forward, affine_backward
add("correct", F, "affine", "affine layer x @ w + b", A, AB, _affine_inputs(4, 3, 5))
add("bug", F, "affine_dw_transposed",
    "dw computed as dout.T @ x; the shape fits because w is square",
    A, affine_backward_dw_transposed, _affine_inputs(4, 5, 5), expect="transpose (input 1)",
    ref_backward=AB)
add("bug", F, "affine_db_keepdims", "db summed with keepdims: shape (1, M) for b (M,)",
    A, affine_backward_db_keepdims, _affine_inputs(4, 3, 5), expect="shape (input 2)",
    ref_backward=AB)
add("bug", F, "affine_forgets_db", "backward returns (dx, dw) and forgets db",
    A, affine_backward_forgets_db, _affine_inputs(4, 3, 5),
    expect="number of gradients: 2 returned for 3 inputs", ref_backward=AB)

SL, SLB = softmax_loss_forward, softmax_loss_backward
add("correct", F, "softmax_loss", "softmax cross-entropy loss", SL, SLB, scores_and_labels(6, 4))
add("bug", F, "softmax_loss_no_mean", "loss is a mean over N but dx forgets the 1/N",
    SL, softmax_loss_backward_no_mean, scores_and_labels(6, 4), expect="factor N = 6",
    ref_backward=SLB)
add("bug", F, "softmax_loss_ignores_dout", "dx is not multiplied by the upstream dout",
    SL, softmax_loss_backward_ignores_dout, scores_and_labels(6, 4),
    expect="scale: ignores dout", ref_backward=SLB)
add("bug", F, "softmax_loss_wrong_sign", "dx = onehot - softmax instead of softmax - onehot",
    SL, softmax_loss_backward_wrong_sign, scores_and_labels(6, 4), expect="sign",
    ref_backward=SLB)
add("bug", F, "softmax_loss_float32_no_mean", "float32 softmax loss whose dx forgets the 1/N",
    SL, softmax_loss_backward_no_mean, scores_and_labels(8, 5, dtype=np.float32),
    expect="factor N = 8", ref_backward=SLB)

add("correct", F, "svm_loss", "multiclass SVM hinge loss", svm_loss_forward, svm_loss_backward,
    scores_and_labels(6, 4))
add("bug", F, "svm_loss_counts_correct_class",
    "the correct class's own margin (always 1) is counted in its gradient",
    svm_loss_forward_keeps_correct_margin, svm_loss_backward_counts_correct_class,
    scores_and_labels(6, 4), expect="wrong at the label coordinates x[i, y[i]]",
    ref_forward=svm_loss_forward, ref_backward=svm_loss_backward)

add("correct", F, "l2_reg", "weight decay reg * sum(w**2)", l2_forward, l2_backward,
    lambda rng: (normal(rng, 4, 3),))
add("bug", F, "l2_reg_no_factor_2", "d/dw of reg * w**2 written as reg * w (factor 2 missing)",
    l2_forward, l2_backward_no_factor_2, lambda rng: (normal(rng, 4, 3),), expect="factor 2",
    ref_backward=l2_backward)
add("bug", F, "l2_reg_no_lambda", "d/dw of reg * w**2 written as 2 * w (reg missing)",
    l2_forward, l2_backward_no_reg, lambda rng: (normal(rng, 4, 3),), expect="factor 10 (1/reg)",
    ref_backward=l2_backward)

add("correct", F, "residual", "residual block x + tanh(x @ w)", residual_forward,
    residual_backward, lambda rng: (normal(rng, 4, 3), normal(rng, 3, 3)))
add("bug", F, "residual_no_skip", "the skip connection's gradient (dout itself) is missing in dx",
    residual_forward, residual_backward_no_skip,
    lambda rng: (normal(rng, 4, 3), normal(rng, 3, 3)),
    expect="missing term in dx (input 0): analytic - numeric == -dout",
    ref_backward=residual_backward)

add("correct", F, "embedding", "embedding lookup with repeated indices (np.add.at)",
    embedding_forward, embedding_backward, embedding_inputs)
add("bug", F, "embedding_fancy_add", "dW[idx] += dout loses the repeated indices",
    embedding_forward, embedding_backward_fancy_add, embedding_inputs,
    expect="rows of W at repeated indices (row 2)", ref_backward=embedding_backward)

add("correct", F, "mul", "elementwise product x * y", mul_forward, mul_backward, _two)
add("bug", F, "mul_swapped", "the partials of x * y are swapped: dx = dout * x",
    mul_forward, mul_backward_swapped, _two, expect="both inputs wrong (swapped)",
    ref_backward=mul_backward)

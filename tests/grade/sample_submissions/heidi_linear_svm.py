"""heidi (written for gradproof's tests): assignment 1 in one file, from an older year
(regularization 0.5 * reg * sum(W**2)), with two bugs."""
import numpy as np


def svm_loss_naive(W, X, y, reg):
    dW = np.zeros(W.shape)
    loss = 0.0
    for i in range(X.shape[0]):
        scores = X[i].dot(W)
        for j in range(W.shape[1]):
            if j == y[i]:
                continue
            margin = scores[j] - scores[y[i]] + 1
            if margin > 0:
                loss += margin
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
    loss = loss / X.shape[0] + 0.5 * reg * np.sum(W * W)
    dW = dW / X.shape[0] + reg * W
    return loss, dW


def svm_loss_vectorized(W, X, y, reg):
    N = X.shape[0]
    scores = X.dot(W)
    margins = np.maximum(0, scores - scores[np.arange(N), y][:, None] + 1)
    margins[np.arange(N), y] = 0
    loss = margins.sum() / N + 0.5 * reg * np.sum(W * W)
    coeff = (margins > 0).astype(float)
    coeff[np.arange(N), y] = -coeff.sum(axis=1)
    dW = X.T.dot(coeff) / N + 2 * reg * W  # BUG: the 0.5 convention's gradient is reg * W
    return loss, dW


def softmax_loss_naive(W, X, y, reg):
    loss, dW = 0.0, np.zeros_like(W)
    for i in range(X.shape[0]):
        e = np.exp(X[i].dot(W))  # no max-shift: fine for these small scores
        p = e / e.sum()
        loss += -np.log(p[y[i]])
        p[y[i]] -= 1
        dW += np.outer(X[i], p)
    N = X.shape[0]
    return loss / N + 0.5 * reg * np.sum(W * W), dW / N + reg * W


def softmax_loss_vectorized(W, X, y, reg):
    N = X.shape[0]
    s = X.dot(W)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(N), y]).mean() + 0.5 * reg * np.sum(W * W)
    p[np.arange(N), y] -= 1
    dW = X.T.dot(p) + reg * W  # BUG: the data term misses 1/N
    return loss, dW

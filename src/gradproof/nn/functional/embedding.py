"""Embedding: look up a row of ``W`` for every integer index.

The backward is a scatter-add. Repeated indices must *accumulate*: the classic
bug ``dW[idx] += dout`` keeps only the last write for a repeated index (NumPy's
fancy-index assignment is not an accumulation), so we use ``np.add.at``.
"""

from __future__ import annotations

import numpy as np

from ..._validate import float_array, index_array, upstream
from ...errors import InputError, InputTypeError, describe

__all__ = [
    "embedding",
    "embedding_backward",
    "word_embedding_forward",
    "word_embedding_backward",
]


def embedding(idx: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Rows of ``W`` picked by ``idx``: ``out[n, t] = W[idx[n, t]]``.

    Inputs:
    - idx: integer array of shape (N, T) (any shape works) with values in [0, V).
    - W: float array of shape (V, D), one vector per vocabulary entry.

    Returns ``(out, cache)`` with ``out`` of shape (N, T, D) and W's dtype.
    """
    W = float_array("W", W, "V D")
    idx = index_array("idx", idx, W.shape[0], "V = W.shape[0]")
    if idx.size == 0:
        raise InputError(
            f"idx must hold at least one index (N >= 1 and T >= 1), got shape {idx.shape}"
        )
    return W[idx], (idx, W.shape, W.dtype)


def embedding_backward(dout: np.ndarray, cache: tuple) -> tuple[None, np.ndarray]:
    """Gradients of :func:`embedding`: ``(None, dW)``, one per input (idx is not differentiable).

    - dout: upstream gradient of shape idx.shape + (D,).
    - dW: shape (V, D); ``dW[v] = sum of dout[n, t] over every (n, t) with idx[n, t] == v``.
    """
    if not (isinstance(cache, tuple) and len(cache) == 3 and isinstance(cache[0], np.ndarray)
            and cache[0].dtype.kind in "iu" and isinstance(cache[1], tuple)
            and len(cache[1]) == 2 and isinstance(cache[2], np.dtype)):
        raise InputTypeError(
            "cache must be the (idx, W.shape, W.dtype) tuple returned by embedding(), "
            f"got {describe(cache)}"
        )
    idx, w_shape, w_dtype = cache
    dout = upstream(dout, (*idx.shape, w_shape[1]), w_dtype, "embedding")
    dW = np.zeros(w_shape, dtype=w_dtype)
    np.add.at(dW, idx.reshape(-1), dout.reshape(-1, w_shape[1]))
    return None, dW


def word_embedding_forward(x: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, tuple]:
    """CS231n name of :func:`embedding` (``x`` holds the word indices, shape (N, T))."""
    return embedding(x, W)


def word_embedding_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """CS231n's ``word_embedding_backward``: returns ``dW`` (V, D) alone, as the assignment does.

    (:func:`embedding_backward` returns ``(None, dW)``; the checker accepts both.)
    """
    return embedding_backward(dout, cache)[1]

"""Zoo family "attention": single-head scaled dot-product attention.

q (N, Tq, d), k (N, Tk, d), v (N, Tk, dv) -> out (N, Tq, dv) =
softmax(q k^T / sqrt(d)) v, the softmax over Tk.
"""

from __future__ import annotations

import math

import numpy as np

from .case import add, normal


def attention_forward(q, k, v):
    scale = 1 / math.sqrt(q.shape[-1])
    scores = q @ k.transpose(0, 2, 1) * scale
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    attn = e / e.sum(axis=-1, keepdims=True)
    return attn @ v, (q, k, v, attn, scale)


def _attention_grads(dscores, dout, cache, scale):
    q, k, v, attn, _ = cache
    dq = dscores @ k * scale
    dk = dscores.transpose(0, 2, 1) @ q * scale
    dv = attn.transpose(0, 2, 1) @ dout
    return dq, dk, dv


def _dattn(dout, cache):
    return dout @ cache[2].transpose(0, 2, 1)


def attention_backward(dout, cache):
    """dout (N, Tq, dv) -> dq, dk, dv."""
    attn, scale = cache[3], cache[4]
    dattn = _dattn(dout, cache)
    dscores = attn * (dattn - (dattn * attn).sum(axis=-1, keepdims=True))
    return _attention_grads(dscores, dout, cache, scale)


def attention_backward_no_softmax_jacobian(dout, cache):
    attn, scale = cache[3], cache[4]
    dscores = attn * _dattn(dout, cache)  # the - sum(dattn * attn) term is missing
    return _attention_grads(dscores, dout, cache, scale)


def attention_backward_no_scale(dout, cache):
    attn = cache[3]
    dattn = _dattn(dout, cache)
    dscores = attn * (dattn - (dattn * attn).sum(axis=-1, keepdims=True))
    return _attention_grads(dscores, dout, cache, 1.0)  # 1/sqrt(d) forgotten in backward


def attention_inputs(n=2, tq=3, tk=4, d=4, dv=3, dtype=np.float64):
    def make(rng):
        return (normal(rng, n, tq, d, dtype=dtype), normal(rng, n, tk, d, dtype=dtype),
                normal(rng, n, tk, dv, dtype=dtype))
    return make


F = "attention"
add("correct", F, "attention", "scaled dot-product attention", attention_forward,
    attention_backward, attention_inputs())
add("bug", F, "attention_no_softmax_jacobian",
    "attention backward treats softmax as elementwise (misses - sum(dA * A))", attention_forward,
    attention_backward_no_softmax_jacobian, attention_inputs(),
    expect="dq, dk (inputs 0, 1) wrong; dv right", ref_backward=attention_backward)
add("bug", F, "attention_no_scale", "the 1/sqrt(d) scale is applied in forward but not backward",
    attention_forward, attention_backward_no_scale, attention_inputs(),
    expect="factor sqrt(d) = 2 in dq, dk (inputs 0, 1)", ref_backward=attention_backward)

"""Zoo family "precision": code that computes in less precision than float64.

Three kinds, each a realistic layer with a small uniform bug and its twin:

- float32-only code: the forward casts its inputs to float32 whatever they are
  (a JAX float32 function, a torch function that casts), so re-running it on
  float64 copies gains nothing; float32 inputs. Dense layers x (64, 128),
  w (128, 64), b (64,).
- float64 forwards that compute in float32 inside (an accelerator kernel run on
  CPU) and return float64: the output looks precise and is not. Attention q,
  k, v (4, 16, 16); layer norm (64, 32); a loss on scores (128, 10).
- float16: dtype-generic code given float16 inputs. tanh of (32, 64); affine
  (32, 64) @ (64, 32).

Cases of the first two kinds say ``computes_in="float32"``.
"""

from __future__ import annotations

import math

import numpy as np

from .activations import sigmoid, tanh_backward, tanh_forward
from .attention import _attention_grads, _dattn, attention_backward, attention_forward
from .attention import attention_inputs as _attention_inputs
from .case import add, normal
from .dense import affine_backward, affine_forward
from .norm import layernorm_backward, layernorm_forward, norm_inputs
from .structured import smoothed_loss_backward, smoothed_loss_forward

# --- float32-only dense layers -------------------------------------------------------------

LECUN_GAIN, LECUN_SLOPE = 1.7159, 2 / 3  # LeCun's scaled tanh: 1.7159 tanh(2/3 a)


def _float32(*arrays):
    return tuple(np.asarray(a, dtype=np.float32) for a in arrays)


def _dense_grads(da, x, w):
    """Gradients of a = x @ w + b from da (N, M): dx (N, D), dw (D, M), db (M,)."""
    return da @ w.T, x.T @ da, da.sum(axis=0)


def lecun_dense_forward(x, w, b):
    """float32-only: x (N, D), w (D, M), b (M,) -> 1.7159 tanh(2/3 (x @ w + b)) (N, M) float32."""
    x, w, b = _float32(x, w, b)
    t = np.tanh(np.float32(LECUN_SLOPE) * (x @ w + b))
    return np.float32(LECUN_GAIN) * t, (x, w, t)


def _lecun_dense_grads(dout, cache, slope):
    x, w, t = cache
    da = np.asarray(dout, dtype=np.float32) * np.float32(LECUN_GAIN * slope) * (1 - t * t)
    return _dense_grads(da, x, w)


def lecun_dense_backward(dout, cache):
    """dout (N, M) -> dx, dw, db in float32."""
    return _lecun_dense_grads(dout, cache, LECUN_SLOPE)


def lecun_dense_backward_rounded_slope(dout, cache):
    return _lecun_dense_grads(dout, cache, 0.66)  # 2/3 rounded to 0.66: tanh' 1 % too small


TEMPERATURE = 0.997  # left over in the backward of a sigmoid once scaled by 1 / T


def sigmoid_dense_forward(x, w, b):
    """float32-only: sigmoid(x @ w + b) of x (N, D), w (D, M), b (M,) -> (N, M) float32."""
    x, w, b = _float32(x, w, b)
    s = sigmoid(x @ w + b)
    return s, (x, w, s)


def _sigmoid_dense_grads(dout, cache, temperature):
    x, w, s = cache
    da = np.asarray(dout, dtype=np.float32) * s * (1 - s) / np.float32(temperature)
    return _dense_grads(da, x, w)


def sigmoid_dense_backward(dout, cache):
    """dout (N, M) -> dx, dw, db in float32."""
    return _sigmoid_dense_grads(dout, cache, 1.0)


def sigmoid_dense_backward_stale_temperature(dout, cache):
    return _sigmoid_dense_grads(dout, cache, TEMPERATURE)  # sigmoid' 0.3 % too large


def dense_inputs_float32(rng):
    return (normal(rng, 64, 128, dtype=np.float32),
            normal(rng, 128, 64, scale=128**-0.5, dtype=np.float32),
            normal(rng, 64, scale=0.1, dtype=np.float32))


# --- float64 forwards that compute in float32 ----------------------------------------------------


def in_float32(forward, backward):
    """A float64 (forward, backward) pair that runs ``forward``/``backward`` in float32 inside.

    Float inputs are cast to float32, the outputs and gradients back to float64:
    the dtypes a caller sees are float64, the precision is float32's.
    """

    def forward64(*inputs):
        args = [x.astype(np.float32) if np.issubdtype(np.asarray(x).dtype, np.floating) else x
                for x in inputs]
        out, cache = forward(*args)
        return np.asarray(out).astype(np.float64), cache

    def backward64(dout, cache):
        grads = backward(np.asarray(dout, dtype=np.float32), cache)
        grads = grads if isinstance(grads, tuple) else (grads,)
        return tuple(None if g is None else np.asarray(g).astype(np.float64) for g in grads)

    forward64.__name__ = f"{forward.__name__}_float32_inside"
    backward64.__name__ = f"{backward.__name__}_float32_inside"
    return forward64, backward64


def attention_backward_scale_d_plus_1(dout, cache):
    attn, d = cache[3], cache[0].shape[-1]
    dattn = _dattn(dout, cache)
    dscores = attn * (dattn - (dattn * attn).sum(axis=-1, keepdims=True))
    scale = np.float32(1 / math.sqrt(d + 1))  # d counted with a bias column: 3 % too small
    return _attention_grads(dscores, dout, cache, scale)


def layernorm_backward_unbiased_variance(dout, cache):
    _, xhat, gamma, std = cache
    d = xhat.shape[1]
    dxhat = dout * gamma
    # derived for the unbiased variance (/ (D - 1)) while the forward divides by D
    dx = (dxhat - dxhat.mean(axis=1, keepdims=True)
          - xhat * (dxhat * xhat).mean(axis=1, keepdims=True) * (d / (d - 1))) / std
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


SMOOTHING = 0.03


def smoothed_loss_003(x, y):
    """Cross-entropy with label smoothing 0.03 (a configuration default) -> 0-d."""
    return smoothed_loss_forward(x, y, smoothing=SMOOTHING)


def smoothed_loss_backward_unsmoothed(dout, cache):
    probs, _, y = cache
    grad = probs.copy()
    grad[np.arange(len(y)), y] -= 1  # the backward of the plain loss: smoothing forgotten
    return dout * grad / len(y), None


ATTENTION = in_float32(attention_forward, attention_backward)
LAYERNORM = in_float32(layernorm_forward, layernorm_backward)
SMOOTHED = in_float32(smoothed_loss_003, smoothed_loss_backward)
ATTENTION_INPUTS = _attention_inputs(4, 16, 16, 16, 16)
LAYERNORM_INPUTS = norm_inputs(64, 32)


def _scores(rng):
    return normal(rng, 128, 10, scale=2.0), rng.integers(0, 10, size=128)


# --- float16 ------------------------------------------------------------------------------------


def tanh_backward_sign_flipped(dout, cache):
    _, out = cache
    return dout * (out**2 - 1)  # 1 - t**2 written the wrong way round


def affine_backward_loss_scale(dout, cache):
    dx, dw, db = affine_backward(dout, cache)
    return dx, dw * np.float16(1024 / 1000), db  # loss scale 2**10 undone by 1000: dw 2.4 % high


def _float16_affine(rng):
    return (normal(rng, 32, 64, dtype=np.float16),
            normal(rng, 64, 32, scale=0.125, dtype=np.float16), normal(rng, 32, dtype=np.float16))


# --- registration ---------------------------------------------------------------------------------

F = "precision"
F32 = {"computes_in": "float32"}
add("correct", F, "lecun_dense_float32_only", "LeCun tanh dense layer, float32-only code",
    lecun_dense_forward, lecun_dense_backward, dense_inputs_float32, **F32)
add("bug", F, "lecun_dense_float32_only_slope",
    "float32-only LeCun tanh layer whose backward rounds 2/3 to 0.66 (tanh' 1 % off)",
    lecun_dense_forward, lecun_dense_backward_rounded_slope, dense_inputs_float32,
    expect="every input 1 % too small; float32-only: no float64 re-check",
    ref_backward=lecun_dense_backward, **F32)
add("correct", F, "sigmoid_dense_float32_only", "sigmoid dense layer, float32-only code",
    sigmoid_dense_forward, sigmoid_dense_backward, dense_inputs_float32, **F32)
add("bug", F, "sigmoid_dense_float32_only_temperature",
    "float32-only sigmoid layer whose backward divides by a stale temperature 0.997",
    sigmoid_dense_forward, sigmoid_dense_backward_stale_temperature, dense_inputs_float32,
    expect="every input 0.3 % too large; float32-only: no float64 re-check",
    ref_backward=sigmoid_dense_backward, **F32)

add("correct", F, "attention_float32_inside", "float64 attention computed in float32 inside",
    *ATTENTION, ATTENTION_INPUTS, **F32)
add("bug", F, "attention_float32_inside_scale",
    "float64 attention computed in float32 whose backward scales by 1/sqrt(d + 1)",
    ATTENTION[0], in_float32(attention_forward, attention_backward_scale_d_plus_1)[1],
    ATTENTION_INPUTS, expect="dq, dk (inputs 0, 1) 3 % too small; the forward is float32 inside",
    ref_backward=ATTENTION[1], region=lambda inputs: {0: np.ones(inputs[0].shape, dtype=bool),
                                                      1: np.ones(inputs[1].shape, dtype=bool)},
    **F32)
add("correct", F, "layernorm_float32_inside", "float64 layer norm computed in float32 inside",
    *LAYERNORM, LAYERNORM_INPUTS, **F32)
add("bug", F, "layernorm_float32_inside_unbiased",
    "float64 layer norm computed in float32 whose backward uses the D - 1 variance (D = 32)",
    LAYERNORM[0], in_float32(layernorm_forward, layernorm_backward_unbiased_variance)[1],
    LAYERNORM_INPUTS, expect="dx (input 0): variance term 3 % off; the forward is float32 inside",
    ref_backward=LAYERNORM[1], region=lambda inputs: {0: np.ones(inputs[0].shape, dtype=bool)},
    **F32)
add("correct", F, "smoothed_loss_float32_inside",
    "float64 cross-entropy with label smoothing 0.03, computed in float32 inside", *SMOOTHED,
    _scores, **F32)
add("bug", F, "smoothed_loss_float32_inside_unsmoothed",
    "float64 label-smoothed loss computed in float32 whose backward forgets the smoothing",
    SMOOTHED[0], in_float32(smoothed_loss_003, smoothed_loss_backward_unsmoothed)[1], _scores,
    expect="dx (input 0) off by 0.03 (onehot - 1/C) / N; the forward is float32 inside",
    ref_backward=SMOOTHED[1], **F32)

# (32, 64): with the zoo tests' seeded dout no product lands among float16's subnormals,
# where doubling dout does not exactly double the rounded gradient
X16 = (lambda rng: (normal(rng, 32, 64, dtype=np.float16),))
add("correct", F, "tanh_float16", "tanh in float16", tanh_forward, tanh_backward, X16)
add("bug", F, "tanh_float16_sign_flipped", "float16 tanh whose backward is t**2 - 1",
    tanh_forward, tanh_backward_sign_flipped, X16, expect="sign (float16)",
    ref_backward=tanh_backward)
add("correct", F, "affine_float16", "affine layer in float16", affine_forward, affine_backward,
    _float16_affine)
add("bug", F, "affine_float16_loss_scale",
    "float16 affine whose dw undoes a 1024 loss scale with 1000 (2.4 % too large)",
    affine_forward, affine_backward_loss_scale, _float16_affine,
    expect="dw (input 1) 2.4 % too large (float16)", ref_backward=affine_backward)

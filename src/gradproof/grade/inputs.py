"""Seeded input builders for the specs table: ``build(rng, dims) -> args``.

Small shapes (a naive convolution's Python loops must stay cheap), values
away from the kinks of the functions they feed (no exact zeros into a ReLU,
no ties in a max-pool window), and the parameter dicts the assignments pass
(``bn_param``, ``conv_param``, ``pool_param``, ``dropout_param`` with a seed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Builder = Callable[[np.random.Generator, dict], tuple]

def normal(rng, *shape, scale=1.0, shift=0.0, dtype=np.float64):
    return (shift + scale * rng.standard_normal(shape)).astype(dtype)


def f32(build: Builder) -> Builder:
    """The same inputs in float32 (integers and dicts untouched)."""

    def build32(rng, dims):
        return tuple(a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
                     else a for a in build(rng, dims))

    return build32


def affine_inputs(rng, d):
    N, D, M = d["N"], d["D"], d["M"]
    return (normal(rng, N, 2, D // 2), normal(rng, D, M, scale=0.5), normal(rng, M))


def relu_inputs(rng, d):
    return (normal(rng, d["N"], d["D"]),)


def bn_inputs(mode: str, spatial: bool = False) -> Builder:
    def build(rng, d):
        shape = (d["N"], d["C"], d["H"], d["W"]) if spatial else (d["N"], d["D"])
        C = shape[1]
        x = normal(rng, *shape, scale=3.0, shift=10.0)  # as the notebook: far from 0 mean, 1 var
        gamma, beta = normal(rng, C, scale=0.5, shift=1.0), normal(rng, C)
        param: dict[str, Any] = {"mode": mode}
        if mode == "test":
            param["running_mean"] = normal(rng, C, scale=0.5, shift=10.0)
            param["running_var"] = rng.uniform(8.0, 24.0, C)
        return (x, gamma, beta, param)

    return build


def ln_inputs(rng, d):
    N, D = d["N"], d["D"]
    return (normal(rng, N, D, scale=3.0, shift=5.0), normal(rng, D, scale=0.5, shift=1.0),
            normal(rng, D), {})


def gn_inputs(rng, d):
    N, C, H, W, G = d["N"], d["C"], d["H"], d["W"], d["G"]
    gamma = normal(rng, 1, C, 1, 1, scale=0.5, shift=1.0)
    return (normal(rng, N, C, H, W, scale=3.0, shift=4.0), gamma, normal(rng, 1, C, 1, 1),
            G, {})


def gn_flat(args: tuple) -> tuple:
    x, gamma, beta, G, param = args
    return (x, gamma.reshape(-1), beta.reshape(-1), G, param)


def dropout_inputs(mode: str, p: float) -> Builder:
    def build(rng, d):
        x = normal(rng, d["N"], d["D"], shift=10.0)  # away from 0: out / x is the mask
        return (x, {"mode": mode, "p": p, "seed": 123})

    return build


def conv_inputs(stride: int, pad: int) -> Builder:
    def build(rng, d):
        x = normal(rng, d["N"], d["C"], d["H"], d["W"])
        w = normal(rng, d["F"], d["C"], d["HH"], d["WW"], scale=0.5)
        return (x, w, normal(rng, d["F"]), {"stride": stride, "pad": pad})

    return build


def pool_inputs(ph: int, pw: int, stride: int) -> Builder:
    def build(rng, d):
        x = normal(rng, d["N"], d["C"], d["H"], d["W"])
        return (x, {"pool_height": ph, "pool_width": pw, "stride": stride})

    return build


def scores_inputs(rng, d):
    N, C = d["N"], d["C"]
    return (normal(rng, N, C, scale=2.0), rng.integers(0, C, N))


def rnn_step_inputs(lstm: bool) -> Builder:
    def build(rng, d):
        N, D, H = d["N"], d["D"], d["H"]
        G = 4 * H if lstm else H
        x, prev_h = normal(rng, N, D), normal(rng, N, H, scale=0.5)
        Wx, Wh = normal(rng, D, G, scale=0.4), normal(rng, H, G, scale=0.4)
        b = normal(rng, G, scale=0.2)
        if lstm:
            return (x, prev_h, normal(rng, N, H), Wx, Wh, b)
        return (x, prev_h, Wx, Wh, b)

    return build


def rnn_inputs(lstm: bool) -> Builder:
    def build(rng, d):
        N, T, D, H = d["N"], d["T"], d["D"], d["H"]
        G = 4 * H if lstm else H
        return (normal(rng, N, T, D), normal(rng, N, H, scale=0.5),
                normal(rng, D, G, scale=0.4), normal(rng, H, G, scale=0.4),
                normal(rng, G, scale=0.2))

    return build


def embedding_inputs(rng, d):
    N, T, V, D = d["N"], d["T"], d["V"], d["D"]
    idx = rng.integers(0, V, (N, T))
    idx[0, :2] = idx[-1, -1] = 1  # repeated words: dW must add, not overwrite
    return (idx, normal(rng, V, D))


def temporal_affine_inputs(rng, d):
    N, T, D, M = d["N"], d["T"], d["D"], d["M"]
    return (normal(rng, N, T, D), normal(rng, D, M, scale=0.5), normal(rng, M))


def temporal_loss_inputs(rng, d):
    N, T, V = d["N"], d["T"], d["V"]
    mask = rng.random((N, T)) > 0.3
    mask[0, 0] = True
    return (normal(rng, N, T, V, scale=2.0), rng.integers(0, V, (N, T)), mask)


def classifier_inputs(reg: float) -> Builder:
    def build(rng, d):
        N, D, C = d["N"], d["D"], d["C"]
        W = normal(rng, D, C, scale=0.1)
        return (W, normal(rng, N, D, scale=2.0), rng.integers(0, C, N), reg)

    return build

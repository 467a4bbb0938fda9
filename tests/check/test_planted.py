"""One wrong gradient coordinate planted in real layers, in float64 and float32:
caught and localised (benchmarks/planted_bugs.py runs every layer)."""

from __future__ import annotations

import numpy as np
import pytest

from gradproof import check_vjp
from gradproof.nn import functional as F


def _layers(rng, dtype):
    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    yield "batchnorm", F.batchnorm, F.batchnorm_backward, (r(8, 6) + 3, r(6), r(6),
                                                          {"mode": "train"})
    yield ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, pad=1), F.conv2d_backward,
           (r(2, 3, 7, 7), r(4, 3, 3, 3), r(4)))
    yield "avgpool", lambda x: F.avg_pool2d(x, 3, 3, 2), F.avg_pool2d_backward, (r(2, 2, 7, 7),)
    yield ("lstm", F.lstm, F.lstm_backward,
           (r(2, 4, 3), r(2, 5), r(3, 20) / 2, r(5, 20) / 2, r(20)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("factor", [1.001, 1.05])
def test_one_wrong_coordinate_is_caught_in_every_input_of_real_layers(dtype, factor):
    rng = np.random.default_rng(42)
    for name, forward, backward, inputs in _layers(rng, dtype):
        out, cache = forward(*inputs)
        grads = backward(rng.standard_normal(out.shape).astype(dtype), cache)
        grads = grads if isinstance(grads, tuple) else (grads,)
        for which, g in enumerate(grads):
            # a coordinate whose gradient is not small, so the plant is a real error
            big = np.flatnonzero(np.abs(g) >= 0.2 * np.abs(g).max())
            k = int(rng.choice(big))

            def planted(*args, which=which, k=k, backward=backward):
                gs = backward(*args)
                gs = list(gs) if isinstance(gs, tuple) else [gs]
                gs[which] = np.array(gs[which], copy=True, order="C")
                gs[which].reshape(-1)[k] *= factor
                return tuple(gs)

            report = check_vjp(forward, planted, *inputs)
            assert not report.ok, f"{name} input {which} coordinate {k}:\n{report}"
            assert not report.inputs[which].ok
            coord = np.unravel_index(k, np.shape(inputs[which]))
            assert report.inputs[which].worst[0][0] == tuple(int(c) for c in coord), name

"""Comparing a layer's gradients with torch's, all inputs at once.

Some gradients are mathematically zero for every input (the key bias of
attention: a softmax ignores a shift of all scores; layer-norm gamma when D == 1,
where every normalised value is 0), and then torch returns rounding noise
(1e-17). A tolerance relative to that array's own size would demand that
noise be reproduced, so each gradient is compared normwise against the
largest gradient of the same call (``floor`` of :func:`torch_oracle.assert_close`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch_oracle import assert_close

__all__ = ["assert_grads_close"]


def assert_grads_close(grads: Sequence, expected: Sequence, names: Sequence[str], rtol=1e-10):
    """``assert_close`` for every pair, scaled by the largest expected gradient of the call."""
    assert len(grads) == len(expected) == len(names), (len(grads), len(expected), len(names))
    floor = max(float(np.max(np.abs(e))) for e in expected if e is not None and np.size(e))
    for g, e, name in zip(grads, expected, names):
        assert_close(g, e, rtol=rtol, name=f"d{name}", floor=floor)

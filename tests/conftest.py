"""Shared fixtures. The tests run small matrix products (training tiny nets): one
BLAS thread is faster and avoids oversubscribing the shared CPUs (OpenBLAS
threads spin while waiting).

Hypothesis draws its examples from a fixed seed per test (``derandomize``): a
run on CI checks the same examples as a run here, so a pass means the same
thing in both places. ``--hypothesis-seed`` or the ``HYPOTHESIS_PROFILE=random``
environment variable explores new ones.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("gradproof", derandomize=True, deadline=None)
settings.register_profile("random", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gradproof"))


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ModuleNotFoundError:  # pragma: no cover - an optional speed-up
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield

"""Shared fixtures. The tests run small matrix products (training tiny nets): one
BLAS thread is faster and avoids oversubscribing the shared CPUs (OpenBLAS
threads spin while waiting)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ModuleNotFoundError:  # pragma: no cover - an optional speed-up
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield

"""check_vjp(executor=...) gives the serial report, in processes and on a Dask cluster.

The forward must be picklable (a module-level function): gradproof.nn's own
layers are; the backward runs in the calling process and may be anything.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from gradproof import InputError, check_vjp, process_pool
from gradproof.errors import InputTypeError
from gradproof.nn import functional as F


def _wrong_row_backward(dout, cache):
    dx, dw, db = F.affine_backward(dout, cache)
    dw = dw.copy()
    dw[3] *= -1.0  # a bug confined to one row of dw: exercises localisation
    return dx, dw, db


def _inputs():
    rng = np.random.default_rng(3)
    return rng.standard_normal((6, 8)), rng.standard_normal((8, 5)), rng.standard_normal(5)


CASES = {
    "correct": (F.affine_backward, "auto"),
    "wrong row": (_wrong_row_backward, "auto"),
    "correct, full": (F.affine_backward, "full"),
}


def _without_timing(report) -> dict:
    d = report.to_dict()
    d.pop("seconds")
    return d


def _assert_same_reports(executor) -> None:
    for backward, mode in CASES.values():
        serial = check_vjp(F.affine, backward, *_inputs(), mode=mode, seed=7)
        parallel = check_vjp(F.affine, backward, *_inputs(), mode=mode, seed=7,
                             executor=executor)
        assert _without_timing(parallel) == _without_timing(serial)
        for a, b in zip(serial.inputs, parallel.inputs):
            if a.numeric is not None:
                np.testing.assert_array_equal(a.numeric, b.numeric)


def test_the_cases_exercise_a_pass_and_a_failure():
    verdicts = {name: check_vjp(F.affine, bw, *_inputs(), mode=mode, seed=7).ok
                for name, (bw, mode) in CASES.items()}
    assert verdicts == {"correct": True, "wrong row": False, "correct, full": True}


def test_process_pool_gives_the_serial_report():
    with process_pool(2) as pool:
        _assert_same_reports(pool)


def test_process_pool_report_localises_the_bug():
    with process_pool(2) as pool:
        report = check_vjp(F.affine, _wrong_row_backward, *_inputs(), seed=7, executor=pool)
    assert not report.ok
    assert report.inputs[1].status == "FAIL"
    assert {c[0] for c, _, _ in report.inputs[1].worst} == {3}


def test_dask_local_cluster_gives_the_serial_report():
    import distributed  # the [dask] extra, part of the dev extra

    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        _assert_same_reports(client.get_executor())


@pytest.mark.parametrize("workers, error", [(0, InputError), (-1, InputError),
                                            (1.5, InputTypeError), (True, InputTypeError),
                                            ("2", InputTypeError)])
def test_process_pool_rejects_a_bad_worker_count(workers, error):
    with pytest.raises(error, match="workers must be a positive int"):
        process_pool(workers)


class _CountingExecutor(ThreadPoolExecutor):
    """Threads are enough to see which evaluations are submitted, and when."""

    def __init__(self):
        super().__init__(2)
        self.submitted = 0
        self.before_side_checks_ended = 0
        self.side_checks_done = False

    def submit(self, fn, *args, **kwargs):
        self.submitted += 1
        if not self.side_checks_done:
            self.before_side_checks_ended += 1
        return super().submit(fn, *args, **kwargs)


@pytest.mark.parametrize("backward", [F.affine_backward, _wrong_row_backward])
def test_first_measurement_starts_during_the_side_checks_and_is_not_repeated(
        backward, monkeypatch):
    from gradproof.check import engine

    pool = _CountingExecutor()
    original = engine.run_side_checks

    def side_checks_then_mark(*args, **kwargs):
        side = original(*args, **kwargs)
        pool.side_checks_done = True
        return side

    monkeypatch.setattr(engine, "run_side_checks", side_checks_then_mark)
    with pool:
        report = check_vjp(F.affine, backward, *_inputs(), seed=7, executor=pool)
    serial = check_vjp(F.affine, backward, *_inputs(), seed=7)
    assert _without_timing(report) == _without_timing(serial)
    # 3 inputs x 2 directions x 4 points, submitted before the side checks ended
    assert pool.before_side_checks_ended == 24
    # every evaluation the report counts ran once on the executor, except the
    # side checks' own forwards (made in this process, for their caches)
    assert pool.submitted == report.n_evals - 3

"""Optimizer checkpoints: JSON + .npz without pickle, and resuming continues bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gradproof.errors import InputError, InputTypeError
from gradproof.nn import Parameter
from gradproof.optim import SGD, Adam, AdamW, RMSProp, StepLR

from .problem import SETTINGS, LeastSquares, set_grads_ours, setting_id


def train(problem, params, opt, steps, scheduler=None):
    for _ in range(steps):
        set_grads_ours(problem, params)
        opt.step()
        if scheduler is not None:
            scheduler.step()


def save_and_load(state: dict, tmp_path, name: str) -> dict:
    """The checkpoint round trip a trainer does: hyper as JSON, arrays as .npz, no pickle."""
    (tmp_path / f"{name}.json").write_text(json.dumps(state["hyper"]))
    np.savez(tmp_path / f"{name}.npz", **state["arrays"])
    with np.load(tmp_path / f"{name}.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return {"hyper": json.loads((tmp_path / f"{name}.json").read_text()), "arrays": arrays}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("setting", SETTINGS, ids=setting_id)
def test_resuming_from_a_saved_state_continues_bit_for_bit(setting, dtype, tmp_path):
    cls, kwargs = setting
    problem = LeastSquares.make(seed=1)
    params = problem.ours(dtype)
    opt = cls(params, **kwargs)
    train(problem, params, opt, 20)

    saved = save_and_load(opt.state_dict(), tmp_path, "opt")
    resumed_params = [Parameter(p.data.copy()) for p in params]
    resumed = cls(resumed_params, lr=123.0)  # hyper-parameters come from the state
    resumed.load_state_dict(saved)

    train(problem, params, opt, 15)
    train(problem, resumed_params, resumed, 15)
    for p, q in zip(params, resumed_params):
        assert q.data.dtype == dtype
        assert np.array_equal(p.data, q.data), "resumed training must match bit for bit"
    assert resumed.state_dict()["hyper"] == opt.state_dict()["hyper"]


def test_resuming_optimizer_and_scheduler_continues_bit_for_bit(tmp_path):
    problem = LeastSquares.make(seed=2)
    params = problem.ours()
    opt = SGD(params, lr=0.1, momentum=0.9)
    sched = StepLR(opt, step_size=4, gamma=0.5)
    train(problem, params, opt, 10, sched)

    saved = save_and_load(opt.state_dict(), tmp_path, "opt")
    sched_state = json.loads(json.dumps(sched.state_dict()))
    resumed_params = [Parameter(p.data.copy()) for p in params]
    resumed = SGD(resumed_params, lr=0.1, momentum=0.9)
    resumed_sched = StepLR(resumed, step_size=4, gamma=0.5)
    resumed.load_state_dict(saved)
    resumed_sched.load_state_dict(sched_state)
    assert resumed.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == 0.1 * 0.5**2

    train(problem, params, opt, 10, sched)
    train(problem, resumed_params, resumed, 10, resumed_sched)
    for p, q in zip(params, resumed_params):
        assert np.array_equal(p.data, q.data)


def test_state_dict_holds_only_json_values_and_arrays():
    problem = LeastSquares.make()
    params = problem.ours()
    opt = Adam(params, lr=0.01, betas=(0.8, 0.9), amsgrad=True)
    train(problem, params, opt, 3)
    state = opt.state_dict()
    assert json.loads(json.dumps(state["hyper"])) == state["hyper"]
    assert state["hyper"]["optimizer"] == "Adam"
    assert state["hyper"]["steps"] == [3, 3]
    assert state["hyper"]["param_groups"][0]["betas"] == [0.8, 0.9]
    assert state["hyper"]["param_groups"][0]["params"] == [0, 1]
    assert sorted(state["arrays"]) == sorted(
        f"{i}.{name}" for i in (0, 1) for name in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    )
    assert all(type(a) is np.ndarray for a in state["arrays"].values())


def test_state_dict_arrays_are_copies():
    params = [Parameter(np.ones(3))]
    params[0].grad[...] = 1.0
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.step()
    state = opt.state_dict()
    state["arrays"]["0.momentum_buffer"][...] = 99.0
    assert np.array_equal(opt.state[0]["momentum_buffer"], np.ones(3))


def test_loaded_arrays_are_copied_not_shared():
    params = [Parameter(np.ones(3))]
    opt = RMSProp(params, momentum=0.5)
    params[0].grad[...] = 1.0
    opt.step()
    state = opt.state_dict()
    fresh = RMSProp([Parameter(np.ones(3))], momentum=0.5)
    fresh.load_state_dict(state)
    state["arrays"]["0.square_avg"][...] = 99.0
    assert not np.any(fresh.state[0]["square_avg"] == 99.0)


def test_state_of_a_fresh_optimizer_loads_and_has_no_arrays():
    opt = AdamW([Parameter(np.ones(2))])
    state = opt.state_dict()
    assert state["arrays"] == {} and state["hyper"]["steps"] == [0]
    other = AdamW([Parameter(np.ones(2))], lr=0.5)
    other.load_state_dict(state)
    assert other.param_groups[0]["lr"] == 1e-3


def _state_after_one_step(cls=Adam, shape=(3,)):
    p = Parameter(np.ones(shape))
    p.grad[...] = 1.0
    opt = cls([p])
    opt.step()
    return opt.state_dict()


def test_loading_another_optimizers_state_names_both():
    with pytest.raises(InputError, match="'Adam'.*'AdamW'"):
        AdamW([Parameter(np.ones(3))]).load_state_dict(_state_after_one_step(Adam))


def test_loading_a_state_for_other_shapes_names_the_array():
    with pytest.raises(InputError, match=r"0\.exp_avg.*shape \(4,\)"):
        Adam([Parameter(np.ones(4))]).load_state_dict(_state_after_one_step(Adam))


def test_loading_a_state_for_another_number_of_parameters_is_an_error():
    with pytest.raises(InputError, match="1 parameters in the state, 2 in this optimizer"):
        Adam([Parameter(np.ones(3)), Parameter(np.ones(3))]).load_state_dict(
            _state_after_one_step(Adam)
        )


def test_loading_an_unknown_array_name_is_an_error():
    state = _state_after_one_step(Adam)
    state["arrays"]["0.velocity"] = np.zeros(3)
    with pytest.raises(InputError, match="0.velocity"):
        Adam([Parameter(np.ones(3))]).load_state_dict(state)


def test_loading_a_bad_hyper_parameter_names_it_and_changes_nothing():
    state = _state_after_one_step(Adam)
    state["hyper"]["param_groups"][0]["betas"] = [0.9, 1.5]
    p = Parameter(np.ones(3))
    opt = Adam([p], lr=0.5)
    with pytest.raises(InputError, match=r"betas\[1\]"):
        opt.load_state_dict(state)
    assert opt.param_groups[0]["lr"] == 0.5 and opt.state[0] == {"step": 0}


def test_loading_an_unknown_hyper_parameter_names_it():
    state = _state_after_one_step(Adam)
    state["hyper"]["param_groups"][0]["momentum"] = 0.9
    with pytest.raises(InputTypeError, match="'momentum'"):
        Adam([Parameter(np.ones(3))]).load_state_dict(state)


def test_loading_something_else_than_a_state_dict_is_an_error():
    with pytest.raises(InputError, match="state_dict must be"):
        Adam([Parameter(np.ones(3))]).load_state_dict({"exp_avg": np.zeros(3)})

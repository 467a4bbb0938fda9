"""Learning-rate schedules match torch.optim.lr_scheduler step for step; checkpoints; errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradproof.errors import InputError, InputTypeError
from gradproof.nn import Parameter
from gradproof.optim import (
    SGD,
    Adam,
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    SequentialLR,
    StepLR,
    warmup_cosine,
)

T = torch.optim.lr_scheduler
LRS = (0.1, 0.03)  # two param groups with their own learning rates


def our_optimizer(lrs=LRS):
    return SGD([{"params": [Parameter(np.zeros(2))], "lr": lr} for lr in lrs])


def torch_optimizer(lrs=LRS):
    return torch.optim.SGD(
        [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    )


def assert_same_schedule(make_ours, make_theirs, steps=30, lrs=LRS):
    """Both schedulers set the same lr in every group at construction and after each step."""
    opt, topt = our_optimizer(lrs), torch_optimizer(lrs)
    sched, tsched = make_ours(opt), make_theirs(topt)
    for step in range(steps + 1):
        ours = [g["lr"] for g in opt.param_groups]
        theirs = [g["lr"] for g in topt.param_groups]
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15, err_msg=f"step {step}")
        assert sched.get_last_lr() == ours
        topt.step()  # torch warns if its scheduler steps before its optimizer
        sched.step()
        tsched.step()


SCHEDULES = {
    "StepLR": (lambda o: StepLR(o, step_size=7, gamma=0.5), lambda o: T.StepLR(o, 7, 0.5)),
    "ExponentialLR": (lambda o: ExponentialLR(o, 0.9), lambda o: T.ExponentialLR(o, 0.9)),
    "CosineAnnealingLR past T_max": (
        lambda o: CosineAnnealingLR(o, T_max=10, eta_min=1e-3),
        lambda o: T.CosineAnnealingLR(o, T_max=10, eta_min=1e-3),
    ),
    "LinearLR warm-up": (
        lambda o: LinearLR(o, start_factor=0.1, total_iters=8),
        lambda o: T.LinearLR(o, start_factor=0.1, total_iters=8),
    ),
    "LinearLR decay": (
        lambda o: LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=12),
        lambda o: T.LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=12),
    ),
    "SequentialLR three phases": (
        lambda o: SequentialLR(
            o, [LinearLR(o, 0.25, total_iters=4), ExponentialLR(o, 0.8), StepLR(o, 3, 0.5)],
            milestones=[5, 15],
        ),
        lambda o: T.SequentialLR(
            o, [T.LinearLR(o, 0.25, total_iters=4), T.ExponentialLR(o, 0.8), T.StepLR(o, 3, 0.5)],
            milestones=[5, 15],
        ),
    ),
    "warmup_cosine": (
        lambda o: warmup_cosine(o, warmup_steps=5, total_steps=25, start_factor=0.1, eta_min=1e-4),
        lambda o: T.SequentialLR(
            o, [T.LinearLR(o, 0.1, 1.0, 5), T.CosineAnnealingLR(o, 20, 1e-4)], milestones=[5]
        ),
    ),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_torch_for_30_steps(name):
    assert_same_schedule(*SCHEDULES[name])


@settings(max_examples=15, deadline=None)
@given(
    T_max=st.integers(1, 20), eta_min=st.floats(0.0, 0.01), step_size=st.integers(1, 10),
    gamma=st.floats(0.1, 1.0), lr=st.floats(1e-4, 1.0),
)
def test_cosine_and_step_schedules_match_torch_for_any_settings(T_max, eta_min, step_size, gamma,
                                                                 lr):
    assert_same_schedule(
        lambda o: CosineAnnealingLR(o, T_max, eta_min),
        lambda o: T.CosineAnnealingLR(o, T_max, eta_min), lrs=(lr,),
    )
    assert_same_schedule(
        lambda o: StepLR(o, step_size, gamma), lambda o: T.StepLR(o, step_size, gamma), lrs=(lr,),
    )


@settings(max_examples=15, deadline=None)
@given(
    warmup=st.integers(1, 10), decay=st.integers(1, 20), start=st.floats(0.01, 1.0),
    eta_min=st.floats(0.0, 1e-3),
)
def test_warmup_cosine_matches_torch_sequential_lr_for_any_settings(warmup, decay, start, eta_min):
    assert_same_schedule(
        lambda o: warmup_cosine(o, warmup, warmup + decay, start_factor=start, eta_min=eta_min),
        lambda o: T.SequentialLR(
            o, [T.LinearLR(o, start, 1.0, warmup), T.CosineAnnealingLR(o, decay, eta_min)],
            milestones=[warmup],
        ),
        steps=warmup + decay + 3,
    )


def test_warmup_cosine_hand_values():
    opt = our_optimizer(lrs=(1.0,))
    sched = warmup_cosine(opt, warmup_steps=4, total_steps=8)  # start_factor = 1/4
    expected = [0.25, 0.4375, 0.625, 0.8125, 1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5]
    got = [sched.lr_at(t)[0] for t in range(7)]
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    assert sched.lr_at(8) == [0.0]


def test_lr_at_is_the_lr_after_that_many_steps():
    opt = our_optimizer()
    sched = CosineAnnealingLR(opt, T_max=6)
    planned = [sched.lr_at(t) for t in range(10)]
    seen = []
    for _ in range(10):
        seen.append([g["lr"] for g in opt.param_groups])
        sched.step()
    assert seen == planned


def test_scheduler_resumes_from_its_json_state_bit_for_bit():
    opt = Adam([Parameter(np.zeros(3))], lr=0.01)
    sched = warmup_cosine(opt, 3, 20)
    for _ in range(7):
        sched.step()
    state = json.loads(json.dumps(sched.state_dict()))
    other_opt = Adam([Parameter(np.zeros(3))], lr=0.5)
    other = warmup_cosine(other_opt, 3, 20)
    other.load_state_dict(state)
    assert other_opt.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for _ in range(15):
        sched.step()
        other.step()
        assert other.get_last_lr() == sched.get_last_lr()


def test_scheduler_records_initial_lr_in_the_group_and_the_optimizer_state():
    opt = our_optimizer(lrs=(0.2,))
    StepLR(opt, 1, 0.5).step()
    hyper = opt.state_dict()["hyper"]["param_groups"][0]
    assert hyper["initial_lr"] == 0.2 and hyper["lr"] == 0.1


def test_scheduler_needs_a_gradproof_optimizer():
    with pytest.raises(InputTypeError, match="optimizer must be a gradproof.optim optimizer"):
        StepLR(torch_optimizer(), step_size=2)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda o: StepLR(o, step_size=0), "step_size must be a positive int"),
        (lambda o: StepLR(o, step_size=2.5), "step_size must be a positive int"),
        (lambda o: ExponentialLR(o, gamma=-0.5), "gamma must be >= 0"),
        (lambda o: CosineAnnealingLR(o, T_max=0), "T_max must be a positive int"),
        (lambda o: LinearLR(o, start_factor=0.0), r"start_factor must be in \(0, 1\]"),
        (lambda o: LinearLR(o, end_factor=1.5), r"end_factor must be in \[0, 1\]"),
        (lambda o: warmup_cosine(o, 10, 10), "total_steps must be > warmup_steps"),
        (lambda o: SequentialLR(o, [StepLR(o, 2)], milestones=[3]), "milestones must have"),
        (
            lambda o: SequentialLR(o, [StepLR(o, 2), StepLR(o, 2), StepLR(o, 2)], [5, 5]),
            "milestones must increase",
        ),
        (lambda o: SequentialLR(o, [StepLR(our_optimizer(), 2)], []), r"schedulers\[0\]"),
    ],
)
def test_bad_schedule_arguments_name_the_argument(make, match):
    with pytest.raises((InputError, InputTypeError), match=match):
        make(our_optimizer())


def test_loading_another_schedulers_state_is_an_error():
    opt = our_optimizer()
    with pytest.raises(InputError, match="StepLR"):
        StepLR(opt, 2).load_state_dict(ExponentialLR(opt, 0.9).state_dict())

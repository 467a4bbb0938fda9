"""Every optimizer follows torch.optim's trajectory step for step (float64 to 1e-10, float32)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gradproof
from gradproof.optim import SGD, AdaGrad, Adam, AdamW, RMSProp, warmup_cosine

from .problem import SETTINGS, TORCH_OPTIMIZERS, LeastSquares, follow_torch, setting_id


def follow(cls, kwargs, **options):
    return follow_torch(
        lambda ps: cls(ps, **kwargs),
        lambda ts: TORCH_OPTIMIZERS[cls](ts, **kwargs),
        **options,
    )


def test_the_test_problem_gradients_pass_the_checker():
    problem = LeastSquares.make(seed=3)
    b = problem.b0
    gradproof.check_grad(
        lambda w: problem.loss(w, b), lambda w: problem.grads(w, b)[0], problem.w0
    ).raise_if_failed()
    w = problem.w0
    gradproof.check_grad(
        lambda b: problem.loss(w, b), lambda b: problem.grads(w, b)[1], problem.b0
    ).raise_if_failed()


@pytest.mark.parametrize("setting", SETTINGS, ids=setting_id)
def test_follows_torch_for_50_steps_in_float64(setting):
    cls, kwargs = setting
    follow(cls, kwargs, steps=50)


@pytest.mark.parametrize("setting", SETTINGS, ids=setting_id)
def test_float32_parameters_stay_float32_and_follow_torch_float32(setting):
    cls, kwargs = setting
    ours = follow(cls, kwargs, steps=10, dtype=np.float32, rtol=1e-5)
    assert all(p.data.dtype == np.float32 for p in ours)


def test_float32_state_arrays_are_float32():
    problem = LeastSquares.make()
    params = problem.ours(np.float32)
    opt = Adam(params, lr=0.01, amsgrad=True, weight_decay=0.1)
    for _ in range(3):
        for p, g in zip(params, problem.grads(params[0].data, params[1].data)):
            p.grad[...] = g
        opt.step()
    arrays = opt.state_dict()["arrays"]
    assert len(arrays) == 6
    assert all(a.dtype == np.float32 for a in arrays.values())


@pytest.mark.parametrize("setting", SETTINGS[:3], ids=setting_id)
def test_float32_params_with_float64_grads_stay_float32(setting):
    cls, kwargs = setting
    p = gradproof.nn.Parameter(np.ones(3, dtype=np.float32))
    p.grad = np.full(3, 0.5, dtype=np.float64)
    cls([p], **kwargs).step()
    assert p.data.dtype == np.float32 and not np.allclose(p.data, 1.0)


# --- hyper-parameters drawn by hypothesis ------------------------------------
# torch's fused kernels (add_ with alpha, addcmul_, addcdiv_) round once (FMA) where
# NumPy rounds twice, so the two sides differ by an ulp from the first steps. A
# trajectory is comparable to 1e-10 only where it does not amplify that: Adam with
# beta2 ~ 0.5 (or RMSProp with alpha ~ 0.5) near the optimum takes sign-like steps
# whose direction hangs on tiny gradients, and an ulp grows ~10x per step (torch
# against itself, nudged by one ulp mid-run, does the same). Hence beta2, alpha >= 0.9
# (defaults 0.999 and 0.99) and lr <= 0.02: every corner of these boxes was run on
# 8 seeds without a miss (lr = 0.05 with beta1 = 0, beta2 = 0.9 already misses).
unit = st.floats(0.0, 0.99)
slow_decay = st.floats(0.9, 0.999)
HYPER = {
    SGD: st.builds(
        dict, lr=st.floats(1e-3, 0.2), momentum=unit, dampening=st.floats(0.0, 1.0),
        weight_decay=st.floats(0.0, 0.5),
    ),
    AdaGrad: st.builds(
        dict, lr=st.floats(1e-3, 0.5), lr_decay=st.floats(0.0, 0.5),
        weight_decay=st.floats(0.0, 0.5), initial_accumulator_value=st.floats(0.0, 1.0),
        eps=st.floats(1e-10, 1e-2),
    ),
    RMSProp: st.builds(
        dict, lr=st.floats(1e-4, 0.02), alpha=slow_decay, eps=st.floats(1e-8, 1e-2),
        weight_decay=st.floats(0.0, 0.5), momentum=st.floats(0.0, 0.9), centered=st.booleans(),
    ),
    Adam: st.builds(
        dict, lr=st.floats(1e-4, 0.02), betas=st.tuples(unit, slow_decay),
        eps=st.floats(1e-8, 1e-2), weight_decay=st.floats(0.0, 0.5), amsgrad=st.booleans(),
    ),
}
HYPER[AdamW] = HYPER[Adam]


@pytest.mark.parametrize("cls", list(HYPER), ids=lambda c: c.__name__)
@settings(max_examples=20, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_follows_torch_for_any_hyper_parameters(cls, data, seed):
    kwargs = data.draw(HYPER[cls], label="kwargs")
    follow(cls, kwargs, steps=30, seed=seed)


@settings(max_examples=10, deadline=None)
@given(momentum=st.floats(0.05, 0.95), lr=st.floats(1e-3, 0.1), seed=st.integers(0, 2**16))
def test_sgd_nesterov_follows_torch_for_any_momentum(momentum, lr, seed):
    follow(SGD, dict(lr=lr, momentum=momentum, nesterov=True), steps=30, seed=seed)


def test_param_groups_with_their_own_options_follow_torch():
    def groups(ps):
        return [
            {"params": [ps[0]], "momentum": 0.9, "nesterov": True},
            {"params": [ps[1]], "lr": 0.01},
        ]

    follow_torch(
        lambda ps: SGD(groups(ps), lr=0.05, weight_decay=0.01),
        lambda ts: torch.optim.SGD(groups(ts), lr=0.05, weight_decay=0.01),
    )


def test_lr_set_by_a_schedule_follows_torch_scheduler():
    def theirs(ts):
        topt = torch.optim.Adam(ts, lr=0.05)
        warm = torch.optim.lr_scheduler.LinearLR(topt, 0.2, 1.0, total_iters=5)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=45)
        topt.scheduler = torch.optim.lr_scheduler.SequentialLR(topt, [warm, cos], [5])
        return topt

    def ours(ps):
        opt = Adam(ps, lr=0.05)
        opt.scheduler = warmup_cosine(opt, 5, 50, start_factor=0.2)
        return opt

    def step_schedules(opt, topt):
        opt.scheduler.step()
        topt.scheduler.step()

    follow_torch(ours, theirs, after_step=step_schedules)

"""Bad arguments give gradproof errors that name the argument, what was expected and got."""

from __future__ import annotations

import numpy as np
import pytest

from gradproof.errors import InputError, InputTypeError
from gradproof.nn import Module, Parameter
from gradproof.optim import SGD, AdaGrad, Adam, AdamW, RMSProp

OPTIMIZERS = [SGD, AdaGrad, RMSProp, Adam, AdamW]


def params():
    return [Parameter(np.zeros((2, 3))), Parameter(np.zeros(3))]


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("lr", [-0.1, float("nan"), float("inf")])
def test_bad_lr_names_lr(cls, lr):
    with pytest.raises(InputError, match=f"{cls.__name__}: lr must be"):
        cls(params(), lr=lr)


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
def test_lr_that_is_not_a_number_is_a_type_error(cls):
    with pytest.raises(InputTypeError, match="lr must be a real number, got str"):
        cls(params(), lr="0.1")
    with pytest.raises(InputTypeError, match="lr must be a real number, got bool"):
        cls(params(), lr=True)


@pytest.mark.parametrize("cls", [Adam, AdamW], ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "betas, match",
    [((1.0, 0.999), r"betas\[0\] must be a number in \[0, 1\), got 1.0"),
     ((0.9, -0.1), r"betas\[1\] must be a number in \[0, 1\), got -0.1"),
     ((0.9, 1.5), r"betas\[1\] must be a number in \[0, 1\)")],
)
def test_betas_outside_0_1_name_the_beta(cls, betas, match):
    with pytest.raises(InputError, match=match):
        cls(params(), betas=betas)


def test_betas_that_are_not_a_pair_name_betas():
    with pytest.raises(InputError, match="betas must be a pair"):
        Adam(params(), betas=(0.9, 0.99, 0.999))
    with pytest.raises(InputTypeError, match="betas must be a pair"):
        Adam(params(), betas=0.9)


@pytest.mark.parametrize(
    "cls, option, value",
    [(SGD, "momentum", -0.5), (SGD, "weight_decay", -1e-4), (SGD, "dampening", 1.5),
     (AdaGrad, "lr_decay", -1.0), (AdaGrad, "initial_accumulator_value", -1.0),
     (AdaGrad, "eps", -1e-10), (RMSProp, "alpha", 1.1), (RMSProp, "momentum", -0.9),
     (Adam, "eps", -1e-8), (AdamW, "weight_decay", -0.01)],
)
def test_out_of_range_options_name_the_option(cls, option, value):
    with pytest.raises(InputError, match=f"{option} must be"):
        cls(params(), **{option: value})


@pytest.mark.parametrize(
    "cls, option", [(SGD, "nesterov"), (RMSProp, "centered"), (Adam, "amsgrad")]
)
def test_flags_must_be_bools(cls, option):
    with pytest.raises(InputTypeError, match=f"{option} must be True or False, got int"):
        cls(params(), **{option: 1})


def test_unknown_option_is_named_with_a_suggestion():
    with pytest.raises(InputTypeError, match="SGD has an unknown option 'momentun'; did you mean "
                                             "'momentum'"):
        SGD(params(), momentun=0.9)
    with pytest.raises(InputTypeError, match="Adam has an unknown option 'momentum'.*betas"):
        Adam(params(), momentum=0.9)


def test_nesterov_needs_momentum_and_no_dampening():
    with pytest.raises(InputError, match="nesterov=True needs momentum > 0"):
        SGD(params(), nesterov=True)
    with pytest.raises(InputError, match="dampening=0.5"):
        SGD(params(), momentum=0.9, dampening=0.5, nesterov=True)


def test_empty_params_is_an_error():
    with pytest.raises(InputError, match="params is empty"):
        Adam([])
    with pytest.raises(InputError, match="params is empty"):
        Adam(p for p in [])


def test_params_that_are_not_parameters_are_named_by_position():
    with pytest.raises(InputTypeError, match=r"params\[1\] must be a gradproof.nn.Parameter, "
                                             r"got array of shape \(3,\).*Parameter\(x\)"):
        SGD([Parameter(np.zeros(3)), np.zeros(3)])
    with pytest.raises(InputTypeError, match=r"params must be an iterable.*got array"):
        SGD(np.zeros(3))
    with pytest.raises(InputTypeError, match=r"params must be an iterable.*got int"):
        SGD(3)
    with pytest.raises(InputTypeError, match=r"put a param group in a list"):
        SGD({"params": [Parameter(np.zeros(3))]})


def test_a_module_instead_of_its_parameters_gets_a_hint():
    with pytest.raises(InputTypeError, match=r"pass model.parameters\(\)"):
        SGD(Module())


def test_integer_parameters_are_refused():
    with pytest.raises(InputTypeError, match=r"params\[0\].data must be a float array"):
        SGD([Parameter(np.zeros(3, dtype=np.int64))])


def test_a_parameter_given_twice_is_an_error():
    p = Parameter(np.zeros(3))
    with pytest.raises(InputError, match="same Parameter at positions 0 and 2"):
        SGD([p, Parameter(np.zeros(3)), p])


def test_param_group_errors_name_the_group():
    p, q = params()
    with pytest.raises(InputTypeError, match=r"param_groups\[1\] has an unknown option 'mom'"):
        SGD([{"params": [p]}, {"params": [q], "mom": 0.9}])
    with pytest.raises(InputError, match=r"param_groups\[1\]: lr must be >= 0"):
        SGD([{"params": [p]}, {"params": [q], "lr": -1.0}])
    with pytest.raises(InputTypeError, match=r"param_groups\[0\] must be a dict with a 'params'"):
        SGD([{"lr": 0.1}])
    with pytest.raises(InputError, match=r"param_groups\[0\]\['params'\] is empty"):
        SGD([{"params": []}])


def test_grad_of_the_wrong_shape_is_an_error_at_step():
    p = Parameter(np.zeros((2, 3)))
    p.grad = np.ones(3)  # would broadcast silently
    with pytest.raises(InputError, match=r"parameter 0 has data array of shape \(2, 3\).*grad"):
        SGD([p], lr=0.1).step()


def test_data_replaced_by_another_dtype_is_an_error_at_step():
    p = Parameter(np.zeros(3))
    opt = Adam([p])
    opt.step()
    p.data = p.data.astype(np.float32)
    p.grad = p.grad.astype(np.float32)
    with pytest.raises(InputError, match="build a new optimizer"):
        opt.step()

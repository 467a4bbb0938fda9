"""Weight initialisers: target statistics, fans, seeding, dtypes, names and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradproof.errors import InputError, InputTypeError
from gradproof.nn import init

BIG = (1000, 600)  # 600k draws: the sample std is within ~0.2% of the target
FAN_IN, FAN_OUT = BIG


def _std_target(name: str) -> float:
    return {
        "he_normal": math.sqrt(2 / FAN_IN),
        "he_uniform": math.sqrt(2 / FAN_IN),
        "xavier_normal": math.sqrt(2 / (FAN_IN + FAN_OUT)),
        "xavier_uniform": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    }[name]


@pytest.mark.parametrize("name", ["he_normal", "he_uniform", "xavier_normal", "xavier_uniform"])
def test_initializer_std_matches_its_formula_on_a_big_matrix(name):
    w = init.INITIALIZERS[name](BIG, rng=0)
    assert w.shape == BIG
    assert abs(w.std() / _std_target(name) - 1) < 0.01
    assert abs(w.mean()) < 0.01 * _std_target(name) * 3


@pytest.mark.parametrize(
    "name, bound", [("he_uniform", math.sqrt(6 / FAN_IN)),
                    ("xavier_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT)))],
)
def test_uniform_initializers_stay_inside_their_bound_and_fill_it(name, bound):
    w = init.INITIALIZERS[name](BIG, rng=1)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.999 * bound


def test_normal_with_a_fixed_std_has_that_std():
    w = init.normal(BIG, 0.05, rng=2)
    assert abs(w.std() / 0.05 - 1) < 0.01


def test_he_normal_is_gaussian_not_uniform():
    w = init.he_normal(BIG, rng=3) / _std_target("he_normal")
    # kurtosis of a normal is 3, of a uniform 1.8
    assert abs(np.mean(w**4) - 3) < 0.1


def test_zeros_are_zeros_of_the_dtype():
    w = init.zeros((3, 4), dtype=np.float32)
    assert w.dtype == np.float32 and not w.any()


@pytest.mark.parametrize(
    "shape, fans",
    [((7, 5), (7, 5)), ((6,), (6, 6)), ((8, 3, 5, 5), (3 * 25, 8 * 25)), ((4, 2, 3), (6, 12))],
)
def test_fans_follow_gradproof_weight_layouts(shape, fans):
    assert init.fans(shape) == fans


@settings(max_examples=15, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple),
    seed=st.integers(0, 2**32 - 1),
    name=st.sampled_from(sorted(init.INITIALIZERS)),
)
def test_same_seed_gives_the_same_array_in_both_dtypes(shape, seed, name):
    make = init.INITIALIZERS[name]
    a64 = make(shape, rng=seed, dtype=np.float64)
    again = make(shape, rng=np.random.default_rng(seed), dtype=np.float64)
    a32 = make(shape, rng=seed, dtype=np.float32)
    assert a64.dtype == np.float64 and a32.dtype == np.float32
    assert a64.shape == a32.shape == shape
    np.testing.assert_array_equal(a64, again)
    np.testing.assert_array_equal(a32, a64.astype(np.float32))


def test_a_shared_generator_advances_between_calls():
    rng = np.random.default_rng(0)
    first = init.he_normal((5, 5), rng=rng)
    second = init.he_normal((5, 5), rng=rng)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, init.he_normal((5, 5), rng=0))


def test_different_seeds_give_different_arrays():
    assert not np.array_equal(init.xavier_normal((4, 4), rng=0), init.xavier_normal((4, 4), rng=1))


@pytest.mark.parametrize(
    "spec, expected",
    [("he", init.he_normal), ("kaiming", init.he_normal), ("HE_UNIFORM", init.he_uniform),
     ("xavier", init.xavier_normal), ("glorot_uniform", init.xavier_uniform),
     ("zeros", init.zeros)],
)
def test_initializer_resolves_names_and_aliases(spec, expected):
    assert init.initializer(spec) is expected


def test_initializer_from_a_float_is_a_normal_with_that_std():
    make = init.initializer(0.01)
    w = make((4, 3), 5, np.float32)
    np.testing.assert_array_equal(w, init.normal((4, 3), 0.01, rng=5, dtype=np.float32))


def test_unknown_initializer_name_is_an_error_naming_the_argument():
    with pytest.raises(InputError, match=r"init must be one of .*'he'.* got 'kaiming_fancy'"):
        init.initializer("kaiming_fancy")


@pytest.mark.parametrize("spec", [None, [0.1], True])
def test_initializer_of_the_wrong_type_is_a_type_error(spec):
    with pytest.raises(InputTypeError, match="init must be"):
        init.initializer(spec)


def test_negative_std_is_an_error():
    with pytest.raises(InputError, match="std"):
        init.initializer(-0.1)
    with pytest.raises(InputError, match="std"):
        init.normal((2, 2), -1.0)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, "complex128", "nonsense"])
def test_only_float32_and_float64_dtypes_are_accepted(dtype):
    with pytest.raises(InputError, match="dtype must be np.float32 or np.float64"):
        init.he_normal((2, 2), dtype=dtype)


@pytest.mark.parametrize("shape", [(0, 3), (), (2, -1)])
def test_empty_or_negative_shapes_are_errors(shape):
    with pytest.raises(InputError, match="shape"):
        init.he_normal(shape)


def test_rng_of_the_wrong_type_is_an_error_naming_rng():
    with pytest.raises(InputTypeError, match="rng must be a numpy.random.Generator"):
        init.he_normal((2, 2), rng="seed")

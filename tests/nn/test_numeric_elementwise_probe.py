"""gradproof.nn.numeric_layer: the elementwise fast path is taken only where it is right.

Regression for issue 10, item 6: ``numeric(f)`` used to decide "elementwise"
from a 16-value sample of x, which for x of <= 16 values is a permutation of
x -- softmax, ``x - x.mean()`` and ``x / norm(x)`` passed and got gradients
80-120 % wrong -- and cached that decision per layer, so a later batch of
another shape inherited it. Now the structure is verified per (shape, dtype)
by a probe that any output depending on another coordinate's input fails.
Every gradient here is compared with torch autograd (float64).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_oracle import assert_close, random_like, to_torch, torch_vjp

from gradproof.errors import InputError
from gradproof.nn.numeric_layer import NotElementwiseWarning, elementwise_probe, numeric


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# name -> (numpy f, torch f); whether the Jacobian is diagonal is asked of torch, per shape
FUNCTIONS = {
    "tanh": (np.tanh, torch.tanh),
    "cube": (lambda x: x ** 3, lambda t: t ** 3),
    "exp": (np.exp, torch.exp),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.1 * x),
                   lambda t: torch.nn.functional.leaky_relu(t, 0.1)),
    "softmax": (_softmax, lambda t: torch.softmax(t, dim=-1)),
    "center": (lambda x: x - x.mean(), lambda t: t - t.mean()),
    "normalize": (lambda x: x / np.linalg.norm(x), lambda t: t / torch.linalg.norm(t)),
    "cumsum": (lambda x: np.cumsum(x, axis=-1), lambda t: torch.cumsum(t, dim=-1)),
    "reverse": (lambda x: x[::-1], lambda t: torch.flip(t, [0])),
    "roll": (lambda x: np.roll(x, 1), lambda t: torch.roll(t, 1)),
    "sort": (lambda x: np.sort(x, axis=-1), lambda t: torch.sort(t, dim=-1).values),
}
SHAPES = [(1,), (2,), (3,), (5,), (16,), (17,), (4, 3), (1, 16)]
F64 = np.dtype(np.float64)


def _x(shape, seed):
    """Standard normal, kept 0.1 away from leaky_relu's kink at 0 (a step of the fast path
    is ~6e-6)."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.where(np.abs(x) < 0.1, 0.1 + np.abs(x), x)


def _is_diagonal(torch_f, x):
    jac = torch.autograd.functional.jacobian(torch_f, to_torch(x)).reshape(x.size, x.size)
    return bool(torch.all(jac[~torch.eye(x.size, dtype=torch.bool)] == 0))


def _assert_right(name, layer, x, seed):
    """The layer's forward and backward at x against torch's VJP (normwise rtol 1e-5)."""
    out, cache = layer.forward(x)
    dout = random_like(out, seed=seed)
    dx = layer.backward(dout, cache)
    _, (t_dx,) = torch_vjp(FUNCTIONS[name][1], [x], dout)
    # floor: a mathematically zero gradient (normalize of one value) comes back as
    # rounding noise of the size of eps * |dout|, from torch as from the layer
    floor = 1e-4 * float(np.max(np.abs(dout), initial=0.0)) + 1e-10
    assert_close(dx, t_dx, rtol=1e-5, floor=floor, name=f"{name} dx, x of shape {x.shape}")


@pytest.mark.filterwarnings("ignore::gradproof.nn.NumericCostWarning")
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_numeric_gradients_are_right_for_elementwise_and_mixing_functions(name, shape):
    x = _x(shape, seed=len(name) + len(shape))
    diagonal = _is_diagonal(FUNCTIONS[name][1], x)
    layer = numeric(FUNCTIONS[name][0], name=name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _assert_right(name, layer, x, seed=3)
    fell_back = [w for w in caught if issubclass(w.category, NotElementwiseWarning)]
    assert layer.structure == {(shape, F64): diagonal}
    assert len(fell_back) == (not diagonal)


@pytest.mark.filterwarnings("ignore::gradproof.nn.NumericCostWarning")
@pytest.mark.filterwarnings("ignore::gradproof.nn.NotElementwiseWarning")
@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(FUNCTIONS)),
       shape=st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple),
       seed=st.integers(0, 2 ** 16))
def test_numeric_gradients_are_right_on_any_shape(name, shape, seed):
    _assert_right(name, numeric(FUNCTIONS[name][0], name=name), _x(shape, seed), seed)


@pytest.mark.filterwarnings("ignore::gradproof.nn.NumericCostWarning")
@pytest.mark.filterwarnings("ignore::gradproof.nn.NotElementwiseWarning")
@pytest.mark.parametrize("name, shapes", [
    ("softmax", [(1,), (5,), (1,), (4, 3)]),      # trivially elementwise first, then not
    ("center", [(16,), (17,), (4, 3), (1,)]),
    ("normalize", [(2,), (1, 16), (3,)]),
    ("sort", [(1, 16), (16, 1), (3,)]),             # (16, 1): sort along a length-1 axis
    ("tanh", [(5,), (3, 4), (1,)]),
])
def test_one_layer_on_several_shapes_is_right_on_each(name, shapes):
    layer = numeric(FUNCTIONS[name][0], name=name)
    for i, shape in enumerate(shapes):
        x = _x(shape, seed=i)
        _assert_right(name, layer, x, seed=i)
        assert layer.structure[(shape, F64)] == _is_diagonal(FUNCTIONS[name][1], x)
    assert len(layer.structure) == len(set(shapes))


def test_the_decision_is_cached_per_shape_and_dtype():
    calls = []
    layer = numeric(lambda v: calls.append(v.dtype) or np.tanh(v))
    layer.forward(np.ones(8))
    assert len(calls) == 1 + 4  # f(x), then the probe: 1 + ceil(log2 8)
    layer.forward(np.ones(8))
    assert len(calls) == 6
    layer.forward(np.ones(8, np.float32))  # a new dtype is probed again
    assert len(calls) == 6 + 1 + 4
    assert layer.structure == {((8,), F64): True, ((8,), np.dtype(np.float32)): True}


@pytest.mark.parametrize("shape", [(2,), (5,), (4, 3)], ids=str)
def test_elementwise_true_raises_naming_f_and_shape_when_f_mixes(shape):
    layer = numeric(_softmax, elementwise=True)
    layer.forward(np.ones(1))  # a single value: trivially elementwise
    escaped = str(shape).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(InputError, match=rf"_softmax.*not elementwise on x of shape {escaped}"):
        layer.forward(_x(shape, seed=0))


def test_elementwise_true_raises_when_f_changes_the_shape():
    layer = numeric(lambda v: v.sum(axis=-1), elementwise=True, name="rowsum")
    with pytest.raises(InputError, match=r"rowsum.*changes the shape: x \(2, 3\) -> out \(2,\)"):
        layer.forward(np.ones((2, 3)))


def test_a_fallback_warns_once_per_shape_with_the_shape_and_the_cost():
    layer = numeric(FUNCTIONS["center"][0], name="center")
    with pytest.warns(NotElementwiseWarning, match=r"center.*shape \(3,\).*6 calls of f"):
        layer.forward(_x((3,), seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotElementwiseWarning)
        layer.forward(_x((3,), seed=1))  # decided: no new probe, no new warning
    with pytest.warns(NotElementwiseWarning, match=r"shape \(2, 2\)"):
        layer.forward(_x((2, 2), seed=2))


def test_the_probe_finds_a_single_dependency_between_any_two_coordinates():
    """Sparse Jacobians: out[i] += 0.1 x[j] for one pair, every pair of 6 coordinates and
    pairs spread over 33; the probe's bit sets split every pair both ways."""
    x = _x((33,), seed=5)
    pairs = [(i, j) for i in range(6) for j in range(6) if i != j]
    pairs += [(0, 32), (32, 0), (31, 32), (16, 17), (1, 30)]
    for i, j in pairs:
        def f(v, i=i, j=j):
            out = np.tanh(v)
            out[..., i] += 0.1 * v[..., j]
            return out

        xs = x[:6] if max(i, j) < 6 else x
        reason = elementwise_probe(f, xs, f(xs))
        assert reason is not None and f"out[{i}]" in reason, (i, j, reason)


@pytest.mark.parametrize("n", [2, 3, 8, 17])
def test_the_probe_catches_sort_on_already_sorted_values(n):
    """Where sort's Jacobian happens to be the identity: the moves reorder the values."""
    x = np.sort(_x((n,), seed=n))
    assert elementwise_probe(np.sort, x, np.sort(x)) is not None


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("f", [np.tanh, np.log, np.sqrt, np.exp], ids=lambda f: f.__name__)
def test_the_probe_passes_elementwise_functions_including_at_domain_edges(f, dtype):
    x = np.abs(_x((7, 9), seed=2)).astype(dtype)
    x[0, :3] = 0.0  # log(0) = -inf: a ReLU output fed to log
    with np.errstate(all="ignore"):
        assert elementwise_probe(f, x, f(x)) is None


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_the_probe_catches_mixing_on_constant_inputs(dtype):
    """All values equal: the moves are the small steps alone, still far above rounding."""
    x = np.ones(6, dtype)
    for name in ("softmax", "center", "normalize", "cumsum", "roll"):
        f = FUNCTIONS[name][0]
        assert elementwise_probe(f, x, f(x)) is not None, name


def test_the_probe_costs_1_plus_log2_n_calls_and_stops_at_the_first_dependency():
    counted = []

    def tanh(v):
        counted.append(1)
        return np.tanh(v)

    for n, expected in [(1, 0), (2, 2), (16, 5), (17, 6), (1000, 11)]:
        counted.clear()
        x = _x((n,), seed=n)
        assert elementwise_probe(tanh, x, np.tanh(x)) is None
        assert len(counted) == expected, n
    counted.clear()
    x = _x((1000,), seed=0)
    assert elementwise_probe(lambda v: counted.append(1) or _softmax(v), x, _softmax(x))
    assert len(counted) == 2


@pytest.mark.filterwarnings("ignore::gradproof.nn.NumericCostWarning")
def test_a_decision_made_where_f_is_not_finite_is_not_cached():
    """softmax of NaNs is NaN wherever x moves: nothing shows that it mixes."""
    layer = numeric(_softmax, name="softmax")
    with np.errstate(invalid="ignore"):
        out, cache = layer.forward(np.full(5, np.nan))
        assert np.all(np.isnan(layer.backward(np.ones(5), cache)))
    assert layer.structure == {}
    with pytest.warns(NotElementwiseWarning):
        _assert_right("softmax", layer, _x((5,), seed=2), seed=2)
    assert layer.structure == {((5,), F64): False}

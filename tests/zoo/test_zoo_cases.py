"""Sanity of the bug zoo itself (not of the checker).

- every case runs and its gradients have the right structure;
- every bug case behaves differently from its correct twin on the same input
  (values, shape, dtype, side effects, determinism or linearity);
- every correct case agrees with a float64 numerical directional derivative,
  every kink case does so at a nearby smooth point and really sits on a kink.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradproof.zoo import FAMILIES, KINDS, cases
from gradproof.zoo.case import Case

ALL = cases()
BUGS = cases(kind="bug")
CLEAN = {name: c for name, c in ALL.items() if c.kind != "bug"}
KINKS = cases(kind="kink")


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def _is_float(x):
    return isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)


def _douts(out, seed=7):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(np.shape(o)).astype(np.asarray(o).dtype)
                 for o in _as_tuple(out))


def _cache_arrays(cache, depth=0):
    """Arrays reachable from a cache (tuples, lists, dicts, closure cells)."""
    if depth > 3:
        return []
    if isinstance(cache, np.ndarray):
        return [cache]
    if isinstance(cache, (tuple, list)):
        return [a for item in cache for a in _cache_arrays(item, depth + 1)]
    if isinstance(cache, dict):
        return [a for item in cache.values() for a in _cache_arrays(item, depth + 1)]
    if callable(cache) and getattr(cache, "__closure__", None):
        return [a for cell in cache.__closure__ for a in _cache_arrays(cell.cell_contents,
                                                                       depth + 1)]
    return []


def _snapshot(arrays):
    return [a.copy() for a in arrays]


def _unchanged(arrays, saved):
    return all(np.array_equal(a, s, equal_nan=True) for a, s in zip(arrays, saved))


def behaviour(forward, backward, case: Case) -> dict:
    """What a forward/backward pair does on the case's inputs, as comparable items."""
    inputs = case.inputs()
    saved_inputs = _snapshot([x for x in inputs if isinstance(x, np.ndarray)])
    out, cache = forward(*inputs)
    outs = [np.array(o) for o in _as_tuple(out)]
    inputs_kept = _unchanged([x for x in inputs if isinstance(x, np.ndarray)], saved_inputs)
    again = [np.array(o) for o in _as_tuple(forward(*case.inputs())[0])]
    douts = _douts(out)
    saved_douts = _snapshot(douts)
    cache_arrays = _cache_arrays(cache)
    saved_cache = _snapshot(cache_arrays)
    grads = _as_tuple(backward(*[d.copy() for d in douts], cache))
    grads = [None if g is None else np.array(g) for g in grads]
    backward(*douts, forward(*case.inputs())[1])  # the originals: may write into them
    douts_kept = _unchanged(douts, saved_douts)
    _, cache2 = forward(*case.inputs())
    first = _as_tuple(backward(*[d.copy() for d in saved_douts], cache2))
    second = _as_tuple(backward(*[d.copy() for d in saved_douts], cache2))
    doubled = _as_tuple(backward(*[2 * d for d in saved_douts], forward(*case.inputs())[1]))
    return {
        "outs": outs,
        "deterministic": all(np.array_equal(a, b, equal_nan=True) for a, b in zip(outs, again)),
        "inputs_kept": inputs_kept,
        "grads": grads,
        "douts_kept": douts_kept,
        "cache_kept": _unchanged(cache_arrays, saved_cache),
        "repeatable": all(_same(a, b) for a, b in zip(first, second)),
        "linear": all(_same(2 * np.asarray(a), b) for a, b in zip(first, doubled)
                      if a is not None),
    }


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    return (a.shape == b.shape and a.dtype == b.dtype
            and bool(np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True)))


def _differences(bug: dict, twin: dict) -> list[str]:
    found = []
    for key, value in bug.items():
        other = twin[key]
        if isinstance(value, list):
            if len(value) != len(other) or not all(_same(a, b) for a, b in zip(value, other)):
                found.append(key)
        elif value != other:
            found.append(key)
    return found


# --- the zoo's inventory ---------------------------------------------------------------


def test_zoo_has_at_least_30_bugs_and_20_awkward_or_kink_cases():
    assert len(BUGS) >= 30
    assert len(cases(family="awkward")) + len(KINKS) >= 20


def test_every_case_has_a_known_kind_family_and_description():
    for case in ALL.values():
        assert case.kind in KINDS and case.family in FAMILIES and case.description


def test_every_bug_has_an_expect_hint_and_a_twin():
    for case in BUGS.values():
        assert case.expect
        assert case.ref_forward is not None or case.ref_backward is not None


def test_inputs_are_the_same_on_every_call():
    for case in ALL.values():
        for a, b in zip(case.inputs(), case.inputs()):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_correct_case_gradients_match_inputs_in_number_shape_and_dtype(name):
    case = ALL[name]
    inputs = case.inputs()
    out, cache = case.forward(*inputs)
    grads = _as_tuple(case.backward(*_douts(out), cache))
    assert len(grads) == len(inputs)
    for x, g in zip(inputs, grads):
        if _is_float(x):
            assert g.shape == x.shape and g.dtype == x.dtype
        else:
            assert g is None


# --- bugs are real ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUGS))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # some bugs divide 0 by 0 on purpose
def test_bug_behaves_differently_from_its_correct_twin(name):
    case = BUGS[name]
    bug = behaviour(case.forward, case.backward, case)
    twin = behaviour(*case.reference, case)
    assert _differences(bug, twin), f"{name}: the bug does exactly what its twin does"


@pytest.mark.parametrize("name", sorted(BUGS))
def test_bug_twin_is_itself_clean(name):
    twin = behaviour(*BUGS[name].reference, BUGS[name])
    flags = ("deterministic", "inputs_kept", "douts_kept", "cache_kept", "repeatable", "linear")
    assert all(twin[key] for key in flags), {key: twin[key] for key in flags}
    assert all(g is None or np.all(np.isfinite(g)) for g in twin["grads"])

"""The zoo's structured, spatial, sequence, domain and precision cases are well formed.

No gradient checker runs here. These cases exist to test one (issue 10: an OK
must be a certificate), so they must be what they claim:

- every bug has a registered correct twin (same forward, inputs and ``wrt``);
- a bug's gradients differ from its twin's only inside its ``region``, and
  there on every coordinate where either is nonzero; the region is a structure
  (a column, a stride, one entry per row, ...), not one contiguous block;
- every twin agrees with columns of a finite-difference Jacobian on a random
  slice of coordinates (slices inside its bugs' regions included): float64
  central differences, at float32's resolution for code that computes in
  float32, one-sided at the exact zeros of a domain edge;
- "computes in float32" and "domain ends at 0" hold as stated.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradproof.zoo import cases

FAMILIES = ("structured", "spatial", "sequence", "domain", "precision")
STRUCTURED = ("structured", "spatial", "sequence")
CASES = {name: c for name, c in cases().items() if c.family in FAMILIES}
BUGS = {name: c for name, c in CASES.items() if c.kind == "bug"}
TWINS = {name: c for name, c in CASES.items() if c.kind == "correct"}
REGIONED = {name: c for name, c in BUGS.items() if c.region is not None}


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def _is_float(x):
    return isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)


def _checked(case, inputs):
    return [i for i, x in enumerate(inputs) if _is_float(x) and (case.wrt is None or i in case.wrt)]


def _douts(out, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(np.shape(o)).astype(np.asarray(o).dtype) for o in _as_tuple(out)]


def _gradients(forward, backward, inputs, douts):
    _, cache = forward(*inputs)
    return [None if g is None else np.asarray(g, dtype=np.float64)
            for g in _as_tuple(backward(*[d.copy() for d in douts], cache))]


def _twin_of(bug):
    forward, backward = bug.reference
    for case in TWINS.values():
        if (case.forward is forward and case.backward is backward
                and case.make_inputs is bug.make_inputs and case.wrt == bug.wrt):
            return case
    return None


# --- inventory --------------------------------------------------------------------------------


def test_new_families_hold_at_least_30_bugs_in_every_family():
    assert len(BUGS) >= 30
    assert {c.family for c in BUGS.values()} == set(FAMILIES)


@pytest.mark.parametrize("name", sorted(BUGS))
def test_bug_has_a_registered_correct_twin(name):
    assert _twin_of(BUGS[name]) is not None, f"{name}: no correct case runs its twin"


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.family in STRUCTURED))
def test_structured_case_has_a_realistic_size(name):
    case = CASES[name]
    inputs = case.inputs()
    assert sum(inputs[i].size for i in _checked(case, inputs)) >= 4096


# --- bugs differ from their twins exactly where they say --------------------------------------


def _differs(a, b):
    scale = max(float(np.abs(b).max()), 1e-300)
    return ~np.isclose(a, b, rtol=1e-10, atol=1e-12 * scale)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", sorted(REGIONED))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_bug_differs_from_its_twin_only_inside_its_region(name, seed):
    bug = REGIONED[name]
    inputs = bug.inputs()
    douts = _douts(bug.forward(*inputs)[0], seed)
    wrong = _gradients(bug.forward, bug.backward, inputs, douts)
    right = _gradients(*bug.reference, inputs, douts)
    region = bug.region(inputs)
    assert set(region) <= set(range(len(inputs))) and region
    for i in _checked(bug, inputs):
        differs = _differs(wrong[i], right[i])
        where = region.get(i)
        if where is None:
            assert not differs.any(), f"input {i} differs but is not in the region"
            continue
        assert where.shape == inputs[i].shape and where.dtype == bool
        assert not (differs & ~where).any(), f"input {i} differs outside its region"
        live = where & ((wrong[i] != 0) | (right[i] != 0))
        assert live.any() and differs[live].all(), f"input {i}: some live region coords agree"


@pytest.mark.parametrize("name", sorted(set(BUGS) - set(REGIONED)))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_unstructured_bug_differs_from_its_twin_on_most_coordinates(name):
    bug = BUGS[name]
    inputs = bug.inputs()
    douts = _douts(bug.forward(*inputs)[0], 0)
    wrong = _gradients(bug.forward, bug.backward, inputs, douts)
    right = _gradients(*bug.reference, inputs, douts)
    fractions = [_differs(wrong[i], right[i]).mean() for i in _checked(bug, inputs)]
    assert max(fractions) >= 0.4, fractions


def _one_block(where):
    flat = np.flatnonzero(where.ravel())
    return flat.size == 0 or flat[-1] - flat[0] + 1 == flat.size


@pytest.mark.parametrize("name", sorted(n for n, c in REGIONED.items() if c.family in STRUCTURED))
def test_region_is_a_structure_not_one_block(name):
    case = REGIONED[name]
    masks = case.region(case.inputs()).values()
    partial = [m for m in masks if not m.all()]
    assert all(m.all() for m in masks) or any(not _one_block(m) for m in partial)


# --- twins agree with finite differences ------------------------------------------------------


def _slice(case, inputs, i, rng):
    """A few coordinates of input i: random ones, exact zeros, and ones inside its bugs' regions."""
    x = inputs[i]
    picks = [tuple(rng.integers(0, n) for n in x.shape) for _ in range(4)]
    if i in case.nonnegative:
        zeros = np.argwhere(x == 0)
        picks += [tuple(zeros[k]) for k in rng.choice(len(zeros), size=2, replace=False)]
    for bug in BUGS.values():
        if bug.region is not None and _twin_of(bug) is case and i in bug.region(inputs):
            inside = np.argwhere(bug.region(inputs)[i])
            picks += [tuple(inside[k]) for k in rng.choice(len(inside), size=2)]
    return picks


def _jacobian_column(case, inputs, i, coord, step, one_sided):
    """d out / d x_i[coord] by Richardson-extrapolated differences, in float64."""
    def out_at(delta):
        x = inputs[i].astype(np.float64)
        x[coord] += delta
        args = list(inputs)
        args[i] = x.astype(inputs[i].dtype) if case.computes_in else x
        return [np.asarray(o, dtype=np.float64) for o in _as_tuple(case.forward(*args)[0])]

    def slope(h):
        if one_sided:
            return [(a - b) / h for a, b in zip(out_at(h), out_at(0.0))]
        return [(a - b) / (2 * h) for a, b in zip(out_at(h), out_at(-h))]

    coarse, fine = slope(step), slope(step / 2)
    return [(4 * f - c) / 3 for f, c in zip(fine, coarse)]


def _float64_twin_inputs(case):
    """float16 code is dtype-generic: its twin is checked on float64 copies."""
    return tuple(x.astype(np.float64) if _is_float(x) and x.dtype == np.float16 else x
                 for x in case.inputs())


@pytest.mark.parametrize("name", sorted(TWINS))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_twin_matches_finite_difference_jacobian_on_a_random_slice(name):
    case = TWINS[name]
    inputs = _float64_twin_inputs(case)
    out = case.forward(*inputs)[0]
    douts = [_douts(out, 3), _douts(out, 4)]
    grads = [_gradients(case.forward, case.backward, inputs, d) for d in douts]
    float32 = case.computes_in == "float32"
    rtol, atol = (1e-3, 2e-3) if float32 else (1e-6, 1e-9)
    rng = np.random.default_rng(5)
    for i in _checked(case, inputs):
        x = inputs[i]
        spread = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        for coord in _slice(case, inputs, i, rng):
            value = abs(float(x[coord]))
            step = (3e-2 if float32 else 1e-4) * max(value, spread)
            one_sided = i in case.nonnegative and value == 0
            if i in case.nonnegative and not one_sided:
                step = min(step, value / 4)  # stay inside the domain
            if one_sided:
                step = 1e-12
            column = _jacobian_column(case, inputs, i, coord, step, one_sided)
            for d, g in zip(douts, grads):
                numeric = sum(float(np.sum(dj * cj)) for dj, cj in zip(d, column))
                analytic = float(g[i][coord])
                scale = float(np.abs(g[i]).max())
                tol = rtol * abs(analytic) + atol * scale + (1e-4 * scale if one_sided else 0)
                assert abs(numeric - analytic) <= tol, (
                    f"input {i} at {coord}: analytic {analytic!r} vs numeric {numeric!r}")


# --- precision and domain cases are what they say ---------------------------------------------


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.computes_in))
def test_float32_forward_rounds_to_float32_even_for_float64_inputs(name):
    case = CASES[name]
    inputs = tuple(x.astype(np.float64) if _is_float(x) else x for x in case.inputs())
    for out in _as_tuple(case.forward(*inputs)[0]):
        out = np.asarray(out)
        values = out.astype(np.float64)
        assert np.array_equal(values.astype(np.float32).astype(np.float64), values)
        native = [x.dtype for x in case.inputs() if _is_float(x)]
        if all(d == np.float32 for d in native):  # float32-only code: output stays float32
            assert out.dtype == np.float32
        else:  # float64 forward computing in float32: the dtype hides it
            assert out.dtype == np.float64


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.nonnegative))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_domain_case_sits_on_its_edge_and_is_undefined_below_it(name):
    case = CASES[name]
    inputs = case.inputs()
    for i in case.nonnegative:
        x = inputs[i]
        assert (x >= 0).all() and (x == 0).mean() > 0.1
        below = x.copy()
        below[tuple(np.argwhere(x == 0)[0])] = -1e-9
        args = list(inputs)
        args[i] = below
        try:
            out = case.forward(*args)[0]
        except ValueError:
            continue
        assert np.isnan(out).any()


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items()
                                        if any(_is_float(x) and x.dtype == np.float16
                                               for x in c.inputs())))
def test_float16_case_computes_and_returns_float16(name):
    case = CASES[name]
    inputs = case.inputs()
    out, cache = case.forward(*inputs)
    assert np.asarray(out).dtype == np.float16
    grads = _as_tuple(case.backward(*_douts(out, 0), cache))
    assert all(g.dtype == np.float16 for g, x in zip(grads, inputs) if _is_float(x))

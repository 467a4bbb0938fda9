"""Dataset container, splitting, standardisation and minibatches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import StandardScaler

from gradproof.data import (
    Dataset,
    Standardizer,
    minibatches,
    standardize,
    train_val_test_split,
)
from gradproof.errors import InputError, InputTypeError


def labelled(n: int, num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x whose first column is the example's index (to follow examples through splits)."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.arange(n, dtype=np.float64), rng.standard_normal((n, 3))])
    y = rng.integers(0, num_classes, n)
    return x, y


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(20, 300),
    num_classes=st.integers(2, 5),
    val=st.floats(0.0, 0.4),
    test=st.floats(0.0, 0.4),
    stratify=st.booleans(),
)
def test_split_partitions_every_example_once_with_exact_sizes(n, num_classes, val, test,
                                                              stratify):
    x, y = labelled(n, num_classes)
    data = train_val_test_split(x, y, val, test, seed=1, num_classes=num_classes,
                                stratify=stratify)
    ids = np.concatenate([data.x_train[:, 0], data.x_val[:, 0], data.x_test[:, 0]])
    assert np.array_equal(np.sort(ids), np.arange(n))
    assert len(data.y_test) == int(round(test * n))
    assert len(data.y_val) == int(round(val * n))
    for split in ("train", "val", "test"):
        xs, ys = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        assert np.array_equal(y[xs[:, 0].astype(int)], ys)  # labels travel with their inputs


def test_stratified_split_keeps_class_proportions():
    y = np.repeat(np.arange(4), [400, 200, 100, 300])
    x = np.random.default_rng(0).standard_normal((1000, 2))
    data = train_val_test_split(x, y, 0.1, 0.2, seed=3)
    for ys, size in ((data.y_test, 200), (data.y_val, 100)):
        expected = np.array([400, 200, 100, 300]) * size / 1000
        assert np.abs(np.bincount(ys, minlength=4) - expected).max() <= 1


def test_split_is_reproducible_by_seed_and_differs_across_seeds():
    x, y = labelled(100, 3)
    a = train_val_test_split(x, y, 0.1, 0.2, seed=5)
    b = train_val_test_split(x, y, 0.1, 0.2, seed=5)
    c = train_val_test_split(x, y, 0.1, 0.2, seed=6)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_test, c.x_test)


@pytest.mark.parametrize(
    "val, test, message",
    [(0.5, 0.5, "must be < 1"), (-0.1, 0.2, "val_fraction"), (0.1, 1.0, "test_fraction")],
)
def test_split_rejects_bad_fractions_naming_them(val, test, message):
    x, y = labelled(10, 2)
    with pytest.raises(InputError, match=message):
        train_val_test_split(x, y, val, test)


def test_split_rejects_non_numeric_fraction():
    x, y = labelled(10, 2)
    with pytest.raises(InputTypeError, match="val_fraction"):
        train_val_test_split(x, y, "0.1", 0.2)


def test_nan_in_data_is_refused_with_its_position():
    x, y = labelled(10, 2)
    x[4, 2] = np.nan
    with pytest.raises(InputError, match=r"1 NaN or infinite values \(first at index \(4, 2\)\)"):
        train_val_test_split(x, y)


@pytest.mark.parametrize(
    "x, y, error, message",
    [
        (np.zeros((4, 2)), np.zeros(3, int), InputError, r"y must have shape \(N,\) = \(4,\)"),
        (np.zeros((4, 2), int), np.zeros(4, int), InputTypeError, "x must be a float array"),
        (np.zeros((4, 2)), np.zeros(4), InputTypeError, "y must be integer class labels"),
        (np.zeros((4, 2)), -np.ones(4, int), InputError, "labels y must be >= 0"),
    ],
)
def test_dataset_rejects_bad_arrays(x, y, error, message):
    with pytest.raises(error, match=message):
        Dataset(x, y, x, y, x, y, 2, "toy")


def test_dataset_rejects_labels_beyond_num_classes():
    x, y = np.zeros((3, 2)), np.array([0, 1, 2])
    with pytest.raises(InputError, match="label 2 but num_classes is 2"):
        Dataset(x, y, x, y, x, y, 2, "toy")


def test_dataset_rejects_splits_of_different_feature_shapes():
    y = np.zeros(3, int)
    with pytest.raises(InputError, match="share feature shape"):
        Dataset(np.zeros((3, 2)), y, np.zeros((3, 4)), y, np.zeros((3, 2)), y, 2, "toy")


def test_dataset_astype_changes_inputs_only():
    x, y = labelled(20, 2)
    data = train_val_test_split(x, y).astype(np.float32)
    assert data.x_train.dtype == data.x_val.dtype == data.x_test.dtype == np.float32
    assert data.y_train.dtype == y.dtype
    with pytest.raises(InputError, match="float32 or float64"):
        data.astype(np.int32)


def test_standardizer_matches_sklearn_on_train_and_applies_train_stats_to_test():
    rng = np.random.default_rng(0)
    x_train = rng.normal(3.0, 2.0, (50, 4))
    x_train[:, 2] = 7.0  # a constant feature: scaled by 1, not divided by 0
    x_test = rng.normal(3.0, 2.0, (20, 4))
    ours = Standardizer().fit(x_train)
    sk = StandardScaler().fit(x_train)
    np.testing.assert_allclose(ours.transform(x_train), sk.transform(x_train), atol=1e-12)
    np.testing.assert_allclose(ours.transform(x_test), sk.transform(x_test), atol=1e-12)


def test_standardize_fits_on_the_training_split_only():
    rng = np.random.default_rng(1)
    y = np.zeros(30, int)
    x_train, x_test = rng.normal(0, 1, (30, 3)), rng.normal(10, 5, (30, 3))
    data = standardize(Dataset(x_train, y, x_train[:0], y[:0], x_test, y, 1, "toy"))
    np.testing.assert_allclose(data.x_train.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(data.x_train.std(0), 1, atol=1e-12)
    expected = (x_test - x_train.mean(0)) / x_train.std(0)
    np.testing.assert_allclose(data.x_test, expected, atol=1e-12)


def test_standardizer_keeps_float32_and_refuses_other_shapes():
    x = np.random.default_rng(2).standard_normal((10, 3)).astype(np.float32)
    scaler = Standardizer().fit(x)
    assert scaler.transform(x).dtype == np.float32
    with pytest.raises(InputError, match=r"shape \(N, \*\(3,\)\)"):
        scaler.transform(np.zeros((2, 4), np.float32))
    with pytest.raises(InputError, match="before fit"):
        Standardizer().transform(x)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 60), batch_size=st.integers(1, 25), drop_last=st.booleans())
def test_minibatches_visit_each_example_once(n, batch_size, drop_last):
    x, y = labelled(n, 3)
    batches = list(minibatches(x, y, batch_size, rng=0, drop_last=drop_last))
    sizes = [len(yb) for _, yb in batches]
    full, rest = divmod(n, batch_size)
    assert sizes == [batch_size] * full + ([rest] if rest and not drop_last else [])
    ids = np.concatenate([xb[:, 0] for xb, _ in batches]) if batches else np.array([])
    assert len(np.unique(ids)) == len(ids) == sum(sizes)
    for xb, yb in batches:
        assert np.array_equal(y[xb[:, 0].astype(int)], yb)


def test_minibatches_are_seeded_and_a_generator_advances_between_epochs():
    x, y = labelled(40, 2)
    first = [xb[:, 0] for xb, _ in minibatches(x, y, 8, rng=7)]
    again = [xb[:, 0] for xb, _ in minibatches(x, y, 8, rng=7)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    gen = np.random.default_rng(7)
    epoch1 = np.concatenate([xb[:, 0] for xb, _ in minibatches(x, y, 8, rng=gen)])
    epoch2 = np.concatenate([xb[:, 0] for xb, _ in minibatches(x, y, 8, rng=gen)])
    assert np.array_equal(epoch1, np.concatenate(first))
    assert not np.array_equal(epoch1, epoch2)
    ordered = np.concatenate([xb[:, 0] for xb, _ in minibatches(x, y, 8, shuffle=False)])
    assert np.array_equal(ordered, np.arange(40))


@pytest.mark.parametrize("batch_size, error", [(0, InputError), (2.5, InputTypeError)])
def test_minibatches_reject_bad_batch_size(batch_size, error):
    x, y = labelled(5, 2)
    with pytest.raises(error, match="batch_size must be a positive int"):
        next(minibatches(x, y, batch_size))

"""The built-in data sets: digits, MNIST-1D, the spiral, .npz files, lookup by name."""

from __future__ import annotations

import inspect
import random

import numpy as np
import pytest
import sklearn.datasets
from mnist1d.data import get_dataset_args, make_dataset

from gradproof.data import (
    load_dataset,
    load_digits,
    load_mnist1d,
    load_npz,
    load_spiral,
    make_spiral,
)
from gradproof.errors import InputError, InputTypeError


def rows_of(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in np.ascontiguousarray(x.reshape(len(x), -1))}


def test_digits_splits_are_sklearns_images_and_labels():
    data = load_digits(standardize=False, seed=0)
    bunch = sklearn.datasets.load_digits()
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (1258, 180, 359)
    assert data.feature_shape == (64,) and data.num_classes == 10
    by_row = {row.tobytes(): label for row, label in zip(bunch.data.astype(np.float64),
                                                         bunch.target)}
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert all(by_row[row.tobytes()] == label for row, label in zip(x, y))
    assert rows_of(data.x_train).isdisjoint(rows_of(data.x_test))


def test_digits_images_layout_and_float32():
    data = load_digits(flatten=False, dtype=np.float32)
    assert data.x_train.shape[1:] == (1, 8, 8) and data.dtype == np.float32
    np.testing.assert_allclose(data.x_train.mean(0), 0, atol=1e-5)


def test_mnist1d_matches_the_packages_generator_and_split():
    args = get_dataset_args()
    args.num_samples, args.train_split = 500, 0.8  # the paper's recipe, 10x smaller
    reference = make_dataset(args)
    data = load_mnist1d(num_train=400, num_test=100, seed=args.seed, standardize=False)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (360, 40, 100)
    assert np.array_equal(data.x_test, reference["x_test"])
    assert np.array_equal(data.y_test, reference["y_test"])
    assert rows_of(np.concatenate([data.x_train, data.x_val])) == rows_of(reference["x"])


def test_mnist1d_defaults_are_the_papers_data_set():
    """With the test above: the defaults generate the paper's 4000 / 1000 examples."""
    paper = get_dataset_args()
    defaults = inspect.signature(load_mnist1d).parameters
    num_train, num_test = defaults["num_train"].default, defaults["num_test"].default
    assert num_train + num_test == paper.num_samples == 5000
    assert num_train / (num_train + num_test) == paper.train_split
    assert defaults["seed"].default == paper.seed


def test_mnist1d_leaves_global_random_state_alone():
    np.random.seed(123)
    random.seed(123)
    before = (np.random.get_state()[1].copy(), random.getstate())
    load_mnist1d(num_train=90, num_test=10, flatten=False)
    assert np.array_equal(np.random.get_state()[1], before[0])
    assert random.getstate() == before[1]


def test_mnist1d_small_sizes_and_signal_layout():
    data = load_mnist1d(num_train=95, num_test=23, val_fraction=0.2, flatten=False)
    assert data.x_train.shape[1:] == (1, 40)
    assert (len(data.y_train) + len(data.y_val), len(data.y_test)) == (95, 23)


def test_mnist1d_split_seed_moves_the_validation_split_and_seed_makes_new_data():
    base = load_mnist1d(num_train=90, num_test=10, standardize=False)
    other_split = load_mnist1d(num_train=90, num_test=10, split_seed=1, standardize=False)
    other_data = load_mnist1d(num_train=90, num_test=10, seed=1, standardize=False)
    assert np.array_equal(base.x_test, other_split.x_test)
    assert rows_of(base.x_val) != rows_of(other_split.x_val)
    assert rows_of(base.x_test).isdisjoint(rows_of(other_data.x_test))


def test_mnist1d_rejects_bad_sizes():
    with pytest.raises(InputError, match="num_test must be a positive int"):
        load_mnist1d(num_test=0)


def test_spiral_follows_the_cs231n_construction():
    x, y = make_spiral(num_classes=4, points_per_class=50, seed=1, noise=0.0)
    assert x.shape == (200, 2) and np.array_equal(np.bincount(y), [50] * 4)
    radius = np.hypot(x[:, 0], x[:, 1])
    np.testing.assert_allclose(radius, np.tile(np.linspace(0, 1, 50), 4), atol=1e-12)
    angle = np.arctan2(x[:, 0], x[:, 1])  # x = r sin t, y = r cos t
    expected = 4.0 * y + 4.0 * radius
    wrapped = np.angle(np.exp(1j * (angle - expected)))
    np.testing.assert_allclose(wrapped[radius > 0], 0, atol=1e-9)


def test_spiral_noise_is_seeded():
    a, _ = make_spiral(seed=3)
    b, _ = make_spiral(seed=3)
    c, _ = make_spiral(seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    data = load_spiral(seed=3)
    assert data.num_classes == 3 and len(data.y_train) + len(data.y_val) + len(data.y_test) == 300


def test_spiral_rejects_one_class():
    with pytest.raises(InputError, match="num_classes must be an int >= 2"):
        make_spiral(num_classes=1)


def test_npz_file_round_trip_with_a_held_out_validation_split(tmp_path):
    rng = np.random.default_rng(0)
    x_train, y_train = rng.standard_normal((50, 3)), rng.integers(0, 4, 50)
    x_test, y_test = rng.standard_normal((10, 3)), rng.integers(0, 4, 10)
    path = tmp_path / "toy.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    data = load_dataset(str(path), val_fraction=0.2, standardize=False)
    assert data.name == "toy" and data.num_classes == 4
    assert (len(data.y_train), len(data.y_val)) == (40, 10)
    assert np.array_equal(data.x_test, x_test)
    assert rows_of(np.concatenate([data.x_train, data.x_val])) == rows_of(x_train)


def test_npz_file_with_object_arrays_is_refused_not_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    payload = np.array([{"a": 1}], dtype=object)
    np.savez(path, x_train=payload, y_train=payload, x_test=payload, y_test=payload)
    with pytest.raises(InputError, match="without unpickling"):
        load_npz(path)


def test_npz_file_missing_arrays_named(tmp_path):
    path = tmp_path / "half.npz"
    np.savez(path, x_train=np.zeros((2, 2)), y_train=np.zeros(2, int))
    with pytest.raises(InputError, match=r"missing arrays \['x_test', 'y_test'\]"):
        load_npz(path)
    with pytest.raises(InputError, match="does not exist"):
        load_npz(tmp_path / "nowhere.npz")


def test_unknown_data_set_name_lists_the_known_ones():
    with pytest.raises(InputError, match=r"unknown data set 'cifar'.*'digits', 'mnist1d'"):
        load_dataset("cifar")


def test_npz_file_integer_images_are_flattened_on_request(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (30, 4, 4), dtype=np.uint8)
    labels = np.arange(30) % 3
    path = tmp_path / "images.npz"
    np.savez(path, x_train=images[:20], y_train=labels[:20], x_val=images[20:25],
             y_val=labels[20:25], x_test=images[25:], y_test=labels[25:])
    data = load_npz(path, flatten=True, standardize=False, dtype=np.float32)
    assert data.x_train.shape == (20, 16) and data.dtype == np.float32
    assert np.array_equal(data.x_val, images[20:25].reshape(5, 16))
    assert load_npz(path).feature_shape == (4, 4)


def test_npz_file_with_float_labels_is_refused(tmp_path):
    path = tmp_path / "float_labels.npz"
    x = np.zeros((4, 2))
    np.savez(path, x_train=x, y_train=np.zeros(4), x_test=x, y_test=np.zeros(4, int))
    with pytest.raises(InputTypeError, match="x_train/y_train: y must be integer class labels"):
        load_npz(path)

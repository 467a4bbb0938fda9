"""Data sets that need no download: digits, MNIST-1D, the spiral, and local .npz files.

Every loader returns a :class:`~gradproof.data.dataset.Dataset` with seeded,
stratified splits; inputs are standardised with training statistics unless
``standardize=False``. :func:`load_dataset` finds a loader by name.
"""

from __future__ import annotations

import os
import random
import zipfile
import zlib
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from .._validate import int_at_least, positive_int
from ..errors import InputError
from .dataset import Dataset, check_data, standardize, train_val_test_split

__all__ = [
    "load_digits",
    "load_mnist1d",
    "make_spiral",
    "load_spiral",
    "load_npz",
    "load_dataset",
    "DATASETS",
]


def _finish(data: Dataset, scale: bool, dtype) -> Dataset:
    data = standardize(data) if scale else data
    return data.astype(dtype)


def _optional(module: str, extra: str):
    """Import an optional dependency, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"this data set needs the optional package {module.split('.')[0]!r}: "
            f"pip install 'gradproof[{extra}]'"
        ) from exc


def load_digits(
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    standardize: bool = True,
    flatten: bool = True,
    dtype=np.float64,
) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1797 images, 10 classes), shipped with it.

    Inputs: (N, 64) with ``flatten``, else (N, 1, 8, 8) images; pixel values
    0..16 before standardisation. Split at random (stratified) with ``seed``:
    with the defaults 1257 train / 180 val / 360 test.
    """
    datasets = _optional("sklearn.datasets", "data")
    bunch = datasets.load_digits()
    x = bunch.images.astype(np.float64)
    x = x.reshape(len(x), -1) if flatten else x[:, None, :, :]
    y = bunch.target.astype(np.int64)
    data = train_val_test_split(x, y, val_fraction, test_fraction, seed, 10, "digits")
    return _finish(data, standardize, dtype)


@contextmanager
def _global_rng_restored():
    """Run code that seeds NumPy's and Python's global RNGs, then put their states back."""
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    try:
        yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


MNIST1D_MAX = 200_000  # examples per split; the paper's data set has 4,000 + 1,000


def load_mnist1d(
    num_train: int = 4000,
    num_test: int = 1000,
    val_fraction: float = 0.1,
    seed: int = 42,
    split_seed: int = 0,
    standardize: bool = True,
    flatten: bool = True,
    dtype=np.float64,
) -> Dataset:
    """MNIST-1D (Greydanus 2020): 1-D signals of length 40, 10 classes, generated locally.

    Uses the ``mnist1d`` package's generator (``make_dataset`` with
    ``get_dataset_args()``), never its download or pickle cache. With the
    defaults (4000 / 1000, seed 42) the train and test examples are the ones of
    the paper's data set; ``seed`` seeds the generator, so another seed is
    another data set. ``val_fraction`` of the ``num_train`` examples is held out
    for validation (stratified, seeded by ``split_seed``). Inputs: (N, 40) with
    ``flatten``, else (N, 1, 40) for 1-D convolutions.

    The generator seeds NumPy's and Python's global RNGs; their states are
    restored afterwards, so calling this does not disturb the caller's
    randomness.
    """
    for value, name in ((num_train, "num_train"), (num_test, "num_test")):
        positive_int(name, value)
        if value > MNIST1D_MAX:
            raise InputError(
                f"{name} must be at most {MNIST1D_MAX:,} (the generator makes about 10,000 "
                f"examples a second, in memory), got {value:,}")
    generator = _optional("mnist1d.data", "data")
    args = generator.get_dataset_args()
    total = num_train + num_test
    # the generator makes num_samples // 10 examples per class
    args.num_samples = -(-total // 10) * 10
    args.train_split = 1.0  # we split ourselves: same examples as the paper's 0.8 split
    args.seed = int(seed)
    with _global_rng_restored():
        made = generator.make_dataset(args)
    x = np.asarray(made["x"], dtype=np.float64)[:total]
    y = np.asarray(made["y"], dtype=np.int64)[:total]
    x = x if flatten else x[:, None, :]
    x_rest, y_rest = x[:num_train], y[:num_train]
    split = train_val_test_split(x_rest, y_rest, val_fraction, 0.0, split_seed, 10, "mnist1d")
    data = Dataset(split.x_train, split.y_train, split.x_val, split.y_val,
                   x[num_train:], y[num_train:], 10, "mnist1d")
    return _finish(data, standardize, dtype)


def make_spiral(
    num_classes: int = 3, points_per_class: int = 100, seed: int = 0, noise: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """The CS231n spiral: ``num_classes`` arms of ``points_per_class`` 2-D points.

    Arm ``j`` has radius ``r`` from 0 to 1 and angle ``4 j + 4 r`` plus
    Gaussian noise of std ``noise``; point = (r sin t, r cos t). Not linearly
    separable for 3 classes. Returns ``x`` (K*N, 2) float64 and ``y`` (K*N,)
    int64, sorted by class.
    """
    num_classes = int_at_least("num_classes", num_classes, 2)
    points_per_class = positive_int("points_per_class", points_per_class)
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.0, 1.0, points_per_class), num_classes)
    y = np.repeat(np.arange(num_classes, dtype=np.int64), points_per_class)
    angle = 4.0 * y + 4.0 * radius + noise * rng.standard_normal(radius.shape)
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    return x, y


def load_spiral(
    num_classes: int = 3,
    points_per_class: int = 100,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    standardize: bool = False,
    flatten: bool = True,
    dtype=np.float64,
) -> Dataset:
    """:func:`make_spiral` split into a :class:`Dataset` (inputs (N, 2), or (N, 1, 2))."""
    x, y = make_spiral(num_classes, points_per_class, seed)
    x = x if flatten else x[:, None, :]
    data = train_val_test_split(x, y, val_fraction, test_fraction, seed, num_classes, "spiral")
    return _finish(data, standardize, dtype)


def load_npz(
    path: str | os.PathLike,
    val_fraction: float = 0.1,
    seed: int = 0,
    standardize: bool = True,
    flatten: bool = False,
    dtype=np.float64,
) -> Dataset:
    """A data set saved as ``.npz`` arrays: ``x_train, y_train, x_test, y_test``.

    Inputs keep the file's example shape, or become (N, D) with ``flatten``.

    Optional arrays: ``x_val, y_val`` (else ``val_fraction`` of the training
    split is held out, stratified and seeded) and ``num_classes`` (else the
    largest label + 1). Loaded with ``allow_pickle=False``: object arrays are
    refused, never unpickled.
    """
    path = os.fspath(path)
    name = os.path.splitext(os.path.basename(path))[0]
    if not os.path.isfile(path):
        raise InputError(f"data file {path!r} does not exist")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):  # np.load would try to unpickle it
        raise InputError(f"data file {path!r} is not an .npz archive (empty, or it does not "
                         f"start with the zip signature: {head!r})")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):
                raise InputError(f"data file {path!r} holds a single .npy array, not an .npz "
                                 "archive of x_train, y_train, x_test, y_test")
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as exc:  # object arrays would need unpickling: refused
        raise InputError(f"{path}: cannot load without unpickling ({exc})") from exc
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, zlib.error) as exc:
        raise InputError(f"data file {path!r} is not a readable .npz archive (empty, truncated "
                         f"or garbage?): {type(exc).__name__}: {exc}") from exc
    missing = sorted({"x_train", "y_train", "x_test", "y_test"} - set(arrays))
    if missing:
        raise InputError(f"{path}: missing arrays {missing}; it holds {sorted(arrays)}")
    splits = [s for s in ("train", "val", "test") if f"x_{s}" in arrays]
    pairs = {s: _npz_pair(arrays, s, flatten, path) for s in splits}
    num_classes = int(arrays["num_classes"]) if "num_classes" in arrays else int(
        max(int(y.max()) for _, y in pairs.values() if y.size) + 1
    )
    if "val" not in pairs:
        split = train_val_test_split(*pairs["train"], val_fraction, 0.0, seed, num_classes,
                                     name)
        pairs["train"], pairs["val"] = (split.x_train, split.y_train), (split.x_val, split.y_val)
    data = Dataset(*pairs["train"], *pairs["val"], *pairs["test"], num_classes, name)
    return _finish(data, standardize, dtype)


def _npz_pair(arrays: dict[str, np.ndarray], split: str, flatten: bool, path: str
              ) -> tuple[np.ndarray, np.ndarray]:
    """``x_<split>`` as float64 (flattened to (N, D) if asked) and int64 ``y_<split>``, checked."""
    x, y = arrays[f"x_{split}"], arrays.get(f"y_{split}")
    if y is None:
        raise InputError(f"{path}: has x_{split} but no y_{split}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise InputError(f"{path}: x_{split} must hold real numbers, got dtype {x.dtype}")
    x = x.astype(np.float64)
    x = x.reshape(len(x), -1) if flatten else x
    x, y = check_data(x, y, f"{path} x_{split}/y_{split}")
    return x, y.astype(np.int64)


DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
    "mnist1d": load_mnist1d,
    "spiral": load_spiral,
}


def load_dataset(name: str, **options) -> Dataset:
    """A data set by name (``"digits"``, ``"mnist1d"``, ``"spiral"``) or a ``.npz`` path.

    ``options`` go to the loader (``seed``, ``dtype``, ``val_fraction``, ...).
    """
    if isinstance(name, str) and name.endswith(".npz"):
        return load_npz(name, **options)
    if name not in DATASETS:
        raise InputError(
            f"unknown data set {name!r}: expected one of {sorted(DATASETS)} or a path to a "
            f".npz file"
        )
    return DATASETS[name](**options)

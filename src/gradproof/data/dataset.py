"""The data set container, splitting, standardisation and minibatches.

A :class:`Dataset` holds the three splits of a classification problem as NumPy
arrays: inputs ``x_*`` of shape (N, ...) and integer labels ``y_*`` of shape
(N,). The loaders in :mod:`gradproof.data.sources` build one with
:func:`train_val_test_split` and :func:`standardize`; the trainer reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from .._validate import FLOAT_DTYPES, fraction, positive_int
from ..errors import InputError, InputTypeError, describe

__all__ = [
    "Dataset",
    "Standardizer",
    "standardize",
    "train_val_test_split",
    "minibatches",
    "check_data",
]



def check_data(x, y, name: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair of inputs and labels; return them as arrays.

    ``x``: float array of shape (N, ...), finite. ``y``: integer labels of shape (N,).
    Errors name ``name`` (e.g. ``"x_train"``) and say what is wrong.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if not np.issubdtype(x.dtype, np.floating):
        raise InputTypeError(f"{name}: x must be a float array, got {describe(x)}")
    if x.ndim < 1:
        raise InputError(f"{name}: x must have shape (N, ...), got a scalar")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputTypeError(f"{name}: y must be integer class labels, got {describe(y)}")
    if y.shape != (x.shape[0],):
        raise InputError(
            f"{name}: y must have shape (N,) = ({x.shape[0]},) to match x {x.shape}, got {y.shape}"
        )
    bad = ~np.isfinite(x)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise InputError(
            f"{name}: x contains {int(bad.sum())} NaN or infinite values (first at index "
            f"{tuple(int(i) for i in first)}); clean or impute the data before training"
        )
    if y.size and y.min() < 0:
        raise InputError(f"{name}: labels y must be >= 0, got min {int(y.min())}")
    return x, y


@dataclass(frozen=True)
class Dataset:
    """Train, validation and test splits of a classification problem.

    ``x_*`` have shape (N_split, ...) (e.g. (N, 64) for flattened digits,
    (N, 1, 40) for signals), one float dtype for all three; ``y_*`` are int64
    labels in ``[0, num_classes)`` of shape (N_split,). The validation split may
    be empty (N_val = 0): then the trainer does not validate.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str = "data"

    def __post_init__(self) -> None:
        shapes = set()
        for split in ("train", "val", "test"):
            x, y = check_data(getattr(self, f"x_{split}"), getattr(self, f"y_{split}"),
                              f"{self.name} x_{split}/y_{split}")
            object.__setattr__(self, f"x_{split}", x)
            object.__setattr__(self, f"y_{split}", y)
            if y.size and y.max() >= self.num_classes:
                raise InputError(
                    f"{self.name}: y_{split} has label {int(y.max())} but num_classes is "
                    f"{self.num_classes}"
                )
            shapes.add((x.shape[1:], x.dtype))
        if len(shapes) != 1:
            raise InputError(
                f"{self.name}: the splits must share feature shape and dtype, got "
                f"{sorted(map(str, shapes))}"
            )
        if len(self.y_train) == 0:
            raise InputError(f"{self.name}: the training split is empty")

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. (64,) or (1, 40)."""
        return self.x_train.shape[1:]

    @property
    def num_features(self) -> int:
        """Number of input values per example (the product of ``feature_shape``)."""
        return int(np.prod(self.feature_shape))

    @property
    def dtype(self) -> np.dtype:
        return self.x_train.dtype

    def astype(self, dtype) -> Dataset:
        """A copy whose inputs have ``dtype`` (float32 or float64); labels unchanged."""
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise InputError(f"dtype must be float32 or float64, got {dtype}")
        return replace(self, **{f"x_{s}": getattr(self, f"x_{s}").astype(dtype)
                                for s in ("train", "val", "test")})

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: train {len(self.y_train)}, val {len(self.y_val)}, "
            f"test {len(self.y_test)}, features {self.feature_shape}, "
            f"{self.num_classes} classes, {self.dtype})"
        )


class Standardizer:
    """Per-feature standardisation ``(x - mean) / std`` with statistics fit on one array.

    Fit on the training inputs only, then apply the same transform to the
    validation and test inputs (fitting on them would leak test information).
    Statistics are over axis 0: ``mean`` and ``std`` have one example's shape.
    Features with zero spread (constant pixels) get ``std = 1``: they become 0
    instead of NaN.
    """

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> Standardizer:
        x = np.asarray(x)
        if x.ndim < 1 or x.shape[0] == 0:
            raise InputError(f"x must have shape (N, ...) with N >= 1, got {x.shape}")
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.std = np.where(std > 0, std, 1.0).astype(std.dtype)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` in ``x``'s dtype. x has shape (N, ...) matching the fit."""
        if self.mean is None or self.std is None:
            raise InputError("Standardizer.transform called before fit")
        x = np.asarray(x)
        if x.shape[1:] != self.mean.shape:
            raise InputError(
                f"x must have shape (N, *{self.mean.shape}) like the fitted data, got {x.shape}"
            )
        return ((x - self.mean) / self.std).astype(x.dtype, copy=False)


def standardize(data: Dataset) -> Dataset:
    """``data`` with every split standardised by statistics of the training split."""
    scaler = Standardizer().fit(data.x_train)
    return replace(data, **{f"x_{s}": scaler.transform(getattr(data, f"x_{s}"))
                            for s in ("train", "val", "test")})


def _split_indices(y: np.ndarray, val_fraction: float, test_fraction: float,
                   rng: np.random.Generator, stratify: bool) -> tuple[np.ndarray, ...]:
    """Index arrays (train, val, test) of exactly round(fraction * N) test and val examples.

    Stratified: examples are visited in a random order and ranked within their
    class; sorting by ``rank / class size`` interleaves the classes evenly, so
    any prefix of that order (the test split, then the validation split) holds
    each class in proportion.
    """
    n = len(y)
    order = rng.permutation(n)
    if stratify and n:
        labels = y[order]
        by_class = np.argsort(labels, kind="stable")
        counts = np.bincount(labels)
        starts = np.cumsum(counts) - counts
        rank = np.empty(n, dtype=np.int64)
        rank[by_class] = np.arange(n) - starts[labels[by_class]]
        order = order[np.argsort((rank + 0.5) / counts[labels], kind="stable")]
    n_test = int(round(test_fraction * n))
    n_val = int(round(val_fraction * n))
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    # shuffle each split, so none is sorted by its position in the interleaving
    return rng.permutation(train), rng.permutation(val), rng.permutation(test)


def train_val_test_split(
    x: np.ndarray,
    y: np.ndarray,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    num_classes: int | None = None,
    name: str = "data",
    stratify: bool = True,
) -> Dataset:
    """Split (x, y) at random into a :class:`Dataset`.

    ``x`` (N, ...) float, ``y`` (N,) int. ``val_fraction`` and ``test_fraction``
    are fractions of N (each in [0, 1), summing to less than 1); the rest is the
    training split. ``stratify`` keeps each class's proportion in every split.
    The same ``seed`` gives the same split. ``num_classes`` defaults to
    ``y.max() + 1``.
    """
    x, y = check_data(x, y, name)
    val_fraction = fraction("val_fraction", val_fraction, below_one=True)
    test_fraction = fraction("test_fraction", test_fraction, below_one=True)
    if val_fraction + test_fraction >= 1:
        raise InputError(
            f"val_fraction + test_fraction must be < 1 to leave training data, got "
            f"{val_fraction} + {test_fraction} = {val_fraction + test_fraction}"
        )
    rng = np.random.default_rng(seed)
    train, val, test = _split_indices(y, val_fraction, test_fraction, rng, stratify)
    classes = int(y.max()) + 1 if num_classes is None else num_classes
    return Dataset(x[train], y[train], x[val], y[val], x[test], y[test], classes, name)


def minibatches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | int | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(x_batch, y_batch)`` of ``batch_size`` examples (the last may be smaller).

    With ``shuffle`` the order is a permutation drawn from ``rng`` (a Generator,
    which advances, or an int seed); every example appears once per pass.
    ``drop_last`` skips a final batch smaller than ``batch_size``.
    """
    batch_size = positive_int("batch_size", batch_size)
    n = len(y)
    if len(x) != n:
        raise InputError(f"x and y must have the same length, got {len(x)} and {n}")
    if shuffle:
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        order = gen.permutation(n)
    else:
        order = np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield x[idx], y[idx]

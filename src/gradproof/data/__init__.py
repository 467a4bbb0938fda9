"""gradproof.data: small classification data sets that need no download.

``load_dataset("digits" | "mnist1d" | "spiral" | "file.npz")`` returns a
:class:`Dataset` of train/val/test splits, standardised with training
statistics; :func:`minibatches` iterates over seeded shuffled batches.
"""

from .dataset import (  # noqa: F401
    Dataset,
    Standardizer,
    check_data,
    minibatches,
    standardize,
    train_val_test_split,
)
from .sources import (  # noqa: F401
    DATASETS,
    load_dataset,
    load_digits,
    load_mnist1d,
    load_npz,
    load_spiral,
    make_spiral,
)

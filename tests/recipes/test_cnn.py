"""The CNN recipes: train_cnn_mnist1d with the trainer, and the cnn kind of gradproof train."""

import argparse

import numpy as np
import pytest

from gradproof.data import Dataset
from gradproof.errors import InputError
from gradproof.nn.cnn import CNN1d, SmallCNN
from gradproof.recipes.cnn import CNN_KIND, train_cnn_mnist1d


def test_train_cnn_mnist1d_runs_with_the_trainer():
    result = train_cnn_mnist1d(
        epochs=1, num_train=300, num_test=100, channels=(4, 4), batch_size=50
    )
    assert set(result) >= {"test_acc", "test_loss", "seconds", "history", "model"}
    assert 0.0 <= result["test_acc"] <= 1.0
    assert np.isfinite(result["test_loss"])
    assert isinstance(result["model"], CNN1d)


def test_cnn_kind_builds_the_model_that_fits_the_data():
    def data(feature_shape):
        x = np.zeros((4, *feature_shape))
        y = np.array([0, 1, 2, 0])
        return Dataset(x, y, x, y, x, y, 3, "fake")

    args = argparse.Namespace(channels=[2, 3], kernel_size=3, dropout=0.0, seed=0, dtype="float64")
    signal_model = CNN_KIND.build(args, data((1, 16)))
    image_model = CNN_KIND.build(args, data((2, 8, 8)))
    assert isinstance(signal_model, CNN1d) and signal_model.forward(np.zeros((4, 1, 16))).shape == (
        4,
        3,
    )
    assert isinstance(image_model, SmallCNN) and image_model.forward(
        np.zeros((4, 2, 8, 8))
    ).shape == (4, 3)
    with pytest.raises(InputError, match="cnn needs signals"):
        CNN_KIND.build(args, data((16,)))
    assert CNN_KIND.data_options == {"flatten": False}
    assert CNN_KIND.defaults_for("mnist1d")["optimizer"] == "adamw"

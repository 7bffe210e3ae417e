"""The offline datasets: fixed, stratified, disjoint splits, built without the network and without touching
anyone else's random numbers."""

import socket

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from trends import data
from trends.data import DATASETS, load_dataset

SIZES = {"digits": (1149, 288, 360, (1, 8, 8)), "mnist1d": (3200, 800, 1000, (1, 40))}


@pytest.mark.parametrize("name", DATASETS)
def test_splits_have_the_documented_sizes_shapes_and_types(name):
    d = load_dataset(name)
    n_train, n_val, n_test, shape = SIZES[name]
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (n_train, n_val, n_test)
    assert d.sample_shape == shape and d.n_classes == 10
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    for y in (d.y_train, d.y_val, d.y_test):
        assert set(np.unique(y)) == set(range(10)), "every class in every split"
    assert not d.x_train.flags.writeable, "the cached arrays are shared, so read-only"


def test_mnist1d_splits_share_no_signal():
    d = load_dataset("mnist1d")
    rows = {
        split: {x.tobytes() for x in xs} for split, xs in (("train", d.x_train), ("val", d.x_val), ("test", d.x_test))
    }
    assert not rows["train"] & rows["val"] and not rows["train"] & rows["test"] and not rows["val"] & rows["test"]


@pytest.mark.parametrize("name", DATASETS)
def test_built_offline_the_same_every_time_without_moving_numpys_global_random_state(name, monkeypatch):
    first = load_dataset(name)
    data._load.cache_clear()

    def no_network(*args, **kwargs):
        raise OSError("the network was used")

    monkeypatch.setattr(socket, "socket", no_network)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    again = load_dataset(name)
    assert np.array_equal(np.random.get_state()[1], before)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(first, field), getattr(again, field))


@pytest.mark.parametrize(("name", "floor"), [("digits", 0.9), ("mnist1d", 0.25)])
def test_labels_go_with_their_samples(name, floor):
    """A linear model learns far above chance (10%): the samples and labels were split together."""
    d = load_dataset(name)
    model = LogisticRegression(max_iter=300).fit(d.x_train.reshape(len(d.x_train), -1), d.y_train)
    assert model.score(d.x_val.reshape(len(d.x_val), -1), d.y_val) > floor


def test_unknown_dataset_names_the_ones_there_are():
    with pytest.raises(ValueError, match="choose one of digits, mnist1d"):
        load_dataset("mnist")

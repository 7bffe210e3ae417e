"""The tabular benchmark: it covers its space, its entries are what training gives, and building it resumes."""

import numpy as np
import pytest

import trends.automl.evaluator as evaluator_module
from trends.automl.space import Categorical, SearchSpace, get_space
from trends.automl.table import Table, build_table, load_table
from trends.data import load_dataset
from trends.models import LayerSpec, NetworkSpec
from trends.training import TrainRecipe, train_network

ARCH = get_space("mnist1d-arch")


@pytest.fixture(scope="module")
def table():
    return load_table("mnist1d-arch")


def test_the_table_holds_every_architecture_of_its_space_once(table):
    configs = [config for config, _ in table]
    assert len(table) == ARCH.size == len(configs)
    assert all(ARCH.is_valid(c) for c in configs)
    assert {ARCH.key(c) for c in configs} == {ARCH.key(c) for c in ARCH.enumerate()}
    assert table.info.entries == len(table) and table.info.recipe["max_epochs"] > 0


def test_mlps_and_cnns_both_appear_and_the_best_is_rare(table):
    mlp = [r.val_accuracy for c, r in table if c["layer1_type"] == "dense"]
    cnn = [r.val_accuracy for c, r in table if c["layer1_type"] == "conv"]
    assert len(mlp) == 42 and len(cnn) == 500
    assert np.median(cnn) > max(mlp)  # convolutions are what MNIST-1D needs: the space has a real signal
    _, best = table.best()
    near_best = np.mean([r.val_accuracy >= best.val_accuracy - 0.005 for _, r in table])
    assert near_best < 0.01  # within half a point of the optimum: under 1% of the table


def test_entries_are_what_training_gives(table):
    """Re-train the cheapest entries of each kind with the recorded recipe and compare."""
    data = load_dataset("mnist1d")
    picks = []
    for kind in ("dense", "conv"):
        entries = sorted((r.seconds, c) for c, r in table if c["layer1_type"] == kind)
        picks += [c for _, c in entries[:2]]
    for config in picks:
        spec, recipe = ARCH.build(config)
        result = train_network(spec, data, recipe)
        recorded = table.lookup(config)
        assert result.val_accuracy == pytest.approx(recorded.val_accuracy, abs=0.01), config
        assert result.test_accuracy == pytest.approx(recorded.test_accuracy, abs=0.01), config
        assert result.parameters == recorded.parameters and result.flops == recorded.flops


def test_lookup_accepts_any_spelling_of_a_configuration_and_refuses_invalid_ones(table):
    config = {"layer1_type": "dense", "layer1_width": 16, "layer2_type": "stop"}
    assert table.lookup(config) is table.lookup({**config, "layer1_kernel": 5})  # an inapplicable choice is dropped
    with pytest.raises(ValueError, match="incomplete"):
        table.lookup({"layer1_type": "dense"})
    with pytest.raises(ValueError, match="not an option"):
        table.lookup({**config, "layer1_width": 17})


def test_a_missing_table_names_the_command_that_builds_it(tmp_path):
    with pytest.raises(ValueError, match="build-table --space mnist1d-arch"):
        Table.load("mnist1d-arch", tmp_path)


def _tiny_space() -> SearchSpace:
    """Three linear-or-tiny-MLP configurations on digits: seconds to train."""

    def build(config):
        layers = (LayerSpec("dense", int(config["units"])),) if config["units"] else ()
        return NetworkSpec(layers), TrainRecipe(max_epochs=2, seed=0)

    return SearchSpace("tiny", "digits", (Categorical("units", (0, 8, 16)),), build)


def test_building_trains_only_what_the_storage_lacks_and_round_trips(tmp_path, monkeypatch):
    space = _tiny_space()
    storage = tmp_path / "cache.db"
    trained = []
    real_train = evaluator_module.train_network
    monkeypatch.setattr(evaluator_module, "train_network", lambda *a, **k: trained.append(a[0]) or real_train(*a, **k))

    build_table(space, storage=storage, workers=1, command="tiny")
    assert len(trained) == 3
    table = build_table(space, storage=storage, workers=1, command="tiny")
    assert len(trained) == 3  # the second build found everything in the storage

    table.save(tmp_path)
    loaded = Table.load(space, tmp_path)
    assert [c for c, _ in loaded] == [c for c, _ in table]
    for (_, a), (_, b) in zip(loaded, table, strict=True):
        assert a.val_accuracy == pytest.approx(b.val_accuracy, abs=1e-6) and a.parameters == b.parameters
    assert loaded.info == table.info

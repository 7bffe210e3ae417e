"""The compression zoo: a model is trained once, cached atomically, and served from the cache afterwards."""

import pytest
import torch

import trends.compression.zoo as zoo
from trends.compression.distill import accuracy


def test_a_zoo_model_is_trained_once_then_loaded(tmp_path, monkeypatch):
    first = zoo.load_trained("digits-mlp", tmp_path)
    assert first.test_accuracy > 0.9  # a digits MLP learns well
    assert accuracy(first.model, first.dataset.x_test, first.dataset.y_test) == pytest.approx(first.test_accuracy)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(zoo, "train_network", no_training)
    second = zoo.load_trained("digits-mlp", tmp_path)
    assert second.test_accuracy == first.test_accuracy
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_changed_definition_is_trained_again(tmp_path, monkeypatch):
    zoo.load_trained("digits-mlp", tmp_path)
    entry = zoo.ZOO["digits-mlp"]
    changed = zoo.ZooEntry(entry.dataset, entry.spec, entry.recipe.__class__(max_epochs=2, seed=0))
    monkeypatch.setitem(zoo.ZOO, "digits-mlp", changed)
    trained = []
    real = zoo.train_network
    monkeypatch.setattr(zoo, "train_network", lambda *a, **k: trained.append(1) or real(*a, **k))
    zoo.load_trained("digits-mlp", tmp_path)
    assert trained == [1]


def test_an_unknown_model_names_the_zoo():
    with pytest.raises(ValueError, match="digits-mlp"):
        zoo.load_trained("resnet50")

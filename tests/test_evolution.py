"""Regularized evolution: mutation stays inside the space and changes one decision (repairing the rest only where
it must), the search spends exactly its budget, a seed fixes the run, and it learns where random search does not."""

import numpy as np
import optuna
import pytest

from trends.automl.evolution import EvolutionConfig, mutate, run_evolution
from trends.automl.search import BudgetExhausted, Search
from trends.automl.space import SPACES, SearchSpace

from .search_objectives import TARGETS, MatchingBackend, random_search

optuna.logging.set_verbosity(optuna.logging.WARNING)


def new_search(space: SearchSpace, budget: int) -> Search:
    return Search(MatchingBackend(space, TARGETS[space.name]), budget, optuna.create_study(direction="maximize"))


def kept_changes(space: SearchSpace, parent: dict, child: dict) -> list[str]:
    """The decisions where the child differs from the parent although the parent's choice was still applicable and
    allowed at that point of the child: the mutated decision only, if the repair kept all it could."""
    changed = []
    prefix: dict = {}
    for decision in space.decisions:
        if decision.name not in child:
            continue
        if decision.name in parent and decision.allows(prefix, parent[decision.name]):
            if child[decision.name] != parent[decision.name] or type(child[decision.name]) is not type(
                parent[decision.name]
            ):
                changed.append(decision.name)
        prefix[decision.name] = child[decision.name]
    return changed


@pytest.mark.parametrize("name", sorted(SPACES))
def test_mutate_returns_a_valid_canonical_different_config_changing_one_decision(name):
    space = SPACES[name]
    rng = np.random.default_rng(0)
    mutated = set()
    for seed in range(300):
        parent = space.sample(np.random.default_rng(seed))
        child = mutate(space, parent, rng)
        assert space.is_valid(child)
        assert child == space.canonical(child) and list(child) == list(space.canonical(child))
        assert space.key(child) != space.key(parent)
        changed = kept_changes(space, parent, child)
        assert len(changed) == 1, (parent, child)
        mutated.add(changed[0])
        if set(child) == set(parent):  # no repair was needed: exactly one choice differs
            assert sum(space.key({**parent, k: child[k]}) != space.key(parent) for k in child) == 1
    assert mutated == {d.name for d in space.decisions}, "every decision is sometimes the one mutated"


def test_mutate_repairs_what_a_changed_layer_type_implies():
    space = SPACES["mnist1d-arch"]
    parent = {"layer1_type": "conv", "layer1_width": 16, "layer1_kernel": 3, "layer2_type": "stop"}
    children = [mutate(space, parent, np.random.default_rng(seed)) for seed in range(200)]
    grown = [c for c in children if c.get("layer2_type") in ("conv", "dense")]
    assert grown, "some mutations turn the stop into a layer"
    for child in grown:  # the new layer got a width, a skip (and a kernel if a conv) and a layer-3 type
        assert space.is_valid(child) and "layer2_width" in child and "layer3_type" in child
    dense_first = [c for c in children if c["layer1_type"] == "dense"]
    assert dense_first and all("layer1_kernel" not in c for c in dense_first)


def test_mutate_rejects_an_invalid_config():
    with pytest.raises(ValueError):
        mutate(SPACES["mnist1d-arch"], {"layer1_type": "dense"}, np.random.default_rng(0))


@pytest.mark.parametrize("budget", [1, 7, 60])
def test_evolution_spends_exactly_the_budget_and_stops(budget):
    search = new_search(SPACES["mnist1d-arch"], budget)
    run_evolution(search, seed=0)
    assert len(search.records) == budget
    assert len({SPACES["mnist1d-arch"].key(r.config) for r in search.records}) == budget
    assert len(search.study.trials) == budget
    with pytest.raises(BudgetExhausted):
        search.evaluate(SPACES["mnist1d-arch"].sample(np.random.default_rng(999)))


def test_evolution_is_deterministic_given_its_seed():
    space = SPACES["mnist1d-hparams"]
    runs = []
    for seed in (3, 3, 4):
        search = new_search(space, 50)
        run_evolution(search, seed, EvolutionConfig(population_size=10, sample_size=3))
        runs.append([r.config for r in search.records])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_a_resumed_evolution_retraces_the_interrupted_run():
    space = SPACES["mnist1d-arch"]
    study = optuna.create_study(direction="maximize")
    backend = MatchingBackend(space, TARGETS[space.name])
    run_evolution(Search(backend, 30, study), seed=5)
    resumed = Search(backend, 60, study)  # the same study, a larger budget: the first 30 come from history
    run_evolution(resumed, seed=5)
    fresh = new_search(space, 60)
    run_evolution(fresh, seed=5)
    assert [r.config for r in resumed.records] == [r.config for r in fresh.records]


@pytest.mark.parametrize("name", sorted(SPACES))
def test_evolution_beats_random_search_on_a_hidden_target(name):
    """Reward = fraction of decisions matching a hidden configuration: a smooth landscape that hill-climbing
    solves and random search, over thousands of configurations, rarely does."""
    space = SPACES[name]
    evolved, sampled = [], []
    for seed in range(5):
        search = new_search(space, 100)
        run_evolution(search, seed)
        evolved.append(search.best().val_accuracy)
        search = new_search(space, 100)
        random_search(search, seed)
        sampled.append(search.best().val_accuracy)
    assert np.median(evolved) == 1.0, evolved  # the target itself, found in most runs
    assert np.mean(evolved) >= np.mean(sampled) + 0.15, (evolved, sampled)

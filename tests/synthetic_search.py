"""A synthetic search problem the search-method tests share: a hidden target configuration, a backend that
scores a configuration by how many decisions match it, random search as the baseline, and the resume check."""

from collections.abc import Callable

import numpy as np
import optuna

from trends.automl.evaluator import Evaluation
from trends.automl.search import BudgetExhausted, Search
from trends.automl.space import SearchSpace

TARGETS = {  # hidden optima: deep, so that a controller's uniform first draws rarely come near them
    "mnist1d-arch": {
        **{"layer1_type": "conv", "layer1_width": 16, "layer1_kernel": 5},
        **{"layer2_type": "conv", "layer2_width": 32, "layer2_kernel": 3, "layer2_skip": True},
        **{"layer3_type": "dense", "layer3_width": 16, "layer3_skip": False},
    },
    **{
        name: {"learning_rate": 3e-3, "batch_size": 32, "hidden_layers": 2, "layer_type": "conv", "units": 64}
        | {"kernel": 5, "dropout": 0.1}
        for name in ("mnist1d-hparams", "digits-hparams")
    },
}


class MatchingBackend:
    """A synthetic backend: the validation accuracy of a configuration is the fraction of decisions (of it or of
    the target) on which it makes the target's choice, so 1.0 only at the target, and every decision matters."""

    def __init__(self, space: SearchSpace, target: dict) -> None:
        self.space = space
        self.target = space.canonical(target)

    def evaluate(self, config: dict) -> Evaluation:
        config = self.space.canonical(config)
        names = set(config) | set(self.target)
        reward = sum(n in config and n in self.target and config[n] == self.target[n] for n in names) / len(names)
        spec, recipe = self.space.build(config)
        return Evaluation("", self.space.dataset, spec, recipe, reward, reward, 0.0, 0, 0.0, 0, 0, False)


def random_search(search: Search, seed: int) -> None:
    """The baseline: configurations drawn as an untrained controller would (:meth:`SearchSpace.sample`)."""
    rng = np.random.default_rng(seed)
    try:
        while True:
            search.evaluate(search.space.sample(rng))
    except BudgetExhausted:
        return


def new_search(space: SearchSpace, budget: int) -> Search:
    return Search(MatchingBackend(space, TARGETS[space.name]), budget, optuna.create_study(direction="maximize"))


def best_and_mean(search: Search) -> tuple[float, float]:
    rewards = [r.val_accuracy for r in search.records]
    return max(rewards), float(np.mean(rewards))


def assert_a_resumed_run_retraces_the_interrupted_one(
    run: Callable[[Search, int], None], space: SearchSpace, first: int, total: int, seed: int = 5
) -> None:
    """Run ``first`` evaluations, then resume the same study to ``total``: the records must equal a fresh run's."""
    study = optuna.create_study(direction="maximize")
    backend = MatchingBackend(space, TARGETS[space.name])
    run(Search(backend, first, study), seed)
    resumed = Search(backend, total, study)  # the same study, a larger budget: the first ones come from history
    run(resumed, seed)
    fresh = new_search(space, total)
    run(fresh, seed)
    assert [r.config for r in resumed.records] == [r.config for r in fresh.records]

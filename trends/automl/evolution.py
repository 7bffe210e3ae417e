"""Regularized (aging) evolution over a :class:`~trends.automl.space.SearchSpace`.

Real, Aggarwal, Huang & Le 2019, "Regularized Evolution for Image Classifier Architecture Search", AAAI
(arXiv:1802.01548), Algorithm 1::

    population <- empty queue                       # the P youngest models
    history <- empty                                # every model evaluated
    while |population| < P:                         # initialise with random architectures
        model.arch <- RandomArchitecture(); model.accuracy <- TrainAndEval(model.arch)
        add model to the right of population and to history
    while |history| < C:                            # evolve for C cycles
        sample <- S candidates drawn at random from population (they stay in it)
        parent <- the highest-accuracy model in sample
        child.arch <- Mutate(parent.arch); child.accuracy <- TrainAndEval(child.arch)
        add child to the right of population and to history
        remove dead from the left of population     # aging: the OLDEST dies, not the worst
    return the highest-accuracy model in history

Aging is the "regularization": every model dies P cycles after its birth however well it scored, so an
architecture stays in the population only by having children that score well again, and one that scored high by
luck cannot sit there forever. Here ``TrainAndEval`` is :meth:`Search.evaluate` and ``C`` is the search's
budget, charged per proposal: a child the search has evaluated before is answered from its history without
training, still costs its unit (the paper would have trained it again), and joins the population as a new
individual of the same genotype; the loop ends when the search raises :class:`BudgetExhausted`.

The mutation is the paper's "change one choice" applied to a conditional space: :func:`mutate` changes one
applicable decision to another allowed option, then repairs the configuration so that it stays valid (keeping
every later choice that still applies and is still allowed, sampling the decisions that newly apply).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from trends.automl.search import BudgetExhausted, Search, SearchRecord
from trends.automl.space import Config, SearchSpace


@dataclass(frozen=True)
class EvolutionConfig:
    """Hyper-parameters of regularized evolution, for budgets of 50-200 evaluations (the paper's P=100, S=25 are
    for 20000 models; why these values: :func:`run_evolution`)."""

    population_size: int = 10  # P: models alive at once; also the number of random models the search starts with
    sample_size: int = 5  # S: tournament size, candidates drawn (with replacement) to pick a parent from

    def __post_init__(self) -> None:
        if self.population_size < 1:
            raise ValueError(f"population_size must be at least 1, got {self.population_size}")
        if self.sample_size < 1:
            raise ValueError(f"sample_size must be at least 1, got {self.sample_size}")


def mutate(space: SearchSpace, config: Mapping[str, Any], rng: np.random.Generator) -> Config:
    """A child of ``config``: one applicable decision, drawn uniformly among those that have another allowed
    option, changed to one of those options (uniformly), then repaired into a complete canonical configuration.

    Repair walks the decisions after the changed one in order: a choice of the parent that still applies and is
    still allowed is kept, a decision that newly applies (a layer that was ``stop`` became a convolution: it needs
    a width and a kernel) is sampled uniformly among its allowed options, and a choice that no longer applies is
    dropped. The child therefore always differs from the parent, in the changed decision at least.

    ValueError when ``config`` is not a valid configuration of ``space``, or no decision of it has an alternative
    (a space of one configuration).
    """
    parent = space.canonical(config)
    names = list(parent)  # the decisions that apply, in decision order
    for j in rng.permutation(len(names)):  # uniform over decisions; one without an alternative passes its turn on
        name = names[j]
        prefix = {n: parent[n] for n in names[:j]}
        decision = space.decisions[space.next_decision(prefix)]
        allowed = space.valid_options(prefix)
        allowed[decision.index(parent[name])] = False
        if allowed.any():
            child = space.choose(prefix, int(rng.choice(np.flatnonzero(allowed))))
            return _repair(space, child, parent, rng)
    raise ValueError(f"no decision of {parent} has another allowed option in space {space.name!r}")


def _repair(space: SearchSpace, partial: Config, parent: Config, rng: np.random.Generator) -> Config:
    """Complete ``partial`` with the parent's choices where they still apply and are allowed, sampling the rest."""
    while (i := space.next_decision(partial)) is not None:
        decision = space.decisions[i]
        allowed = space.valid_options(partial)
        if decision.name in parent and allowed[kept := decision.index(parent[decision.name])]:
            action = kept
        else:
            action = int(rng.choice(np.flatnonzero(allowed)))
        partial = space.choose(partial, action)
    return partial


def run_evolution(search: Search, seed: int, config: EvolutionConfig = EvolutionConfig()) -> None:
    """Propose configurations to ``search`` by regularized evolution until its budget is spent.

    Deterministic given ``seed`` and the search's answers, so a resumed search (whose earlier configurations are
    answered from its history) retraces the interrupted run and carries on from where it stopped.

    Defaults (P=10, S=5): with 50-200 evaluations the random initial population must leave most of the budget to
    evolution, and selection must be greedy enough to climb within a few dozen generations. P=10 spends 5-20% of
    the budget on random models, as NAS-Bench-201 did (P=10, S=3, at a similar budget); S=5 makes the parent the
    population's best 41% of the time (1 - 0.9^5). Measured over 10 seeds on the mnist1d-arch table and on the
    synthetic objective of ``tests/test_evolution.py``, (10, 5) found the optimum more often than (20, 5), (20, 3)
    and (10, 3) at budgets 50, 100 and 200.
    """
    space = search.space
    rng = np.random.default_rng(seed)
    population: collections.deque[SearchRecord] = collections.deque()
    try:
        while len(population) < config.population_size:
            population.append(search.evaluate(space.sample(rng)))
        while True:
            sample = [population[i] for i in rng.integers(len(population), size=config.sample_size)]
            parent = max(sample, key=lambda record: record.val_accuracy)  # the first of equals: deterministic
            child = search.evaluate(mutate(space, parent.config, rng))
            population.append(child)
            population.popleft()  # aging: remove the oldest
    except BudgetExhausted:
        return

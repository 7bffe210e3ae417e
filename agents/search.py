"""Every AutoML search method of trendgym behind one call, :func:`run_search`.

The methods the course names, each on the same search space, backend and budget of evaluated configurations:

==================  ===============================================================================================
``random``          random search: Optuna's RandomSampler, uniform over the allowed options at every decision (so
                    configurations with few decisions, shallow networks, come up more often)
``uniform``         random search uniform over the space's configurations, NAS-Bench-201's random baseline
``tpe``             Bayesian optimisation with a tree-structured Parzen estimator (Optuna's TPESampler)
``gp``              Bayesian optimisation with a Gaussian process (Optuna's GPSampler)
``cmaes``           CMA-ES (Optuna's CmaEsSampler) over the option indices as integers
``ga``              a genetic algorithm: Optuna's NSGA-II with one objective
``evolution``       regularized evolution (Real et al. 2019), :mod:`trends.automl.evolution`
``rl``              an SB3 agent (MaskablePPO) learning on the search environment during the search, as the NAS-RL
                    controller did: every episode it completes is one configuration
``reinforce``       the plain REINFORCE controller of Zoph & Le (2017), :mod:`trends.automl.reinforce`
``ppo-controller``  the same controller trained by PPO's clipped surrogate on a replay of its episodes, sampling
                    without repeats after a random start, :mod:`trends.automl.ppo_controller`
``darts``           gradient-based: a DARTS super-network (:mod:`trends.automl.darts`); its argmax architecture is the
                    one configuration it evaluates, its super-network training is counted in equivalent trainings
==================  ===============================================================================================

GP, CMA-ES and NSGA-II model a *fixed* set of parameters (Optuna gives them the intersection of every trial's
parameters; a conditional parameter such as a second layer's kernel would fall back to random sampling). So for
them every decision is asked on every trial, over all its options, and the answer is decoded into a valid
configuration by :func:`decode`: an option the earlier choices forbid becomes the nearest allowed one, and the
answers of decisions that do not apply are ignored. TPE and random search ask the space define-by-run
(:meth:`~trends.automl.space.SearchSpace.suggest`), which they model natively.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from trends.automl.backends import Backend, make_backend
from trends.automl.evaluator import Evaluation, open_storage, quiet_optuna, storage_url
from trends.automl.search import BudgetExhausted, Search, SearchRecord
from trends.automl.space import Config, SearchSpace, get_space

MethodRunner = Callable[[Search, int, Mapping[str, Any]], dict[str, Any]]
METHODS = ("random", "uniform", "tpe", "gp", "cmaes", "ga", "evolution", "rl", "reinforce", "ppo-controller", "darts")
OPTUNA_METHODS = ("random", "tpe", "gp", "cmaes", "ga")
GA_POPULATION = 20  # NSGA-II's population: a tenth of the largest budget, so it runs ten generations
DARTS_COST_REFERENCES = 5  # trainings timed to express DARTS' super-network cost in trainings
RL_SETTINGS: dict[str, Any] = {  # MaskablePPO for budgets of 50-200 architectures
    "n_steps": 64,  # about six architectures per update
    "batch_size": 64,
    "n_epochs": 4,
    "gamma": 1.0,  # one reward, at the end of the episode: nothing to discount
    "gae_lambda": 1.0,
    "learning_rate": 1e-3,
    "ent_coef": 0.01,
}


@dataclass
class SearchOutcome:
    """What a search run did: its records in order, why it stopped, and what it cost."""

    method: str
    space: str
    seed: int
    budget: int
    records: list[SearchRecord]
    anytime: np.ndarray  # (evaluations, 2): best validation accuracy so far, and that configuration's test accuracy
    stopped: str  # why the search ended
    seconds: float  # wall time of this run (a resumed run counts only its own time)
    equivalent_trainings: float  # what the search cost, in trainings: evaluations, plus a super-network's cost
    study_name: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> SearchRecord | None:
        return max(self.records, key=lambda r: r.val_accuracy, default=None)


def study_name_of(space: str, method: str, backend: str, seed: int, settings: Mapping[str, Any] | None = None) -> str:
    """The study a search records into: one per (space, method, backend, seed, settings), so running the same
    search again resumes it and a variant with other settings does not."""
    variant = "".join(f":{key}={value}" for key, value in sorted((settings or {}).items()))
    return f"search:{space}:{method}:{backend}:seed{seed}{variant}"


def run_search(
    space: str | SearchSpace,
    method: str,
    budget: int,
    seed: int = 0,
    backend: str | Backend = "table",
    storage: str | Path | None = None,
    study_name: str | None = None,
    device: str = "cpu",
    settings: Mapping[str, Any] | None = None,
) -> SearchOutcome:
    """Search ``space`` with ``method`` for ``budget`` configurations, recording every one in the study
    ``study_name`` (default :func:`study_name_of`) of ``storage`` (None: the default SQLite cache file;
    ``"memory"``: an in-memory storage that lives as long as the call). A study that already holds records of
    this search resumes it. ``settings`` are the method's own hyper-parameters (the fields of EvolutionConfig,
    ReinforceConfig or DartsConfig, MaskablePPO's or the Optuna sampler's keywords). ValueError (one line) for an
    unknown method, space, backend or setting."""
    if method not in METHODS:
        raise ValueError(f"unknown search method {method!r}; choose one of {', '.join(METHODS)}")
    space = get_space(space) if isinstance(space, str) else space
    backend_name = backend if isinstance(backend, str) else type(backend).__name__
    if isinstance(backend, str):
        backend = make_backend(space, backend, storage=None if storage == "memory" else storage, device=device)
    study_name = study_name or study_name_of(space.name, method, backend_name, seed, settings)
    search = Search(backend, budget, open_study(storage, study_name))
    started = time.perf_counter()
    extra = _METHOD_RUNNERS[method](search, seed, settings or {})
    return SearchOutcome(
        method=method,
        space=space.name,
        seed=seed,
        budget=budget,
        records=list(search.records),
        anytime=search.anytime(),
        stopped=search.stop_reason(),
        seconds=time.perf_counter() - started,
        equivalent_trainings=len(search.records) + float(extra.get("supernet_trainings", 0.0)),
        study_name=study_name,
        extra=extra,
    )


def open_study(storage: str | Path | None, study_name: str) -> optuna.Study:
    """The study ``study_name`` (created if new, direction maximize) in ``storage`` (see :func:`run_search`)."""
    with quiet_optuna():
        rdb = optuna.storages.InMemoryStorage() if storage == "memory" else open_storage(storage_url(storage))
        return optuna.create_study(storage=rdb, study_name=study_name, direction="maximize", load_if_exists=True)


# -- Optuna's samplers -----------------------------------------------------------------------------------------


def optuna_sampler(method: str, seed: int, settings: Mapping[str, Any]) -> optuna.samplers.BaseSampler:
    """Optuna's sampler for ``method``; ``settings`` are its constructor's keywords (``n_startup_trials:20``)."""
    samplers: dict[str, tuple[type, dict[str, Any]]] = {
        "random": (optuna.samplers.RandomSampler, {}),
        "tpe": (optuna.samplers.TPESampler, {}),
        "gp": (optuna.samplers.GPSampler, {}),
        "cmaes": (optuna.samplers.CmaEsSampler, {}),
        "ga": (optuna.samplers.NSGAIISampler, {"population_size": GA_POPULATION}),
    }
    cls, defaults = samplers[method]
    try:
        return cls(seed=seed, **{**defaults, **settings})
    except TypeError as error:  # an unknown keyword
        raise ValueError(f"bad setting for {cls.__name__}: {error}") from error


def ask_fixed(space: SearchSpace, trial: optuna.Trial, as_integers: bool = False) -> Config:
    """Ask every decision of ``space`` (all options, whatever came before) and decode the answers (:func:`decode`):
    the fixed parameter set that GP, CMA-ES and NSGA-II model. ``as_integers`` asks option indices as integers,
    for CMA-ES, which has no categorical parameters."""
    indices = {}
    for i, decision in enumerate(space.decisions):
        if as_integers:
            indices[decision.name] = trial.suggest_int(decision.name, 0, space.n_options(i) - 1)
        else:
            indices[decision.name] = decision.index(trial.suggest_categorical(decision.name, decision.options))
    return decode(space, indices)


def decode(space: SearchSpace, indices: Mapping[str, int]) -> Config:
    """The valid configuration closest to an answer for every decision (option indices): decisions are taken in
    order, each applicable one gets its answer when the earlier choices allow it, else the allowed option nearest
    in index (the lower one on a tie)."""
    choices: Config = {}
    while (i := space.next_decision(choices)) is not None:
        allowed = np.flatnonzero(space.valid_options(choices))
        wanted = indices[space.decisions[i].name]
        nearest = int(allowed[np.argmin(np.abs(allowed - wanted) * 2 + (allowed > wanted))])
        choices = space.choose(choices, nearest)
    return choices


def _run_optuna(method: str) -> MethodRunner:
    def run(search: Search, seed: int, settings: Mapping[str, Any]) -> dict[str, Any]:
        fixed = method in ("gp", "cmaes", "ga")
        with quiet_optuna(optuna.logging.ERROR), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*independent sampl.*")
            search.study.sampler = optuna_sampler(method, seed, settings)
            while not search.done:
                trial = search.study.ask()
                config = ask_fixed(search.space, trial, method == "cmaes") if fixed else search.space.suggest(trial)
                try:
                    record = search.evaluate(config, trial)
                except BudgetExhausted:
                    search.study.tell(trial, state=TrialState.FAIL)
                    break
                search.study.tell(trial, record.val_accuracy)
        return {}

    return run


def _run_uniform(search: Search, seed: int, settings: Mapping[str, Any]) -> dict[str, Any]:
    if settings:
        raise ValueError(f"uniform random search has no settings, got {', '.join(settings)}")
    rng = np.random.default_rng(seed)
    with contextlib.suppress(BudgetExhausted):
        while True:
            search.evaluate(search.space.sample_uniform(rng))
    return {}


# -- methods the project implements -----------------------------------------------------------------------------


def configured(cls: type, settings: Mapping[str, Any], **fixed: Any) -> Any:
    """``cls(**fixed, **settings)``, with a one-line ValueError naming the fields when a setting is unknown."""
    names = [f.name for f in fields(cls) if f.name not in fixed]
    unknown = sorted(set(settings) - set(names))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)} for {cls.__name__}; choose from {', '.join(names)}")
    return cls(**fixed, **settings)


def _run_evolution(search: Search, seed: int, settings: Mapping[str, Any]) -> dict[str, Any]:
    from trends.automl.evolution import EvolutionConfig, run_evolution

    run_evolution(search, seed, configured(EvolutionConfig, settings))
    return {}


def _run_reinforce(search: Search, seed: int, settings: Mapping[str, Any]) -> dict[str, Any]:
    from trends.automl.reinforce import ReinforceConfig, run_reinforce

    run_reinforce(search, seed, configured(ReinforceConfig, settings))
    return {}


def _run_ppo_controller(search: Search, seed: int, settings: Mapping[str, Any]) -> dict[str, Any]:
    from trends.automl.ppo_controller import PPOControllerConfig, run_ppo_controller

    run_ppo_controller(search, seed, configured(PPOControllerConfig, settings))
    return {}


def _run_darts(search: Search, seed: int, settings: Mapping[str, Any]) -> dict[str, Any]:
    from trends.automl.darts import DartsConfig, search_darts

    result = search_darts(search.space, configured(DartsConfig, settings, seed=seed))
    with contextlib.suppress(BudgetExhausted):  # a resumed search whose budget is already spent
        search.evaluate(result.config)
    unit = reference_training_seconds(search.space, seed)
    return {
        "supernet_seconds": result.seconds,
        "training_seconds_unit": unit,
        "supernet_trainings": result.seconds / unit,
        "alphas": result.alphas,
    }


def reference_training_seconds(space: SearchSpace, seed: int, n: int = DARTS_COST_REFERENCES) -> float:
    """The mean wall time of training ``n`` configurations drawn uniformly from ``space`` with its recipe, timed
    now, in this process: the unit DARTS' super-network cost is counted in. Timed beside the super-network
    rather than taken from the table, whose times depend on how busy the machine was when it was built."""
    from trends.data import load_dataset
    from trends.training import train_network

    configs = list(space.enumerate())
    rng = np.random.default_rng(seed)
    data = load_dataset(space.dataset)
    seconds = []
    for i in rng.choice(len(configs), size=n, replace=False):
        spec, recipe = space.build(configs[i])
        seconds.append(train_network(spec, data, recipe).seconds)
    return float(np.mean(seconds))


def _run_rl(search: Search, seed: int, settings: Mapping[str, Any]) -> dict[str, Any]:
    """MaskablePPO on the search environment, learning while it searches: the environment's backend is the search
    itself, so every configuration the agent completes is evaluated, charged and recorded like any method's.
    ``settings`` override :data:`RL_SETTINGS` (any MaskablePPO keyword)."""
    import gymnasium as gym
    import torch
    from sb3_contrib import MaskablePPO

    import envs  # noqa: F401  (registers the ids)

    env = gym.make("trendgym/ArchitectureSearch-v0", space=search.space, backend=_SearchBackend(search))
    torch.manual_seed(seed)
    try:
        model = MaskablePPO("MlpPolicy", env, seed=seed, device="cpu", **{**RL_SETTINGS, **settings})
    except TypeError as error:  # an unknown keyword
        raise ValueError(f"bad setting for MaskablePPO: {error}") from error
    try:  # every episode evaluates one configuration: the search's budget ends the learning
        model.learn(total_timesteps=search.budget * len(search.space.decisions) + 1)
    except BudgetExhausted:
        pass
    finally:
        env.close()
    return {}


class _SearchBackend:
    """A backend that answers through a :class:`Search`, so an environment's evaluations are the search's."""

    def __init__(self, search: Search) -> None:
        self.search = search
        self.space = search.space

    def evaluate(self, config: Mapping[str, Any]) -> Evaluation:
        record = self.search.evaluate(config)  # charges the budget, records the trial
        return self.search.backend.evaluate(record.config)  # a table lookup, or the evaluator's cache: no training


_METHOD_RUNNERS: dict[str, MethodRunner] = {
    **{m: _run_optuna(m) for m in OPTUNA_METHODS},
    "uniform": _run_uniform,
    "evolution": _run_evolution,
    "reinforce": _run_reinforce,
    "ppo-controller": _run_ppo_controller,
    "rl": _run_rl,
    "darts": _run_darts,
}

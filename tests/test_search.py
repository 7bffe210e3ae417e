"""The search runner: every method spends exactly its budget of distinct configurations, records each one in the
study, and a search that crashed resumes from the storage without losing or repeating a finished trial."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState

import agents.search as search_module
from agents.search import METHODS, ask_fixed, decode, open_study, run_search
from trends.automl.backends import TableBackend
from trends.automl.search import BudgetExhausted, Search
from trends.automl.space import get_space
from trends.automl.table import config_json, load_table

REPO = Path(__file__).resolve().parents[1]
ARCH = get_space("mnist1d-arch")
FAST_METHODS = [m for m in METHODS if m not in ("darts", "rl", "gp")]  # those three are tested on their own


def memory_search(budget: int) -> Search:
    return Search(TableBackend(ARCH), budget, open_study("memory", "test"))


@pytest.mark.parametrize("method", FAST_METHODS)
def test_every_method_spends_exactly_its_budget(method):
    outcome = run_search("mnist1d-arch", method, budget=25, seed=3, storage="memory")
    assert len(outcome.records) == 25 and outcome.stopped == "budget spent"
    table = load_table("mnist1d-arch")
    seen = set()
    for record in outcome.records:
        assert ARCH.is_valid(record.config)
        assert record.val_accuracy == table.lookup(record.config).val_accuracy
        assert record.repeat == (config_json(record.config) in seen)
        seen.add(config_json(record.config))
    curve = outcome.anytime
    assert curve.shape == (25, 2) and np.all(np.diff(curve[:, 0]) >= 0)  # best so far never falls
    assert curve[-1, 0] == max(r.val_accuracy for r in outcome.records)


@pytest.mark.parametrize("method", ["gp", "rl"])
def test_slow_to_start_methods_also_spend_their_budget(method):
    outcome = run_search("mnist1d-arch", method, budget=12, seed=0, storage="memory")
    assert len(outcome.records) == 12


@pytest.mark.parametrize("method", ["random", "evolution"])
def test_a_seed_fixes_the_search(method):
    first = run_search("mnist1d-arch", method, budget=15, seed=7, storage="memory")
    second = run_search("mnist1d-arch", method, budget=15, seed=7, storage="memory")
    other = run_search("mnist1d-arch", method, budget=15, seed=8, storage="memory")
    assert [r.config for r in first.records] == [r.config for r in second.records]
    assert [r.config for r in first.records] != [r.config for r in other.records]


def test_every_evaluation_is_one_complete_trial_and_a_repeat_costs_budget_but_no_training():
    search = memory_search(budget=3)
    asked = []
    real_evaluate = search.backend.evaluate
    search.backend.evaluate = lambda config: asked.append(config) or real_evaluate(config)
    config = ARCH.sample(np.random.default_rng(0))
    for _ in range(3):
        search.evaluate(config)
    assert len(asked) == 1 and search.distinct == 1 and search.done
    assert [r.repeat for r in search.records] == [False, True, True]
    trials = search.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 3 and {t.value for t in trials} == {search.records[0].val_accuracy}
    assert json.loads(trials[0].user_attrs["config"]) == ARCH.canonical(config)
    with pytest.raises(BudgetExhausted, match="budget of 3"):
        search.evaluate(config)


def test_an_invalid_configuration_is_refused_before_it_is_charged():
    search = memory_search(budget=2)
    with pytest.raises(ValueError, match="layer1_width"):
        search.evaluate({"layer1_type": "dense"})
    assert not search.records


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2), min_size=len(ARCH.decisions), max_size=len(ARCH.decisions)))
def test_decode_always_gives_a_valid_configuration_and_keeps_allowed_answers(indices):
    answers = {d.name: min(i, len(d.options) - 1) for d, i in zip(ARCH.decisions, indices, strict=True)}
    config = decode(ARCH, answers)
    assert ARCH.is_valid(config)
    if ARCH.is_valid({name: ARCH.decisions[i].options[answers[name]] for i, name in enumerate(ARCH.names)}):
        assert all(config[name] == ARCH.decisions[ARCH.names.index(name)].options[answers[name]] for name in config)


def test_fixed_parameters_are_the_same_on_every_trial_whatever_the_configuration():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        assert ARCH.is_valid(ask_fixed(ARCH, trial))
        study.tell(trial, 0.0)
    assert all(set(t.params) == set(ARCH.names) for t in study.trials)


def test_darts_evaluates_its_argmax_and_states_its_cost(monkeypatch):
    import trends.automl.darts as darts

    chosen = ARCH.sample(np.random.default_rng(5))
    result = type("Result", (), {"config": chosen, "seconds": 12.0, "alphas": {}})()
    monkeypatch.setattr(darts, "search_darts", lambda space, config: result)
    monkeypatch.setattr(search_module, "reference_training_seconds", lambda space, seed: 1.5)
    outcome = run_search("mnist1d-arch", "darts", budget=10, storage="memory")
    assert [r.config for r in outcome.records] == [ARCH.canonical(chosen)]
    assert outcome.equivalent_trainings == pytest.approx(1 + 12.0 / 1.5)


# -- crash and resume --------------------------------------------------------------------------------------------

CRASHING_SEARCH = textwrap.dedent(
    """
    import os, sys
    from agents.search import run_search
    from trends.automl.backends import TableBackend
    from trends.automl.space import get_space

    class CrashingBackend(TableBackend):
        calls = 0
        def evaluate(self, config):
            CrashingBackend.calls += 1
            if CrashingBackend.calls == int(sys.argv[3]):
                os._exit(9)  # like a SIGKILL: no cleanup, no exception handler runs
            return super().evaluate(config)

    run_search("mnist1d-arch", sys.argv[2], 30, seed=4, backend=CrashingBackend(get_space("mnist1d-arch")),
               storage=sys.argv[1], study_name="crash-test")
    """
)


@pytest.mark.parametrize("method", ["evolution", "tpe"])
def test_a_search_killed_in_the_middle_loses_nothing_and_resumes_from_the_storage(tmp_path, method):
    url = f"sqlite:///{tmp_path / 'search.db'}"
    crash = subprocess.run(
        [sys.executable, "-c", CRASHING_SEARCH, url, method, "12"], cwd=REPO, capture_output=True, text=True
    )
    assert crash.returncode == 9, crash.stderr
    study = open_study(url, "crash-test")
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    finished = [json.loads(t.user_attrs["config"]) for t in complete]
    assert sum(not t.user_attrs["repeat"] for t in complete) == 11
    # every evaluation before the crash was written (repeats too); the training in flight was not

    resumed = run_search("mnist1d-arch", method, 30, seed=4, storage=url, study_name="crash-test")
    configs = [r.config for r in resumed.records]
    assert len(configs) == 30
    assert configs[: len(finished)] == finished
    states = {t.state for t in open_study(url, "crash-test").get_trials()}
    assert TrialState.RUNNING not in states  # a trial the crash left running is marked failed
    if method == "evolution":  # deterministic given its seed: the resumed run is the run that would have happened
        uninterrupted = run_search("mnist1d-arch", method, 30, seed=4, storage="memory")
        assert configs == [r.config for r in uninterrupted.records]


def test_darts_cost_unit_is_timed_on_trainings_of_the_space():
    from trends.automl.space import Categorical, SearchSpace
    from trends.models import LayerSpec, NetworkSpec
    from trends.training import TrainRecipe

    def build(config):
        return NetworkSpec((LayerSpec("dense", int(config["units"])),)), TrainRecipe(max_epochs=2, seed=0)

    tiny = SearchSpace("tiny", "digits", (Categorical("units", (8, 16, 32)),), build)
    seconds = search_module.reference_training_seconds(tiny, seed=0, n=2)
    assert 0 < seconds < 60

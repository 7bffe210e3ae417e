"""The AutoML evaluator: a configuration is trained once and served from the Optuna storage ever after, by this
evaluator, a new one, or another process; keys tell configurations apart exactly; a kill in the middle of a
training loses nothing recorded and leaves no partial record; the cache is a plain Optuna study; a bad storage
URL is one line."""

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest

from trends.automl import evaluator as evaluator_module
from trends.automl.evaluator import DEFAULT_STUDY, Evaluation, Evaluator, config_key, storage_url
from trends.models import LayerSpec, NetworkSpec
from trends.training import TrainRecipe

ROOT = Path(__file__).resolve().parents[1]
LINEAR = NetworkSpec()
MLP = NetworkSpec((LayerSpec("dense", 8),))
QUICK = TrainRecipe(max_epochs=2)


@pytest.fixture
def training_calls(monkeypatch) -> list[tuple]:
    """Counts the trainings the evaluator starts (they still run for real)."""
    calls: list[tuple] = []
    real = evaluator_module.train_network

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluator_module, "train_network", counted)
    return calls


@pytest.fixture
def cache_path(tmp_path) -> Path:
    return tmp_path / "cache.db"


def test_a_miss_trains_and_records_and_a_repeat_is_a_hit(cache_path, training_calls):
    evaluator = Evaluator(cache_path)
    assert len(evaluator) == 0
    first = evaluator.evaluate("digits", MLP, QUICK)
    assert not first.cached and len(training_calls) == 1 and len(evaluator) == 1
    assert 0.0 <= first.val_accuracy <= 1.0 and 1 <= first.epochs <= 2
    assert first.parameters == 64 * 8 + 8 + 8 * 10 + 10 and first.flops == 64 * 8 + 8 * 10

    again = evaluator.evaluate("digits", MLP, QUICK)
    assert again.cached and len(training_calls) == 1
    assert dataclasses.astuple(again)[:-1] == dataclasses.astuple(first)[:-1]  # every field but `cached`
    assert again == first


def test_a_new_evaluator_on_the_same_file_sees_every_record(cache_path, training_calls):
    first = Evaluator(cache_path)
    recorded = [first.evaluate("digits", spec, QUICK) for spec in (LINEAR, MLP)]

    second = Evaluator(cache_path)
    assert len(second) == 2 and second.records() == recorded
    assert second.lookup("digits", MLP, QUICK) == recorded[1]
    assert second.evaluate("digits", LINEAR, QUICK).cached
    assert len(training_calls) == 2


def test_lookup_never_trains(cache_path, training_calls):
    evaluator = Evaluator(cache_path)
    assert evaluator.lookup("digits", MLP, QUICK) is None
    assert training_calls == [] and len(evaluator) == 0


def test_a_record_written_by_another_evaluator_meanwhile_is_found_without_training(cache_path, training_calls):
    mine, theirs = Evaluator(cache_path), Evaluator(cache_path)
    mine.lookup("digits", MLP, QUICK)  # indexed before the other one writes
    written = theirs.evaluate("digits", MLP, QUICK)
    assert mine.evaluate("digits", MLP, QUICK) == written and len(training_calls) == 1


def test_a_key_written_during_training_is_not_written_twice(cache_path, monkeypatch):
    """Two processes train the same configuration at once; the one finishing second finds the first's record
    when it re-checks before writing, returns it, and writes nothing."""
    mine, theirs = Evaluator(cache_path), Evaluator(cache_path)
    real = evaluator_module.train_network

    def racing(*args, **kwargs):
        monkeypatch.setattr(evaluator_module, "train_network", real)
        written = theirs.evaluate("digits", LINEAR, QUICK)  # the other process finishes first
        return dataclasses.replace(real(*args, **kwargs), val_accuracy=written.val_accuracy - 0.5)

    monkeypatch.setattr(evaluator_module, "train_network", racing)
    mine_result = mine.evaluate("digits", LINEAR, QUICK)
    assert mine_result == theirs.lookup("digits", LINEAR, QUICK) and not mine_result.cached
    assert len(optuna.load_study(study_name=DEFAULT_STUDY, storage=storage_url(cache_path)).trials) == 1


def test_duplicate_trials_of_one_key_serve_the_first(cache_path):
    evaluator = Evaluator(cache_path)
    first = evaluator.evaluate("digits", LINEAR, QUICK)
    duplicate = dataclasses.replace(first, val_accuracy=0.0)
    evaluator.study.add_trial(optuna.trial.create_trial(value=0.0, user_attrs=duplicate.to_user_attrs()))
    reopened = Evaluator(cache_path)
    assert len(reopened) == 1 and reopened.lookup("digits", LINEAR, QUICK) == first


def test_configurations_differing_in_any_field_have_different_keys():
    base = config_key("digits", MLP, QUICK)
    layer = MLP.layers[0]
    other_layers = [
        dataclasses.replace(layer, width=9),
        dataclasses.replace(layer, activation="tanh"),
        dataclasses.replace(layer, dropout=0.1),
        dataclasses.replace(layer, skip=True),
        dataclasses.replace(layer, kernel=5),  # unused by a dense layer, but part of the spec: kept apart
    ]
    other_recipes = [
        dataclasses.replace(QUICK, learning_rate=2e-3),
        dataclasses.replace(QUICK, batch_size=32),
        dataclasses.replace(QUICK, max_epochs=3),
        dataclasses.replace(QUICK, patience=6),
        dataclasses.replace(QUICK, weight_decay=1e-4),
        dataclasses.replace(QUICK, optimizer="sgd"),
        dataclasses.replace(QUICK, seed=1),
    ]
    keys = [config_key("mnist1d", MLP, QUICK), config_key("digits", LINEAR, QUICK)]
    keys += [config_key("digits", NetworkSpec((changed,)), QUICK) for changed in other_layers]
    keys += [config_key("digits", NetworkSpec((layer, layer)), QUICK)]
    keys += [config_key("digits", MLP, recipe) for recipe in other_recipes]
    assert base not in keys and len(set(keys)) == len(keys)


def test_equal_configurations_built_separately_share_a_key():
    one = config_key("digits", NetworkSpec((LayerSpec("dense", 8),)), TrainRecipe(learning_rate=1, max_epochs=2))
    other = config_key("digits", NetworkSpec([LayerSpec("dense", 8, activation="relu")]), TrainRecipe(1.0, 64, 2))
    assert one == other and len(one) == evaluator_module.KEY_LENGTH


def test_the_cache_is_a_plain_optuna_study_whose_user_attrs_round_trip(cache_path):
    evaluator = Evaluator(cache_path)
    recorded = [evaluator.evaluate("digits", spec, QUICK) for spec in (LINEAR, MLP)]

    study = optuna.load_study(study_name=DEFAULT_STUDY, storage=f"sqlite:///{cache_path}")
    assert len(study.trials) == 2 and study.direction == optuna.study.StudyDirection.MAXIMIZE
    for trial, evaluation in zip(study.trials, recorded, strict=True):
        assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == evaluation.val_accuracy
        assert len(trial.intermediate_values) == evaluation.epochs  # the learning curve, for optuna-dashboard
        assert trial.user_attrs["network"] == evaluation.spec.describe()
        restored = Evaluation.from_user_attrs(trial.user_attrs)
        assert restored == evaluation and restored.spec == evaluation.spec and restored.recipe == evaluation.recipe


def test_the_default_storage_is_a_sqlite_file_under_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evaluator = Evaluator()
    assert (tmp_path / "runs" / "automl" / "cache.db").is_file()
    assert evaluator.url == f"sqlite:///{tmp_path / 'runs' / 'automl' / 'cache.db'}"


def test_a_sqlite_path_gets_its_folder_created_and_a_typed_url_does_not(tmp_path):
    Evaluator(tmp_path / "new" / "folder" / "cache.db")
    assert (tmp_path / "new" / "folder" / "cache.db").is_file()
    with pytest.raises(ValueError, match="does not exist; create it first"):
        Evaluator(f"sqlite:///{tmp_path}/typo/folder/cache.db")
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize(
    "url",
    [
        "runs/automl/cache.db",
        "nonsense://",
        "not a url://x",
        "postgresql://user:secret@127.0.0.1:1/db",
        "sqlite:///a_file/cache.db",
    ],
)
def test_a_bad_storage_is_one_line_without_the_password(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").touch()
    with pytest.raises(ValueError) as error:
        Evaluator(url)
    message = str(error.value)
    assert "\n" not in message and "secret" not in message and len(message) < 300


@pytest.mark.parametrize(
    ("url", "module", "install"),
    [
        ("postgresql://user:secret@127.0.0.1:1/db", "psycopg", "python -m pip install 'psycopg[binary]'"),
        ("postgresql+psycopg2://user@127.0.0.1:1/db", "psycopg2", "python -m pip install psycopg2-binary"),
    ],
)
def test_a_missing_database_driver_names_the_install_that_brings_it(url, module, install, monkeypatch):
    """Optuna's own message ("Failed to import DB access module ... install appropriate one") names neither."""
    monkeypatch.setitem(sys.modules, module, None)  # import psycopg fails, as when the extra is not installed
    with pytest.raises(ValueError) as error:
        Evaluator(url)
    message = str(error.value)
    assert message.endswith(f"its database driver {module} is not installed; install it with: {install}"), message
    assert "secret" not in message


def test_a_bad_configuration_fails_before_training(cache_path, training_calls):
    evaluator = Evaluator(cache_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        evaluator.evaluate("cifar", LINEAR, QUICK)
    with pytest.raises(TypeError, match="NetworkSpec"):
        evaluator.evaluate("digits", (LayerSpec("dense", 8),), QUICK)
    assert training_calls == []


def test_optuna_stays_quiet_and_keeps_its_verbosity(cache_path, capfd):
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        Evaluator(cache_path).evaluate("digits", LINEAR, QUICK)
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


CHILD = """
import sys
from pathlib import Path
from trends.automl import evaluator
from trends.models import NetworkSpec
from trends.training import TrainRecipe

real = evaluator.train_network

def announced(*args, **kwargs):
    print("training", flush=True)
    return real(*args, **kwargs)

evaluator.train_network = announced
cache = evaluator.Evaluator(Path(sys.argv[1]))
cache.evaluate("digits", NetworkSpec(), TrainRecipe(max_epochs=2))
print("recorded", flush=True)
cache.evaluate("digits", NetworkSpec(), TrainRecipe(max_epochs=1_000_000, patience=1_000_000))  # minutes
print("finished", flush=True)
"""


def test_a_kill_during_training_keeps_every_record_and_writes_no_partial_one(cache_path, training_calls):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(cache_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=cache_path.parent,
        env=env,
    )
    watchdog = threading.Timer(120, child.kill)  # a hung child fails the test instead of hanging it
    watchdog.start()
    try:
        lines = [child.stdout.readline().strip() for _ in range(3)]
        assert lines == ["training", "recorded", "training"]
        time.sleep(0.3)  # well inside the slow training (not asserted: the kill is safe at any moment)
        child.send_signal(signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
    finally:
        watchdog.cancel()
        child.stdout.close()

    study = optuna.load_study(study_name=DEFAULT_STUDY, storage=storage_url(cache_path))
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE]
    evaluator = Evaluator(cache_path)
    assert [record.recipe for record in evaluator.records()] == [TrainRecipe(max_epochs=2)]
    assert evaluator.evaluate("digits", LINEAR, TrainRecipe(max_epochs=2)).cached and training_calls == []
    assert evaluator.lookup("digits", LINEAR, TrainRecipe(max_epochs=1_000_000, patience=1_000_000)) is None


def test_processes_creating_one_new_storage_at_once_all_open_it(cache_path):
    """Optuna's table creation races when two processes create the same new storage at once; the loser retries."""
    opener = "import sys, pathlib; from trends.automl.evaluator import Evaluator; Evaluator(pathlib.Path(sys.argv[1]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen([sys.executable, "-c", opener, str(cache_path)], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0], [err for _, err in results]
    assert len(Evaluator(cache_path)) == 0

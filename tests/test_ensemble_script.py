"""scripts/ensemble.py: each command prints its table against the best single member and writes it; bad input is
one line and a non-zero exit."""

import csv
import shutil

import pytest
from helpers import assert_one_line_error, load_script, run_main

ensemble = load_script("ensemble")


@pytest.mark.slow  # builds the digits pool of members: about 40 s without its cache
def test_members_build_lists_the_pool_best_first(pool_cache, digits_pool, tmp_path, capsys):
    code, out, err = run_main(ensemble, ["members", "build", "--dataset", "digits", "--cache-dir", str(pool_cache),
                                         "--out", str(tmp_path)], capsys)  # fmt: skip
    assert code == 0, err
    assert f"digits: {digits_pool.n_members} members" in out
    rows = list(csv.DictReader((tmp_path / "members-digits.csv").open()))
    assert len(rows) == digits_pool.n_members
    accuracies = [float(r["val_accuracy"]) for r in rows]
    assert accuracies == sorted(accuracies, reverse=True)


@pytest.mark.slow  # builds the digits pool of members: about 40 s without its cache
def test_combine_compares_every_method_with_the_best_single_member(pool_cache, digits_pool, tmp_path, capsys):
    argv = ["combine", "--dataset", "digits", "--method", "average", "caruana", "stacking"]
    code, out, err = run_main(ensemble, [*argv, "--cache-dir", str(pool_cache), "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "| best single member (" in out and "| caruana |" in out and "val cross-validated" in out
    rows = list(csv.DictReader((tmp_path / "combine-digits-seed0.csv").open()))
    assert [r["name"].split(" (")[0] for r in rows] == ["best single member", "average", "caruana", "stacking"]
    caruana = [float(w) for w in rows[2]["weights"].split(";")]
    assert len(caruana) == digits_pool.n_members and sum(caruana) == pytest.approx(1.0)
    assert rows[3]["weights"] == ""  # stacking weighs classes, not members


def test_agents_plays_each_run_and_their_ensemble_on_the_same_courses(trained_run, tmp_path, capsys):
    other = tmp_path / "ppo" / "Ski-v0_2"
    shutil.copytree(trained_run, other)
    argv = ["agents", "--runs", str(trained_run), str(other), "--episodes", "2", "--out", str(tmp_path / "out")]
    code, out, err = run_main(ensemble, argv, capsys)
    assert code == 0, err
    assert "ensemble of 2 (vote)" in out and "ensemble - best member" in out
    rows = list(csv.DictReader((tmp_path / "out" / "agents.csv").open()))
    assert len(rows) == 3
    assert rows[0]["return_mean"] == rows[1]["return_mean"] == rows[2]["return_mean"]  # two copies of one agent


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["combine", "--method", "magic"], 2, "invalid choice"),
        (["members", "rebuild"], 2, "invalid choice"),
        (["agents"], 2, "--runs"),
        (["agents", "--runs", "only-one"], 2, "two or more runs"),
        (["agents", "--runs", "nowhere-1", "nowhere-2"], 1, "does not exist"),
    ],
)
def test_bad_input_is_one_line(argv, code, message, capsys):
    result, _, err = run_main(ensemble, argv, capsys)
    assert_one_line_error(result, err, code, message)

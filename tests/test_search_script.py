"""scripts/search.py: a search, its resumption, the comparison's files, and one-line errors for bad input."""

import itertools
import sys

import pytest
from helpers import assert_one_line_error, load_script, run_main
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.cli import command
from agents.search import open_study

search_script = load_script("search")


def test_a_search_prints_its_best_and_running_it_again_with_a_larger_budget_resumes_it(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'searches.db'}"
    argv = ["--method", "evolution", "--seed", "1", "--storage", url]
    code, out, err = run_main(search_script, [*argv, "--budget", "6"], capsys)
    assert code == 0, err
    assert "configurations evaluated: 6," in out and "best validation accuracy" in out
    code, out, _ = run_main(search_script, [*argv, "--budget", "10"], capsys)
    assert code == 0 and "configurations evaluated: 10," in out
    study = open_study(url, "search:mnist1d-arch:evolution:table:seed1")
    assert len(study.trials) == 10  # the first six were not evaluated again


def test_method_settings_reach_the_method_and_name_their_own_study(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'searches.db'}"
    argv = ["--method", "evolution", "--budget", "12", "--storage", url, "--method-args", "population_size:12"]
    assert run_main(search_script, argv, capsys)[0] == 0
    assert run_main(search_script, argv[:-2], capsys)[0] == 0  # the default population, 10
    variant = open_study(url, "search:mnist1d-arch:evolution:table:seed0:population_size=12").trials
    default = open_study(url, "search:mnist1d-arch:evolution:table:seed0").trials
    assert len(variant) == len(default) == 12
    configs = [[t.user_attrs["config"] for t in trials] for trials in (variant, default)]
    assert configs[0][:10] == configs[1][:10] and configs[0][10:] != configs[1][10:]  # 2 more random draws


def test_compare_writes_curves_png_csv_tensorboard_and_the_table(tmp_path, capsys):
    out_dir, tb = tmp_path / "bench", tmp_path / "tb"
    argv = ["compare", "--methods", "random", "evolution", "--seeds", "2", "--budget", "8", "--budgets", "4", "8"]
    argv += ["--workers", "1", "--out", str(out_dir), "--no-readme", "--tensorboard", str(tb)]
    code, out, err = run_main(search_script, argv, capsys)
    assert code == 0, err
    assert "| random |" in out and "| evolution |" in out and "val @8" in out
    csv_lines = (out_dir / "automl_search.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 2 * 2 * 8  # methods x seeds x evaluations
    assert (out_dir / "automl_search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = EventAccumulator(str(tb / "evolution"))
    events.Reload()
    medians = events.Scalars("search/best_val_accuracy_median")
    assert [e.step for e in medians] == list(range(1, 9))
    assert all(b.value >= a.value for a, b in itertools.pairwise(medians))


@pytest.mark.parametrize(
    "argv",
    [
        ["--storage", "postgresql://user:secret@127.0.0.1:1/db", "--budget", "2"],
        ["worker", "--study", "s", "--storage", "postgresql://user:secret@127.0.0.1:1/db", "--method", "tpe"],
    ],
)
def test_a_missing_postgres_driver_is_one_line_with_a_pip_command_that_runs(argv, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as when setup.cfg's extra postgres is not installed
    exit_code, _, err = run_main(search_script, argv, capsys)
    assert_one_line_error(exit_code, err, 1, "its database driver psycopg is not installed")
    assert err.rstrip().endswith(f"install it with: {command('python')} -m pip install 'psycopg[binary]'")
    assert "secret" not in err


@pytest.mark.parametrize(
    ("argv", "code", "mentions"),
    [
        (["--method", "magic"], 2, "invalid choice"),
        (["--budget", "0"], 2, "--budget"),
        (["--space", "cifar"], 2, "invalid choice"),
        (["--budget", "600"], 1, "exceeds the 542 configurations"),
        (["--space", "digits-hparams", "--budget", "3"], 1, "build-table --space digits-hparams"),
        (["--storage", "runs/cache.db"], 1, "not a SQLAlchemy URL"),
        (["--storage", "nosuchdriver://host/db"], 1, "cannot open the storage"),
        (["--method", "evolution", "--method-args", "population:3"], 1, "choose from population_size"),
        (["--method", "tpe", "--method-args", "startup:3"], 1, "bad setting for TPESampler"),
        (["--method-args", "oops"], 1, "malformed method setting"),
        (["compare", "--seeds", "0"], 2, "--seeds"),
        (["build-table", "--workers", "-1"], 2, "--workers"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(argv, code, mentions, capsys):
    exit_code, _, err = run_main(search_script, argv, capsys)
    assert_one_line_error(exit_code, err, code, mentions)

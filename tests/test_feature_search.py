"""agents/feature_search.py and `search.py --space features-*`: every method's outcome, the cache, the CLI's errors,
the benchmark's report, and the RL agent learning the synthetic dataset's known features."""

import numpy as np
import pytest
from helpers import assert_one_line_error, load_script, run_main

from agents.benchmarks.feature_engineering import (
    FeatureEngineeringConfig,
    run_feature_engineering,
    write_feature_engineering_report,
)
from agents.feature_search import (
    FEATURE_METHODS,
    BudgetSpent,
    SearchBudget,
    dataset_of_space,
    known_features_found,
    run_feature_search,
)
from trends.features import KNOWN_FEATURES, FeatureScorer, load_tabular

search_script = load_script("search")
KNOWN = KNOWN_FEATURES["synthetic"]


@pytest.mark.parametrize("method", FEATURE_METHODS)
def test_every_method_returns_a_consistent_outcome(method):
    outcome = run_feature_search("synthetic", method, 12, seed=1, storage="memory")
    assert (outcome.method, outcome.dataset, outcome.model, outcome.seed, outcome.budget) == (
        method,
        "synthetic",
        "linear",
        1,
        12,
    )
    expected = {"rl": 12, "random": 12, "expand-reduce": 2, "none": 1}[method]
    assert outcome.evaluations == len(outcome.anytime) == expected
    assert np.all(np.diff(outcome.anytime) >= 0)  # the best so far never falls
    scorer = FeatureScorer(load_tabular("synthetic"))
    assert outcome.score == pytest.approx(scorer.score(outcome.expressions))
    assert outcome.score == pytest.approx(outcome.anytime[-1])  # the best set is the curve's last best
    assert outcome.test_score == pytest.approx(scorer.test_score(outcome.expressions))
    assert outcome.raw_score == pytest.approx(scorer.score(load_tabular("synthetic").feature_names))
    assert outcome.gain == pytest.approx(outcome.score - outcome.raw_score)
    assert set(outcome.found) == set(KNOWN)
    assert all(outcome.found[name] for name in KNOWN if name in outcome.expressions)
    assert outcome.seconds > 0 and outcome.computed >= 1
    if method == "none":
        assert outcome.expressions == load_tabular("synthetic").feature_names and outcome.gain == 0
    if method in ("rl", "random"):
        assert outcome.score >= outcome.extra["start_score"]
        assert outcome.extra["start"] == list(load_tabular("synthetic").feature_names)


def test_expand_reduce_scores_the_selection_alone_and_with_the_raw_features():
    outcome = run_feature_search("synthetic", "expand-reduce", 1, storage="memory")
    assert outcome.extra["candidates"] == 180
    scorer = FeatureScorer(load_tabular("synthetic"))
    alone = scorer.score(outcome.extra["selected"])
    assert outcome.score == pytest.approx(max(alone, outcome.anytime[-1]))
    assert outcome.found == {"mul(x0,x1)": True, "div(x2,x3)": True}  # the filter ranks both known features


def test_a_wide_dataset_searches_from_its_most_informative_raw_features():
    outcome = run_feature_search("breast_cancer", "random", 3, storage="memory")
    assert len(outcome.extra["start"]) == 8 < len(load_tabular("breast_cancer").feature_names)
    assert outcome.found == {} and 0.9 < outcome.raw_score <= 1.0


def test_known_features_count_when_an_equivalent_expression_is_there():
    assert known_features_found("synthetic", ("x0", "mul(x2,reciprocal(x3))")) == {
        "mul(x0,x1)": False,
        "div(x2,x3)": True,
    }
    assert known_features_found("synthetic", ("mul(x1,x0)",))["mul(x0,x1)"]
    assert known_features_found("wine", ("alcohol",)) == {}


def test_the_budget_wrapper_stops_the_step_past_the_budget():
    import gymnasium as gym

    env = SearchBudget(gym.make("trendgym/FeatureEngineering-v0"), budget=2)
    env.reset(seed=0)
    mul = env.unwrapped.action_index("mul", 0, 1)
    env.step(mul)
    env.step(0)  # a stop costs a unit too
    assert env.spent and env.best_expressions[-1] == "mul(x0,x1)" and len(env.anytime) == 2
    with pytest.raises(BudgetSpent):
        env.step(0)


def test_a_search_run_again_is_served_from_the_cache(tmp_path):
    url = f"sqlite:///{tmp_path / 'features.db'}"
    for method, settings in (("random", None), ("rl", {"n_steps": 16, "batch_size": 16, "n_epochs": 1})):
        first = run_feature_search("synthetic", method, 30, seed=2, storage=url, settings=settings)
        again = run_feature_search("synthetic", method, 30, seed=2, storage=url, settings=settings)
        assert first.computed > 10 and again.computed == 0
        assert again.expressions == first.expressions and np.array_equal(again.anytime, first.anytime)


@pytest.mark.parametrize(
    ("kwargs", "mentions"),
    [
        ({"dataset": "iris"}, "unknown dataset"),
        ({"method": "tpe"}, "unknown feature method"),
        ({"model": "forest"}, "unknown model"),
        ({"budget": 0}, "budget must be"),
        ({"budget": True}, "budget must be"),
        ({"method": "random", "settings": {"k": 3}}, "no settings"),
        ({"method": "expand-reduce", "settings": {"top": 3}}, "unknown expand-reduce setting"),
        ({"method": "rl", "settings": {"bogus": 1}}, "bad setting for MaskablePPO"),
        ({"storage": "features.db"}, "not a SQLAlchemy URL"),
    ],
)
def test_bad_input_is_a_one_line_value_error(kwargs, mentions):
    arguments = {"dataset": "synthetic", "method": "none", "budget": 5, "storage": "memory", **kwargs}
    with pytest.raises(ValueError, match=mentions) as error:
        run_feature_search(**arguments)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="unknown feature space"):
        dataset_of_space("features-iris")


def test_the_rl_agent_learns_the_known_product_and_beats_the_random_policy():
    """THE learning test: on synthetic, with seed 0 and 3000 steps (about 30 s on a free core), MaskablePPO's best
    set holds mul(x0,x1) and gains far more than 0.3 of R2 over the raw features, and its own episodes end far
    above a random masked policy's: it has learned, not just stumbled on the product once."""
    rl = run_feature_search("synthetic", "rl", 3000, seed=0, storage="memory")
    random = run_feature_search("synthetic", "random", 500, seed=0, storage="memory")
    assert rl.found["mul(x0,x1)"]
    assert rl.score > rl.raw_score + 0.3 and rl.test_score > rl.raw_test_score + 0.3
    learned = np.mean(rl.extra["episode_scores"][-30:])
    assert learned > np.mean(random.extra["episode_scores"]) + 0.15


# -- the command line ----------------------------------------------------------------------------------------------


def test_the_cli_prints_the_best_set_its_scores_and_the_known_features(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'features.db'}"
    argv = ["--space", "features-synthetic", "--method", "random", "--budget", "25", "--storage", url]
    code, out, err = run_main(search_script, argv, capsys)
    assert code == 0, err
    assert "best feature set" in out and "cross-validated R2" in out and "raw features 0.4882" in out
    assert "known feature mul(x0,x1)" in out and "known feature div(x2,x3)" in out
    code, out, _ = run_main(search_script, argv, capsys)
    assert code == 0 and "served from the cache: 0)" in out
    wine = ["--space", "features-wine", "--method", "none", "--storage", "memory"]
    code, out, err = run_main(search_script, wine, capsys)
    assert code == 0 and "cross-validated accuracy" in out and "known feature" not in out


@pytest.mark.parametrize(
    ("argv", "code", "mentions"),
    [
        (["--space", "features-synthetic", "--method", "tpe"], 2, "choose one of rl, random, expand-reduce, none"),
        (["--method", "expand-reduce"], 2, "use it on a features-<dataset> space"),
        (["--model", "gbm"], 2, "--model scores features"),
        (["--space", "features-iris"], 2, "invalid choice"),
        (["--space", "features-synthetic", "--model", "forest"], 2, "invalid choice"),
        (["--space", "features-synthetic", "--budget", "0"], 2, "--budget"),
        (["--space", "features-synthetic", "--method", "random", "--method-args", "k:3"], 1, "no settings"),
    ],
)
def test_cli_mistakes_are_one_line(argv, code, mentions, capsys):
    exit_code, _, err = run_main(search_script, argv, capsys)
    assert_one_line_error(exit_code, err, code, mentions)


# -- the benchmark -------------------------------------------------------------------------------------------------


def test_the_benchmark_reports_every_method_and_the_known_features(tmp_path):
    config = FeatureEngineeringConfig(
        datasets=("synthetic", "breast_cancer"),
        seeds=(0, 1),
        methods=("rl", "random", "none"),
        budgets={"synthetic": 10, "breast_cancer": 3},
        workers=1,
    )
    result = run_feature_engineering(config)
    assert len(result.runs) == 2 * (2 + 2 + 1)  # rl and random per seed, the raw features once
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench:feature_engineering -->\nSTALE\n<!-- /bench:feature_engineering -->\nend\n")
    written = write_feature_engineering_report(result, tmp_path, readme)
    markdown = written["markdown"].read_text()
    assert written["readme"] and "STALE" not in readme.read_text() and "| rl |" in readme.read_text()
    assert "found `mul(x0,x1)`" in markdown and "| none | 0.488 |" in markdown
    assert "rl and random start from the 8 of highest mutual information" in markdown
    assert "median best cv after" in markdown
    with pytest.raises(ValueError, match="budget"):
        FeatureEngineeringConfig(datasets=("wine",), budgets={"synthetic": 5})


def test_the_published_curve_keeps_only_where_the_best_rises():
    from agents.benchmarks.feature_engineering import improvements

    curve = [0.2, 0.2, 0.5, 0.5, 0.5, 0.9]
    pairs = improvements(curve)
    assert pairs == [[1, 0.2], [3, 0.5], [6, 0.9]]
    rebuilt = [max(value for step, value in pairs if step <= n) for n in range(1, len(curve) + 1)]
    assert rebuilt == curve

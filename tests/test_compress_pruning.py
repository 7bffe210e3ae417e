"""agents.compression.pruning: every method returns a pruned network within the budget (counted on the network
itself), the report compares it with the original, the RL agent learns, the search is logged to TensorBoard, and a
bad argument is one clear ValueError."""

import statistics

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.compression.pruning import ALGOS, METHODS, prune_model
from agents.compression.search import best_episode
from trends.compression.zoo import ZOO, load_trained
from trends.models import count_flops, count_parameters

MODEL = "digits-mlp"  # two decisions an episode, 2 ms each: the fast one
EPISODES = 12


@pytest.fixture(scope="module")
def outcomes(cache_dir):
    return {
        method: prune_model(
            MODEL, preserve=0.5, method=method, episodes=EPISODES, fine_tune_epochs=1, cache_dir=cache_dir
        )
        for method in METHODS
    }


@pytest.mark.parametrize("method", METHODS)
def test_every_method_meets_the_budget_on_the_pruned_network(outcomes, cache_dir, method):
    outcome = outcomes[method]
    trained = load_trained(MODEL, cache_dir)
    shape = trained.dataset.sample_shape
    flops_ratio = count_flops(outcome.model, shape) / count_flops(trained.model, shape)
    params_ratio = count_parameters(outcome.model) / count_parameters(trained.model)
    assert flops_ratio <= 0.5
    assert flops_ratio == pytest.approx(outcome.flops_ratio)
    assert params_ratio == pytest.approx(outcome.params_ratio)
    assert len(outcome.episodes) == (1 if method == "uniform" else EPISODES)
    assert (
        outcome.val_accuracy
        == best_episode(outcome.episodes).val_accuracy
        == max(e.val_accuracy for e in outcome.episodes)
    )


@pytest.mark.parametrize("method", METHODS)
def test_the_report_has_the_original_first_then_pruned_and_fine_tuned(outcomes, cache_dir, method):
    outcome = outcomes[method]
    rows = outcome.report.rows
    assert [row.name for row in rows] == ["original", f"{method} pruned", f"{method} pruned + fine-tuned"]
    assert rows[0].score == pytest.approx(load_trained(MODEL, cache_dir).test_accuracy)
    assert rows[1].score == pytest.approx(outcome.test_accuracy)
    assert rows[2].score == pytest.approx(outcome.fine_tuned_test_accuracy)
    assert rows[1].flops / rows[0].flops == pytest.approx(outcome.flops_ratio)
    assert rows[1].parameters == rows[2].parameters < rows[0].parameters
    assert f"({rows[1].flops / rows[0].flops:.2f}x)" in outcome.report.markdown()  # ratios to the original


def test_the_rl_agent_learns_to_prune_better_than_random_actions(cache_dir):
    """With a fixed seed (deterministic), the agent's episodes after the warm-up score far above the mean of random
    episodes: an agent that did not learn would score like the random ones (0.55 here) or worse."""
    episodes = 100
    rl = prune_model(MODEL, method="rl", episodes=episodes, seed=0, fine_tune_epochs=0, cache_dir=cache_dir)
    rand = prune_model(MODEL, method="random", episodes=episodes, seed=0, fine_tune_epochs=0, cache_dir=cache_dir)
    learned = statistics.fmean(e.val_accuracy for e in rl.episodes[episodes // 2 :])
    random_mean = statistics.fmean(e.val_accuracy for e in rand.episodes)
    assert learned > random_mean + 0.15
    assert rl.val_accuracy >= rand.val_accuracy - 0.02
    assert len(rl.report.rows) == 2  # no fine-tuning: original and pruned


@pytest.mark.parametrize("algo", ALGOS)
def test_every_rl_algorithm_searches_within_the_budget(cache_dir, algo):
    outcome = prune_model(MODEL, method="rl", algo=algo, episodes=8, fine_tune_epochs=0, cache_dir=cache_dir)
    assert len(outcome.episodes) == 8
    assert all(e.flops_ratio <= 0.5 for e in outcome.episodes)


@pytest.mark.parametrize("method", ["rl", "random"])
def test_the_search_is_logged_to_tensorboard(cache_dir, tmp_path, method):
    outcome = prune_model(
        MODEL, method=method, episodes=6, fine_tune_epochs=1, tensorboard_log=tmp_path, cache_dir=cache_dir
    )
    assert outcome.run_dir is not None and outcome.run_dir.parent.parent == tmp_path
    assert (outcome.run_dir / "config.yml").is_file()
    events = EventAccumulator(str(outcome.run_dir / "search"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"compress/val_accuracy", "compress/flops_ratio", "compress/fine_tuned_test_accuracy"} <= tags
    values = [event.value for event in events.Scalars("compress/val_accuracy")]
    assert values == pytest.approx([e.val_accuracy for e in outcome.episodes])


@pytest.mark.parametrize(
    "kwargs",
    [{"method": "greedy"}, {"algo": "ppo"}, {"model": "resnet"}, {"episodes": 0}, {"fine_tune_epochs": -1}],
)
def test_a_bad_argument_is_one_clear_value_error(cache_dir, kwargs):
    with pytest.raises(ValueError, match=r"choose one of|must be") as error:
        prune_model(**{"model": MODEL, "cache_dir": cache_dir, **kwargs})
    assert "\n" not in str(error.value)


def test_a_bad_budget_is_the_envs_value_error(cache_dir):
    with pytest.raises(ValueError, match="preserve"):
        prune_model(MODEL, preserve=1.5, cache_dir=cache_dir)
    assert set(ZOO) >= {MODEL}


def test_the_compression_search_benchmark_writes_its_report(cache_dir, tmp_path):
    from agents.benchmarks.compression_search import (
        CompressionSearchConfig,
        run_compression_search,
        write_compression_search_report,
    )

    config = CompressionSearchConfig(
        seeds=(0, 1),
        episodes=4,
        prune_models=(MODEL,),
        quantize_models=(MODEL,),
        fine_tune_epochs=1,
        cache_dir=cache_dir,
    )
    result = run_compression_search(config)
    assert len(result.runs) == 2 * len(config.methods()) * 2  # two tasks, every method, two seeds
    written = write_compression_search_report(result, tmp_path)
    text = written["markdown"].read_text()
    assert "rl (td3)" in text and "uniform" in text and "2.1 points" in text
    summaries = result.to_dict()["summaries"]
    assert summaries[f"prune/{MODEL}/uniform"]["test_accuracy"]["std"] == 0.0  # one deterministic episode
    assert written["json"].is_file()
    with pytest.raises(ValueError, match="rl_algos"):
        CompressionSearchConfig(rl_algos=("ppo",))

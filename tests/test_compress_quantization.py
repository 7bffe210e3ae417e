"""agents.compression.quantization: the search methods meet the size budget, uniform takes the most bits the budget
allows, the real formats shrink the saved model, the report compares with the float32 original, the RL agent
learns (and beats uniform bits, HAQ's claim), the search is logged to TensorBoard, and a bad argument is one clear
ValueError."""

import statistics

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.compression.quantization import FIXED_METHODS, METHODS, SEARCH_METHODS, quantize_model
from trends.compression.quantize import fake_quantize, quantizable_layers, quantized_size_bytes
from trends.compression.zoo import load_trained

MODEL = "digits-mlp"  # three layers, 2 ms an episode
BUDGET = 0.1
EPISODES = 10


@pytest.fixture(scope="module")
def trained(cache_dir):
    return load_trained(MODEL, cache_dir)


@pytest.fixture(scope="module")
def outcomes(cache_dir):
    return {
        method: quantize_model(MODEL, method=method, size_budget=BUDGET, episodes=EPISODES, cache_dir=cache_dir)
        for method in METHODS
    }


def float_bytes(model) -> int:
    return sum(module.weight.numel() for _, module in quantizable_layers(model)) * 4


@pytest.mark.parametrize("method", SEARCH_METHODS)
def test_the_searches_meet_the_size_budget(outcomes, trained, method):
    outcome = outcomes[method]
    assert len(outcome.bits) == len(quantizable_layers(trained.model))
    size = quantized_size_bytes(trained.model, list(outcome.bits))
    assert size == outcome.size_bytes <= BUDGET * float_bytes(trained.model)
    assert outcome.size_ratio <= BUDGET
    assert len(outcome.episodes) == (1 if method == "uniform" else EPISODES)
    assert outcome.val_accuracy == max(e.val_accuracy for e in outcome.episodes)
    # the model is the original fake-quantized to those bits
    expected = fake_quantize(trained.model, outcome.bits).state_dict()
    for name, tensor in outcome.model.state_dict().items():
        assert tensor.equal(expected[name])


def test_uniform_takes_the_most_bits_the_budget_allows(outcomes, trained):
    bits = outcomes["uniform"].bits
    assert len(set(bits)) == 1
    one_more = [bits[0] + 1] * len(bits)
    assert quantized_size_bytes(trained.model, one_more) > BUDGET * float_bytes(trained.model)


@pytest.mark.parametrize("method", METHODS)
def test_the_report_has_the_float32_original_first(outcomes, trained, method):
    outcome = outcomes[method]
    original, row = outcome.report.rows
    assert original.name == "original fp32" and original.score == pytest.approx(trained.test_accuracy)
    assert row.name == method and row.score == pytest.approx(outcome.test_accuracy)
    assert row.size_bytes == outcome.size_bytes < original.size_bytes
    assert f"({row.size_bytes / original.size_bytes:.2f}x)" in outcome.report.markdown()
    simulated = method not in ("fp16", "int8")
    assert ("simulated" in row.note) == simulated
    assert (outcome.bits is None) == (not simulated)


@pytest.mark.parametrize("method", FIXED_METHODS)
def test_the_fixed_formats_keep_most_of_the_accuracy(outcomes, trained, method):
    assert outcomes[method].test_accuracy > trained.test_accuracy - 0.02
    assert outcomes[method].episodes == []


def test_the_rl_agent_learns_and_beats_uniform_bits(cache_dir):
    """At a tight budget (1.6 bits a weight on average), with a fixed seed (deterministic): the agent's episodes
    after the warm-up score above the mean of random ones (0.87), and its best policy is far better than the
    uniform one (1 bit everywhere, 0.82), as HAQ found mixed precision better than uniform."""
    budget, episodes = 0.05, 100
    rl = quantize_model(MODEL, "rl", budget, episodes=episodes, seed=0, cache_dir=cache_dir)
    rand = quantize_model(MODEL, "random", budget, episodes=episodes, seed=0, cache_dir=cache_dir)
    uniform = quantize_model(MODEL, "uniform", budget, cache_dir=cache_dir)
    learned = statistics.fmean(e.val_accuracy for e in rl.episodes[episodes // 2 :])
    assert learned > statistics.fmean(e.val_accuracy for e in rand.episodes) + 0.025
    assert rl.val_accuracy > uniform.val_accuracy + 0.05


def test_the_search_is_logged_to_tensorboard(cache_dir, tmp_path):
    outcome = quantize_model(MODEL, "rl", episodes=6, tensorboard_log=tmp_path, cache_dir=cache_dir)
    assert (outcome.run_dir / "config.yml").is_file()
    events = EventAccumulator(str(outcome.run_dir / "search"))
    events.Reload()
    assert {"compress/val_accuracy", "compress/size_ratio", "compress/final_test_accuracy"} <= set(
        events.Tags()["scalars"]
    )
    assert len(events.Scalars("compress/size_ratio")) == 6


@pytest.mark.parametrize("kwargs", [{"method": "int4"}, {"algo": "dqn"}, {"model": "vgg"}, {"episodes": -3}])
def test_a_bad_argument_is_one_clear_value_error(cache_dir, kwargs):
    with pytest.raises(ValueError, match=r"choose one of|must be") as error:
        quantize_model(**{"model": MODEL, "cache_dir": cache_dir, **kwargs})
    assert "\n" not in str(error.value)

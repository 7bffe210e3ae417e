"""RL Zoo-style hyper-parameter files: every file loads and resolves, overrides parse, unsafe strings refused."""

import pytest
import torch
import yaml
from stable_baselines3.common.utils import LinearSchedule

from agents.algorithms import ALGOS, AlgorithmError
from agents.hyperparams import (
    HYPERPARAMS_DIR,
    HyperparamsError,
    apply_overrides,
    load_hyperparams,
    parse_kwargs_string,
    parse_value,
    resolve,
    serialisable,
)


@pytest.mark.parametrize("algo", list(ALGOS))
def test_every_algorithm_has_a_file_whose_entries_resolve(algo):
    table = yaml.safe_load((HYPERPARAMS_DIR / f"{algo}.yml").read_text())
    assert "default" in table
    for env_id in table:
        kwargs, settings = resolve(load_hyperparams(algo, env_id), algo)  # unknown keys would raise here
        assert settings.n_envs >= 1 and settings.n_timesteps >= 1
        assert "n_envs" not in kwargs and "normalize" not in kwargs


def test_ski_entry_and_default_entry():
    raw = load_hyperparams("ppo", "trendgym/Ski-v0")
    assert raw["policy_kwargs"].startswith("dict(net_arch=[64, 64]") and raw["learning_rate"].startswith("lin_")
    assert (
        load_hyperparams("ppo", "CartPole-v1") == yaml.safe_load((HYPERPARAMS_DIR / "ppo.yml").read_text())["default"]
    )
    assert load_hyperparams("ppo", "envs:trendgym/Ski-v0") == raw  # module-prefixed ids find the same entry


def test_unknown_algorithm():
    with pytest.raises(AlgorithmError, match="unknown algorithm"):
        load_hyperparams("ppo2", "trendgym/Ski-v0")


def test_resolve_schedules_policy_kwargs_and_settings():
    raw = {
        "n_envs": 4,
        "n_timesteps": 1e5,
        "normalize": "dict(norm_obs=True, norm_reward=False)",
        "learning_rate": "lin_1e-3",
        "clip_range": 0.2,
        "policy_kwargs": "dict(net_arch=dict(pi=[32], vf=[64]), activation_fn=nn.Tanh, optimizer_class=th.optim.AdamW)",
    }
    kwargs, settings = resolve(raw, "ppo")
    assert (settings.n_envs, settings.n_timesteps) == (4, 100_000)
    assert settings.normalize == {"norm_obs": True, "norm_reward": False}
    assert isinstance(kwargs["learning_rate"], LinearSchedule)
    assert kwargs["learning_rate"](1.0) == pytest.approx(1e-3) and kwargs["learning_rate"](0.5) == pytest.approx(5e-4)
    assert kwargs["clip_range"] == 0.2
    assert kwargs["policy_kwargs"] == {
        "net_arch": {"pi": [32], "vf": [64]},
        "activation_fn": torch.nn.Tanh,
        "optimizer_class": torch.optim.AdamW,
    }
    assert resolve({"normalize": True})[1].normalize == {}
    assert resolve({"normalize": False})[1].normalize is None


def test_overrides_parse_like_rl_zoo():
    raw = apply_overrides(
        {"learning_rate": 1.0, "n_steps": 8},
        [
            "learning_rate:3e-4",
            "n_steps:256",
            "policy_kwargs:dict(net_arch=[32])",
            "normalize:true",
            "policy:MlpPolicy",
        ],
    )
    assert raw == {
        "learning_rate": 3e-4,
        "n_steps": 256,
        "policy_kwargs": "dict(net_arch=[32])",
        "normalize": True,
        "policy": "MlpPolicy",
    }
    assert parse_value("[64, 64]") == [64, 64] and parse_value("green") == "green" and parse_value("none") is None
    assert serialisable(raw) == raw  # what config.yml records is the raw form


@pytest.mark.parametrize("bad", ["learning_rate", "learning_rate:", ":3", "two words:1", "x:[1, 2"])
def test_malformed_override(bad):
    with pytest.raises(HyperparamsError):
        apply_overrides({}, [bad])


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('echo pwned')",
        "dict(x=open('/etc/passwd'))",
        "dict(f=nn.Module.__subclasses__)",
        "dict(**{'a': 1})",
        "[64, 64]",  # not a dict
        "dict(net_arch=[64,",
        "(lambda: 1)()",
    ],
)
def test_policy_kwargs_are_parsed_safely(text):
    with pytest.raises(HyperparamsError):
        parse_kwargs_string(text)


def test_bad_values_in_resolve():
    with pytest.raises(HyperparamsError, match="no hyperparameter 'n_step'"):
        resolve({"n_step": 8}, "ppo")
    with pytest.raises(HyperparamsError, match="lin_"):
        resolve({"learning_rate": "lin_fast"}, "ppo")
    with pytest.raises(HyperparamsError, match="n_envs"):
        resolve({"n_envs": 0}, "ppo")
    with pytest.raises(HyperparamsError, match="not supported"):
        resolve({"frame_stack": 4}, "ppo")


def test_an_entry_for_env_arguments_wins_over_the_plain_entry(tmp_path):
    path = tmp_path / "ppo.yml"
    path.write_text(
        "trendgym/Ski-v0:\n  n_envs: 1\n"
        "trendgym/Ski-v0 slope:blue:\n  n_envs: 2\n"
        "trendgym/Ski-v0 slope:blue continuous:true:\n  n_envs: 3\n"
        "default:\n  n_envs: 4\n"
    )

    def n_envs(env_id, **env_kwargs):
        return load_hyperparams("ppo", env_id, path, env_kwargs)["n_envs"]

    assert n_envs("trendgym/Ski-v0") == 1 and n_envs("trendgym/Ski-v0", slope="green") == 1
    assert n_envs("trendgym/Ski-v0", slope="blue") == 2 and n_envs("envs:trendgym/Ski-v0", slope="blue") == 2
    assert n_envs("trendgym/Ski-v0", slope="blue", continuous=True) == 3  # the entry naming the most arguments
    assert n_envs("trendgym/Ski-v0", slope="black", continuous=True) == 1
    assert n_envs("CartPole-v1", slope="blue") == 4


def test_the_ski_entries_per_slope():
    green = load_hyperparams("ppo", "trendgym/Ski-v0")
    assert load_hyperparams("ppo", "trendgym/Ski-v0", env_kwargs={"slope": "green"}) == green
    for slope in ("blue", "black"):
        assert load_hyperparams("ppo", "trendgym/Ski-v0", env_kwargs={"slope": slope}) != green


def test_train_env_kwargs_are_a_training_setting():
    kwargs, settings = resolve({"train_env_kwargs": "dict(trees_per_gate=1.5)", "gamma": 0.99}, "ppo")
    assert settings.train_env_kwargs == {"trees_per_gate": 1.5} and "train_env_kwargs" not in kwargs
    assert resolve({}, "ppo")[1].train_env_kwargs == {}
    with pytest.raises(HyperparamsError, match="must be a dict"):
        resolve({"train_env_kwargs": "[1, 2]"}, "ppo")

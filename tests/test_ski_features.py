"""The ski policy's features extractor: trees and the next gate in the skier's frame, in metres, from the
observation alone; reachable from a hyper-parameter entry's policy_kwargs; saved and loaded with the model."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

import envs  # noqa: F401
from agents.features import NEAR_ACROSS, NEAR_ALONG, SkiFeatures
from agents.hyperparams import parse_kwargs_string
from envs.ski.physics import OBS_SIZE


def observation(heading: float, tree: tuple[float, float], gate: tuple[float, float] = (0.0, 20.0)) -> torch.Tensor:
    obs = np.zeros(OBS_SIZE, dtype=np.float32)
    obs[1], obs[2] = math.sin(heading), math.cos(heading)
    obs[9], obs[10] = gate[0] / 20, gate[1] / 40
    obs[13:19] = [tree[0] / 20, tree[1] / 40, 0.0, 1.0, 0.0, 1.0]  # the other two trees far ahead
    return torch.as_tensor(obs[None])


def test_a_tree_on_the_skis_line_is_zero_across_whatever_the_heading():
    extractor = SkiFeatures(gym.make("trendgym/Ski-v0").observation_space)
    assert extractor.features_dim == OBS_SIZE + 14
    for heading in (0.0, 0.4, -0.7):
        obs = observation(heading, (8.0 * math.sin(heading), 8.0 * math.cos(heading)))
        features = extractor(obs)[0]
        assert torch.equal(features[:OBS_SIZE], obs[0])  # the observation itself comes first
        across, along = features[OBS_SIZE], features[OBS_SIZE + 3]
        assert across == pytest.approx(0.0, abs=1e-5) and along == pytest.approx(8.0 / NEAR_ALONG, abs=1e-5)
    straight = extractor(observation(0.0, (1.5, 6.0)))[0]
    assert straight[OBS_SIZE] == pytest.approx(1.5 / NEAR_ACROSS)  # 1.5 m to the right of a skier going straight
    assert extractor(observation(0.0, (15.0, 6.0)))[0][OBS_SIZE] == 3.0  # far aside: clamped


def test_reachable_from_policy_kwargs_and_saved_with_the_model(tmp_path):
    kwargs = parse_kwargs_string("dict(net_arch=[8], features_extractor_class=SkiFeatures)")
    assert kwargs["features_extractor_class"] is SkiFeatures
    env = gym.make("trendgym/Ski-v0")
    model = PPO("MlpPolicy", env, policy_kwargs=kwargs, n_steps=64, batch_size=64, device="cpu")
    obs, _ = env.reset(seed=0)
    action = model.predict(obs, deterministic=True)[0]
    model.save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip", device="cpu")
    assert isinstance(loaded.policy.features_extractor, SkiFeatures)
    assert loaded.predict(obs, deterministic=True)[0] == action


def test_refuses_another_observation():
    with pytest.raises(ValueError, match="vector observation"):
        SkiFeatures(gym.spaces.Box(-1, 1, (4,)))


def test_fall_margins_say_how_far_the_speed_is_below_a_falling_turn():
    space = gym.make("trendgym/Ski-v0").observation_space
    extractor = SkiFeatures(space, fall_margins=True)
    assert extractor.features_dim == OBS_SIZE + 16 and SkiFeatures(space).features_dim == OBS_SIZE + 14
    obs = observation(0.0, (5.0, 20.0))
    obs[0, 0] = (15 / 1.4 - 1) / 30  # 1 m/s below the 10.71 m/s at which a hard turn (1.4 rad/s) exceeds 15 m/s^2
    hard, gentle = extractor(obs)[0, -2:]
    assert hard == pytest.approx(0.5, abs=1e-3) and gentle == 3.0  # gentle turns: 11.7 m/s of margin, clamped

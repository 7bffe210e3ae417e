"""PPO learns LearningRateControl-v0: with the settings of ``agents/hyperparams/ppo.yml`` and a short budget it
schedules the learning rate of the instances it trained on far better than a uniformly random controller, and
better than the constant rate at the middle of the action range, which is what the untrained policy plays.

The instances are small MLPs on digits with large batches: an epoch takes a few milliseconds, and the middle of
the range (0.03) trains them only slowly (their best constant rates are 0.1 to 1), so the test tells a policy
that has learned from one that merely starts well. On the default training instances the middle of the range is
already a good schedule, and those where it is not (the CNNs) train ten times slower.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env

from agents.algorithms import make_agent
from agents.hyperparams import load_hyperparams, resolve
from envs.automl.lr_control_env import Instance
from envs.automl.lr_schedules import CosineSchedule
from trends.models import LayerSpec, NetworkSpec

ENV_ID = "trendgym/LearningRateControl-v0"
SEED = 0  # seeds 0-5 all pass, PPO's mean return 1.85-2.02
INSTANCES = [
    Instance("digits", NetworkSpec((LayerSpec("dense", width),)), batch_size=batch, seed=seed)
    for width, batch in ((16, 512), (32, 256))
    for seed in (0, 1)
]
LEARNING_STEPS = 4000  # 400 trainings of 10 epochs, about 10 s on one core
RANDOM_EPISODES = 5  # per instance
# Mean returns, in nats of validation loss: random controllers -2 to -4.5 (they crash), the middle of the range
# 0.75, cosine annealing 1.96, PPO 1.85-2.02 (seeds 0-5).
MARGIN_OVER_RANDOM = 3.0
MARGIN_OVER_MIDDLE = 0.6


def episode_return(env: gym.Env, act, instance: int) -> float:
    """The return of one training of ``instance`` under ``act(observation) -> action``."""
    obs, _ = env.reset(options={"instance": instance})
    total, done = 0.0, False
    while not done:
        obs, reward, done, _, _ = env.step(act(obs))
        total += float(reward)
    return total


def mean_return(env: gym.Env, act, episodes: int = 1) -> float:
    """The mean return of ``act`` over ``episodes`` trainings of each instance."""
    return float(np.mean([episode_return(env, act, i) for i in range(len(INSTANCES)) for _ in range(episodes)]))


def test_ppo_beats_a_random_controller_and_the_untrained_policy():
    kwargs, settings = resolve(load_hyperparams("ppo", ENV_ID), "ppo")
    assert settings.normalize is None, "the test evaluates the policy on raw observations"
    venv = make_vec_env(ENV_ID, n_envs=settings.n_envs, seed=SEED, env_kwargs={"instance_set": INSTANCES})
    model = make_agent("ppo", venv, {**kwargs, "seed": SEED, "device": "cpu"})
    model.learn(LEARNING_STEPS)

    env = gym.make(ENV_ID, instance_set=INSTANCES)
    env.action_space.seed(SEED)
    ppo = mean_return(env, lambda obs: model.predict(obs, deterministic=True)[0])
    random = mean_return(env, lambda obs: env.action_space.sample(), RANDOM_EPISODES)
    middle = mean_return(env, lambda obs: np.zeros(1, dtype=np.float32))
    cosine = mean_return(env, lambda obs: CosineSchedule(env.action_space).predict(obs)[0])
    print(f"mean return: PPO {ppo:.2f}, random {random:.2f}, middle of the range {middle:.2f}, cosine {cosine:.2f}")
    assert ppo > random + MARGIN_OVER_RANDOM, (ppo, random)
    assert ppo > middle + MARGIN_OVER_MIDDLE, (ppo, middle)

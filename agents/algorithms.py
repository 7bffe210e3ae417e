"""Stable-Baselines3 and sb3-contrib algorithms by name, with the action spaces each can act in."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium import spaces
from sb3_contrib import QRDQN, TQC, TRPO, MaskablePPO, RecurrentPPO
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

ALGOS: dict[str, type[BaseAlgorithm]] = {
    "ppo": PPO,
    "a2c": A2C,
    "dqn": DQN,
    "sac": SAC,
    "td3": TD3,
    "ddpg": DDPG,
    "qrdqn": QRDQN,
    "tqc": TQC,
    "trpo": TRPO,
    "recurrentppo": RecurrentPPO,
    "maskableppo": MaskablePPO,
}

_DISCRETE_ONLY = {"dqn", "qrdqn", "maskableppo"}
_BOX_ONLY = {"sac", "td3", "ddpg", "tqc"}
CONTINUOUS_TWIN = {"trendgym/Ski-v0": "trendgym/SkiContinuous-v0"}


class AlgorithmError(ValueError):
    """An algorithm name that does not exist, or cannot act in the env's action space."""


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    """The class for ``algo``, with the valid names in the error."""
    try:
        return ALGOS[algo.lower()]
    except KeyError:
        raise AlgorithmError(f"unknown algorithm {algo!r}; choose one of {', '.join(ALGOS)}") from None


def check_action_space(algo: str, action_space: spaces.Space, env_id: str | None = None) -> None:
    """Refuse an algorithm that cannot act in ``action_space``, and say which env it can learn instead."""
    name = algo.lower()
    wrong = (name in _DISCRETE_ONLY and not isinstance(action_space, spaces.Discrete)) or (
        name in _BOX_ONLY and not isinstance(action_space, spaces.Box)
    )
    if not wrong:
        return
    needs = "Discrete" if name in _DISCRETE_ONLY else "Box (continuous)"
    hint = ""
    if env_id in CONTINUOUS_TWIN and name in _BOX_ONLY:
        hint = f"; try --env {CONTINUOUS_TWIN[env_id]}"
    elif env_id in CONTINUOUS_TWIN.values() and name in _DISCRETE_ONLY:
        hint = f"; try --env {next(k for k, v in CONTINUOUS_TWIN.items() if v == env_id)}"
    raise AlgorithmError(
        f"{name} needs a {needs} action space but {env_id or 'the env'} has {type(action_space).__name__}{hint}"
    )


def make_agent(algo: str, env: gym.Env | VecEnv, hyperparams: dict[str, Any] | None = None) -> BaseAlgorithm:
    """Build an untrained agent of algorithm ``algo`` for ``env`` with ``hyperparams`` (constructor keywords,
    already resolved: schedules as callables, ``policy_kwargs`` as a dict)."""
    cls = algorithm_class(algo)
    spec = getattr(env, "spec", None) or getattr(getattr(env, "unwrapped", None), "spec", None)
    check_action_space(algo, env.action_space, spec.id if spec is not None else None)
    params = dict(hyperparams or {})
    policy = params.pop("policy", "MlpPolicy")
    if algo.lower() == "recurrentppo" and policy == "MlpPolicy":
        policy = "MlpLstmPolicy"
    return cls(policy, env, **params)

"""Ensemble selection by reinforcement learning: an SB3 agent learns on ``trendgym/EnsembleWeighting-v0`` which
members to add, and the best ensemble it builds is the selection, :func:`rl_selection`.

What is handed on is the ensemble of best validation accuracy among every episode the agent played while training
and one final episode of its deterministic policy (lower validation log-loss breaks a tie, then the policy's
episode, then the earlier episode). The env is deterministic with one starting state, so training is a search over
ensembles, as NAS-RL's and AMC's are over networks, and both keep the best configuration met, not the controller's
last one. It is also the fair comparison with Caruana's greedy selection, which keeps the best validation score it
met along its path. Selecting on the validation split this hard over-fits it a little, as Caruana's does; the
test split is only reported. The deterministic policy's own episode is reported beside the choice
(:attr:`SelectionResult.policy`), so a reader sees what the agent learned apart from what the search found.

The agent is built here (:func:`agents.algorithms.make_agent`, with the settings of
``agents/hyperparams/<algo>.yml``) rather than by :func:`agents.training.train`, for three reasons: the pool can
be an in-memory :class:`~trends.ensemble.pool.MemberPool` that no ``config.yml`` could reproduce; the selection
needs the training envs' records of their episodes, which ``train`` builds and closes inside; and ``train``'s
validation on held-out seeds means nothing for an env with a single starting state. With ``tensorboard_log`` the
run still gets its folder, ``config.yml`` and TensorBoard curves (SB3's and the env's ``ensemble/`` metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.algorithms import make_agent
from agents.callbacks import EpisodeMetricsCallback
from agents.hyperparams import load_hyperparams, resolve, serialisable
from agents.runs import new_run_dir, write_config
from agents.training import versions
from envs.ensemble.weighting_env import MAX_MEMBERS, EnsembleWeightingEnv, EpisodeResult
from trends.ensemble.pool import MemberPool

ENV_ID = "trendgym/EnsembleWeighting-v0"
ALGOS = ("maskableppo", "ppo", "dqn")
TORCH_THREADS = 1  # the policy networks are tiny, and other jobs share the CPU


@dataclass
class SelectionResult:
    """The ensemble an RL selection hands on, what it scores, and where it came from."""

    names: tuple[str, ...]  # the pool's members
    weights: np.ndarray  # (members,), sums to 1
    val_accuracy: float
    test_accuracy: float
    val_log_loss: float
    test_log_loss: float
    source: str  # "policy" or "training episode <n>" (1-based, over the training envs in turn)
    policy: EpisodeResult  # the trained agent's deterministic episode, chosen or not
    episodes: int  # training episodes the agent played
    timesteps: int
    run_dir: Path | None  # config.yml and TensorBoard events, with ``tensorboard_log``


def rl_selection(
    pool: str | MemberPool,
    algo: str = "maskableppo",
    timesteps: int | None = None,
    seed: int = 0,
    reward: str = "accuracy",
    tensorboard_log: str | Path | None = None,
    max_members: int = MAX_MEMBERS,
    start: str = "empty",
    cache_dir: str | Path | None = None,
) -> SelectionResult:
    """Select an ensemble from ``pool`` (``"digits"``, ``"mnist1d"`` or a MemberPool) by training ``algo``
    (``"maskableppo"``, ``"ppo"`` or ``"dqn"``) for ``timesteps`` steps (None: the hyper-parameter file's budget)
    on the ensemble-weighting env with ``reward``, ``max_members`` and ``start`` (see
    :class:`~envs.ensemble.weighting_env.EnsembleWeightingEnv`). Returns the best ensemble by validation accuracy
    (see the module docstring). Deterministic under ``seed`` on one thread. With ``tensorboard_log``, a run folder
    ``<tensorboard_log>/<algo>/EnsembleWeighting-v0_<n>`` gets ``config.yml`` and the TensorBoard curves.
    ValueError (one line) for a bad argument.
    """
    if algo not in ALGOS:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {', '.join(ALGOS)}")
    if timesteps is not None and (isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1):
        raise ValueError(f"timesteps must be a whole number >= 1, got {timesteps!r}")
    torch.set_num_threads(TORCH_THREADS)
    env_kwargs = {"reward": reward, "max_members": max_members, "start": start}
    first = EnsembleWeightingEnv(pool=pool, cache_dir=cache_dir, **env_kwargs)  # checks the arguments
    raw = load_hyperparams(algo, ENV_ID)
    if timesteps is not None:
        raw["n_timesteps"] = timesteps
    kwargs, settings = resolve(raw, algo)
    if settings.normalize is not None:
        raise ValueError(f"the {algo} entry for {ENV_ID} asks for VecNormalize; the env's observations are in [0, 1]")
    envs = [first] + [EnsembleWeightingEnv(pool=first.pool, **env_kwargs) for _ in range(settings.n_envs - 1)]
    venv = DummyVecEnv([_returning(Monitor(env)) for env in envs])
    agent = make_agent(algo, venv, {**kwargs, "seed": seed, "device": "cpu", "verbose": 0})
    run_dir = None
    if tensorboard_log is not None:
        run_dir = new_run_dir(algo, ENV_ID, Path(tensorboard_log))
        agent.set_logger(configure(str(run_dir), ["tensorboard"]))
        config = {"algo": algo, "env": ENV_ID, "pool": first.pool.dataset, "env_kwargs": env_kwargs, "seed": seed}
        config.update(n_timesteps=settings.n_timesteps, n_envs=settings.n_envs, hyperparams=serialisable(raw))
        write_config(run_dir, {**config, "versions": versions()})  # first, so an interrupted run says what it was
    metrics = EnsembleWeightingEnv.metadata
    try:
        agent.learn(
            settings.n_timesteps,
            callback=EpisodeMetricsCallback(metrics["metrics_namespace"], metrics["episode_metrics"]),
        )
    finally:
        venv.close()
    policy = policy_episode(agent, EnsembleWeightingEnv(pool=first.pool, **env_kwargs))
    training = [episode for env in envs for episode in env.history]
    result = _choose(first.pool.names, policy, training, agent.num_timesteps, run_dir)
    if run_dir is not None:
        chosen = {"source": result.source, "weights": dict(zip(result.names, result.weights.tolist(), strict=True))}
        chosen.update(val_accuracy=result.val_accuracy, test_accuracy=result.test_accuracy)
        write_config(run_dir, {**config, "chosen": serialisable(chosen), "versions": versions()})
    return result


def policy_episode(agent: BaseAlgorithm, env: EnsembleWeightingEnv) -> EpisodeResult:
    """One episode of ``agent``'s deterministic policy on ``env`` (masked for MaskablePPO), and its record."""
    obs, _ = env.reset()
    masked = isinstance(agent, MaskablePPO)
    terminated = False
    while not terminated:
        extra = {"action_masks": env.action_masks()} if masked else {}
        action, _ = agent.predict(obs, deterministic=True, **extra)
        obs, _, terminated, _, _ = env.step(action)
    return env.history[-1]


def _choose(
    names: tuple[str, ...], policy: EpisodeResult, training: list[EpisodeResult], timesteps: int, run_dir: Path | None
) -> SelectionResult:
    """The best of the policy's episode and the training episodes: highest validation accuracy, then lowest
    validation log-loss, then the policy's, then the earliest (``max`` keeps the first of equals)."""
    candidates = [("policy", policy)] + [(f"training episode {i}", e) for i, e in enumerate(training, start=1)]
    source, best = max(candidates, key=lambda c: (c[1].val_accuracy, -c[1].val_log_loss))
    return SelectionResult(
        names=tuple(names),
        weights=best.weights.copy(),
        val_accuracy=best.val_accuracy,
        test_accuracy=best.test_accuracy,
        val_log_loss=best.val_log_loss,
        test_log_loss=best.test_log_loss,
        source=source,
        policy=policy,
        episodes=len(training),
        timesteps=timesteps,
        run_dir=run_dir,
    )


def _returning(env: Any) -> Callable[[], Any]:
    """DummyVecEnv wants env factories; these envs are made beforehand, so the selection can read their records."""
    return lambda: env

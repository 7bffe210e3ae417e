"""The episode search every compression method shares: an episode of a compression env is one compressed
network, scored on validation, so a search is a loop of episodes whichever method proposes them. Here: playing an
episode, Optuna's samplers (random search, TPE) and an SB3 agent (AMC's and HAQ's DDPG, or TD3, SAC) as
proposers, the best episode, and the run folder with its ``config.yml`` and TensorBoard log of the episodes.
Used by :mod:`agents.compression.pruning` and :mod:`agents.compression.quantization`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import optuna
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.noise import ActionNoise

from agents.algorithms import make_agent
from agents.hyperparams import load_hyperparams, resolve, serialisable
from agents.runs import new_run_dir, write_config
from agents.training import versions
from trends.automl.evaluator import quiet_optuna

ALGOS = ("ddpg", "td3", "sac")
WARMUP_SHARE = 0.25  # share of the episodes played with random actions before the agent learns (AMC: 100 of 400)
FINAL_NOISE_SHARE = 0.1  # the exploration noise ends at this share of its initial std, whatever the budget
TORCH_THREADS = 1  # the agent's networks and the scored ones are tiny; other jobs share the CPU

Progress = Callable[[str], None]


class SearchEpisode(Protocol):
    """What a compression env records per episode (pruning's and quantization's EpisodeResult)."""

    val_accuracy: float
    test_accuracy: float


def check_choice(value: str, choices: Sequence[str], what: str) -> None:
    """A one-line ValueError naming the valid choices when ``value`` is not one of them."""
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def check_episodes(episodes: int) -> int:
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"episodes must be a whole number >= 1, got {episodes!r}")
    return int(episodes)


def best_episode(history: Sequence[SearchEpisode]) -> Any:
    """The episode of highest validation accuracy, the earliest on a tie: what a search hands on, never its test
    accuracy (that would select on the test split)."""
    if not history:
        raise ValueError("the search recorded no episode")
    return max(history, key=lambda episode: episode.val_accuracy)


def play_episode(env: gym.Env, actions: Sequence[Any]) -> Any:
    """Step one episode of ``actions`` (one per decision) and return the env's record of it."""
    env.reset()
    terminated = False
    for action in actions:
        _, _, terminated, _, _ = env.step(action)
    if not terminated:
        raise ValueError(f"{len(actions)} actions did not finish an episode of {type(env).__name__}")
    return env.history[-1]


def optuna_search(env: gym.Env, steps: int, episodes: int, sampler: optuna.samplers.BaseSampler) -> None:
    """Let an Optuna sampler play ``episodes`` episodes of ``steps`` decisions, told each one's validation
    accuracy: one parameter per decision, in the action space (``[0, 1]`` for a Box, the action indices for a
    Discrete). The records go to ``env.history``."""
    space = env.action_space
    with quiet_optuna(optuna.logging.ERROR):
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for _ in range(episodes):
            trial = study.ask()
            if isinstance(space, gym.spaces.Discrete):
                actions = [trial.suggest_int(f"a{t}", 0, int(space.n) - 1) for t in range(steps)]
            else:
                actions = [np.array([trial.suggest_float(f"a{t}", 0.0, 1.0)], np.float32) for t in range(steps)]
            study.tell(trial, play_episode(env, actions).val_accuracy)


class DecayingNormalNoise(ActionNoise):
    """Gaussian exploration noise whose std is multiplied by ``decay`` at the end of every episode after the
    first ``warmup`` (SB3 calls :meth:`reset` at each episode end): AMC's exploration schedule, which a constant
    noise from the hyper-parameter file cannot express."""

    def __init__(self, sigma: float, decay: float, warmup: int, size: int = 1) -> None:
        super().__init__()
        self.sigma, self.decay, self.warmup, self.size = sigma, decay, warmup, size
        self.episodes = 0

    def __call__(self) -> np.ndarray:
        return np.random.normal(0.0, self.sigma, self.size).astype(np.float32)

    def reset(self) -> None:
        self.episodes += 1
        if self.episodes > self.warmup:
            self.sigma *= self.decay


def rl_search(
    env: gym.Env, env_id: str, algo: str, steps: int, episodes: int, seed: int, run_dir: Path | None
) -> dict[str, Any]:
    """Train an SB3 ``algo`` on ``env`` for ``episodes`` episodes of ``steps`` decisions with the settings of
    ``agents/hyperparams/<algo>.yml`` for ``env_id``; the records go to ``env.history``. Returns the settings
    used (for config.yml).

    The agent is built here rather than by :func:`agents.training.train` for two reasons: the exploration noise
    decays over the search (:class:`DecayingNormalNoise`), and the agent is seeded, so the random warm-up
    actions repeat under a seed (``train`` leaves the agent's action space unseeded). The warm-up is
    :data:`WARMUP_SHARE` of the budget, whatever ``learning_starts`` the file gives (it is for ``train.py``).
    """
    check_choice(algo, ALGOS, "algorithm")
    warmup = max(1, round(WARMUP_SHARE * episodes))
    raw = {**load_hyperparams(algo, env_id), "learning_starts": warmup * steps}
    kwargs, settings = resolve(raw, algo)
    if settings.noise_type is not None:
        decay = FINAL_NOISE_SHARE ** (1.0 / max(episodes - warmup, 1))
        kwargs["action_noise"] = DecayingNormalNoise(settings.noise_std, decay, warmup)
    agent = make_agent(algo, env, {**kwargs, "seed": seed, "device": "cpu", "verbose": 0})
    if run_dir is not None:
        agent.set_logger(configure(str(run_dir), ["tensorboard"]))
    agent.learn(episodes * steps, log_interval=max(1, episodes // 100))
    decaying = {"noise_decay_per_episode": decay} if settings.noise_type is not None else {}
    return {**serialisable(raw), **decaying}


def search(
    env: gym.Env,
    env_id: str,
    method: str,
    algo: str,
    steps: int,
    episodes: int,
    seed: int,
    run_dir: Path | None,
    fixed_action: Callable[[gym.Env], Any],
) -> dict[str, Any]:
    """Run ``method`` on ``env`` (the records go to ``env.history``); ``fixed_action`` gives the one action of
    the ``uniform`` method. Returns the method's settings, for config.yml."""
    if method == "rl":
        return rl_search(env, env_id, algo, steps, episodes, seed, run_dir)
    if method == "uniform":
        play_episode(env, [fixed_action(env)] * steps)
        return {}
    sampler_class = {"random": optuna.samplers.RandomSampler, "tpe": optuna.samplers.TPESampler}[method]
    optuna_search(env, steps, episodes, sampler_class(seed=seed))
    return {"sampler": sampler_class.__name__}


def open_run(tensorboard_log: Path | None, method: str, algo: str, env_id: str) -> Path | None:
    """A run folder ``<tensorboard_log>/<algo or method>/<Env>_<n>`` (None without ``tensorboard_log``)."""
    if tensorboard_log is None:
        return None
    return new_run_dir(algo if method == "rl" else method, env_id, Path(tensorboard_log))


def log_search(run_dir: Path | None, history: Sequence[Any], metrics: Sequence[str], final: dict[str, float]) -> None:
    """Write every episode's ``metrics`` (and the best validation accuracy so far) under ``compress/``, x-axis
    the episode, then the ``final`` numbers at the last episode, to TensorBoard in ``run_dir``."""
    if run_dir is None:
        return
    logger: Logger = configure(str(run_dir / "search"), ["tensorboard"])
    best = -math.inf
    try:
        for i, episode in enumerate(history, start=1):
            best = max(best, episode.val_accuracy)
            for key in metrics:
                logger.record(f"compress/{key}", float(getattr(episode, key)))
            logger.record("compress/best_val_accuracy", best)
            if i == len(history):
                for key, value in final.items():
                    logger.record(f"compress/{key}", float(value))
            logger.dump(step=i)
    finally:
        logger.close()


def record_run(run_dir: Path | None, config: dict[str, Any], chosen: dict[str, Any]) -> None:
    """``config.yml`` of a compression run: what was asked, the settings used, and what was chosen."""
    if run_dir is not None:
        write_config(run_dir, {**serialisable(config), "chosen": serialisable(chosen), "versions": versions()})


def say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)

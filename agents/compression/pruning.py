"""Prune a trained network of the compression zoo to a FLOPs (or parameter) budget, by AMC's RL agent or a
baseline, then fine-tune and measure it: :func:`prune_model`.

Every method searches the same env, ``trendgym/Pruning-v0`` (:class:`~envs.compression.pruning_env.PruningEnv`):
an episode is one pruned network, scored on the validation split without fine-tuning, and the env enforces the
budget, so every method only decides *where* to prune. The best episode by validation accuracy is kept (AMC does
the same: its search ends with the best policy it met, not with the agent's last one), fine-tuned for a few
epochs, and measured against the original.

=============  ==================================================================================================
``rl``         an SB3 agent (DDPG as in AMC, TD3 or SAC) learning on the env for the whole episode budget: random
               warm-up episodes first, then the agent's actions with Gaussian exploration noise that decays to a
               tenth over the remaining episodes, as AMC's truncated-normal noise decays
``uniform``    one episode: the same share kept in every layer, the largest the budget allows (AMC's baseline)
``random``     random search: every layer's action uniform in [0, 1] (Optuna's RandomSampler), one per episode
``tpe``        Bayesian optimisation: Optuna's TPE over one action per layer, one trial per episode
=============  ==================================================================================================

The pieces every search shares (the episode loop, the best episode, the TensorBoard log of the episodes, the RL
agent built from ``agents/hyperparams/<algo>.yml``) live here and serve :mod:`agents.compression.quantization`
too, whose env has the same shape of episode.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import optuna
import torch
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.noise import ActionNoise
from torch import nn

from agents.algorithms import make_agent
from agents.compression.report import Report, measured_row
from agents.hyperparams import load_hyperparams, resolve, serialisable
from agents.runs import new_run_dir, write_config
from agents.training import versions
from envs.compression.pruning_env import PruningEnv, uniform_heuristic
from trends.automl.evaluator import quiet_optuna
from trends.compression.distill import accuracy
from trends.compression.prune import fine_tune, prune_structured
from trends.compression.zoo import DEFAULT_CACHE, ZOO

ENV_ID = "trendgym/Pruning-v0"
METHODS = ("rl", "uniform", "random", "tpe")
ALGOS = ("ddpg", "td3", "sac")
DEFAULT_EPISODES = 300  # AMC searched 400-800 episodes on ImageNet networks of 13-50 layers; ours have 2-3 steps
DEFAULT_FINE_TUNE_EPOCHS = 3
WARMUP_SHARE = 0.25  # share of the episodes played with random actions before the agent learns (AMC: 100 of 400)
FINAL_NOISE_SHARE = 0.1  # the exploration noise ends at this share of its initial std, whatever the budget
TORCH_THREADS = 1  # the agent's networks and the scored ones are tiny; other jobs share the CPU

Progress = Callable[[str], None]


class SearchEpisode(Protocol):
    """What a compression env records per episode (pruning's and quantization's EpisodeResult)."""

    val_accuracy: float
    test_accuracy: float


@dataclass
class PruningOutcome:
    """A pruning: the report, the configuration chosen and what it scored, and the pruned, fine-tuned network."""

    report: Report  # original, pruned, pruned + fine-tuned (when fine_tune_epochs > 0)
    preserve_ratios: dict[str, float]  # every prunable layer's share of channels kept
    flops_ratio: float  # of the original's FLOPs
    params_ratio: float
    val_accuracy: float  # of the chosen pruned network, not fine-tuned: what the search maximised
    test_accuracy: float  # the same network's, not fine-tuned
    fine_tuned_test_accuracy: float | None  # after fine-tuning; None without fine-tuning
    model: nn.Module  # pruned (and fine-tuned)
    episodes: list[Any] = field(default_factory=list)  # every episode of the search, EpisodeResult, in order
    run_dir: Path | None = None  # where config.yml and the TensorBoard events went


# -- the shared search machinery ---------------------------------------------------------------------------------


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


# -- pruning ------------------------------------------------------------------------------------------------------


def prune_model(
    model: str = "mnist1d-cnn",
    target: str = "flops",
    preserve: float = 0.5,
    method: str = "rl",
    algo: str = "td3",
    episodes: int = DEFAULT_EPISODES,
    seed: int = 0,
    fine_tune_epochs: int = DEFAULT_FINE_TUNE_EPOCHS,
    tensorboard_log: Path | None = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> PruningOutcome:
    """Prune the zoo network ``model`` so that it keeps at most ``preserve`` of its ``target`` cost (``"flops"``
    or ``"params"``), choosing the per-layer shares with ``method`` (see the module docstring; ``algo`` is the
    RL agent's algorithm, ignored by the others) over ``episodes`` episodes (``uniform`` plays one), keep the
    configuration of best validation accuracy (as AMC does), fine-tune it for ``fine_tune_epochs`` epochs (0:
    not at all) and measure it.

    With ``tensorboard_log``, a run folder ``<tensorboard_log>/<algo or method>/Pruning-v0_<n>`` gets
    ``config.yml`` and the episodes' ``compress/val_accuracy`` and ``compress/flops_ratio`` (and the agent's own
    SB3 curves for ``rl``). ``cache_dir``: the zoo's cache (None: ``runs/compression``). ValueError (one line)
    for a bad argument.
    """
    check_choice(method, METHODS, "pruning method")
    check_choice(algo, ALGOS, "algorithm")
    check_choice(model, tuple(ZOO), "model")
    episodes = check_episodes(episodes)
    if fine_tune_epochs < 0:
        raise ValueError(f"fine_tune_epochs must be >= 0, got {fine_tune_epochs!r}")
    torch.set_num_threads(TORCH_THREADS)
    env = PruningEnv(model=model, target=target, preserve=preserve, cache_dir=cache_dir or DEFAULT_CACHE)
    run_dir = open_run(tensorboard_log, method, algo, ENV_ID)
    config = {"env": ENV_ID, "model": model, "target": target, "preserve": preserve, "method": method}
    config.update(algo=algo if method == "rl" else None, episodes=episodes, seed=seed)
    config["fine_tune_epochs"] = fine_tune_epochs
    record_run(run_dir, config, {})  # first, so that an interrupted search still says what it was
    say(progress, f"pruning {model} to {preserve:g} of its {target}: {method}, {episodes} episodes, seed {seed}")
    settings = search(env, ENV_ID, method, algo, len(env.groups), episodes, seed, run_dir, uniform_heuristic)
    best = best_episode(env.history)
    report, pruned, fine_tuned_accuracy = _pruned_report(
        env, method, best.preserve_ratios, best.test_accuracy, fine_tune_epochs, seed
    )
    final = {"final_val_accuracy": best.val_accuracy, "final_test_accuracy": best.test_accuracy}
    if fine_tuned_accuracy is not None:
        final["fine_tuned_test_accuracy"] = fine_tuned_accuracy
    log_search(run_dir, env.history, ("val_accuracy", "flops_ratio"), final)
    record_run(run_dir, {**config, "settings": settings}, {"preserve_ratios": best.preserve_ratios, **final})
    say(progress, f"{method}: val {best.val_accuracy:.3f}, FLOPs {best.flops_ratio:.3f}, test {best.test_accuracy:.3f}")
    return PruningOutcome(
        report=report,
        preserve_ratios=dict(best.preserve_ratios),
        flops_ratio=best.flops_ratio,
        params_ratio=best.params_ratio,
        val_accuracy=best.val_accuracy,
        test_accuracy=best.test_accuracy,
        fine_tuned_test_accuracy=fine_tuned_accuracy,
        model=pruned,
        episodes=list(env.history),
        run_dir=run_dir,
    )


def _pruned_report(
    env: PruningEnv, method: str, ratios: dict[str, float], test_accuracy: float, epochs: int, seed: int
) -> tuple[Report, nn.Module, float | None]:
    """Prune the env's network to ``ratios``, fine-tune it for ``epochs`` epochs (the zoo's recipe, seeded), and
    report the original, the pruned and the fine-tuned network; the last two are the same object."""
    trained = env.trained
    data, shape = trained.dataset, trained.dataset.sample_shape
    pruned = prune_structured(trained.model, shape, ratios, env.norm).eval()
    rows = [measured_row("original", trained.model, shape, trained.test_accuracy)]
    rows.append(measured_row(f"{method} pruned", pruned, shape, test_accuracy, note="not fine-tuned"))
    fine_tuned_accuracy = None
    if epochs > 0:
        fine_tune(pruned, data, epochs=epochs, recipe=replace(ZOO[trained.name].recipe, seed=seed))
        pruned.eval()
        fine_tuned_accuracy = accuracy(pruned, data.x_test, data.y_test)
        rows.append(measured_row(f"{method} pruned + fine-tuned", pruned, shape, fine_tuned_accuracy))
    title = f"Pruning {trained.name} to {env.preserve:g} of its {env.target} ({method})"
    return Report(title, "test accuracy", rows), pruned, fine_tuned_accuracy

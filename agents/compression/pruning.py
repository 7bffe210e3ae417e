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

The episode search itself (the loop, the proposers, the best episode, the run folder and its TensorBoard log) is
:mod:`agents.compression.search`, shared with quantization.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from agents.compression.report import Report, measured_row
from agents.compression.search import (
    ALGOS,
    TORCH_THREADS,
    Progress,
    best_episode,
    check_choice,
    check_episodes,
    log_search,
    open_run,
    record_run,
    say,
    search,
)
from envs.compression.pruning_env import PruningEnv, uniform_heuristic
from trends.compression.distill import accuracy
from trends.compression.prune import fine_tune, prune_structured
from trends.compression.zoo import DEFAULT_CACHE, ZOO

ENV_ID = "trendgym/Pruning-v0"
METHODS = ("rl", "uniform", "random", "tpe")
DEFAULT_EPISODES = 300  # AMC searched 400-800 episodes on ImageNet networks of 13-50 layers; ours have 2-3 steps
DEFAULT_FINE_TUNE_EPOCHS = 3


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

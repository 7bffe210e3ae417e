"""One trial of the tuner: train with sampled hyper-parameters, judge on fixed validation courses, report to Optuna.

The protocol is RL Baselines3 Zoo's ``-optimize``:

* the agent is built as ``train.py`` builds it (same vec env, training seeds, VecNormalize, action noise), with
  the trial budget as the horizon of the ``lin_`` schedules, and nothing written to disk;
* every ``eval_freq`` steps, at the start of a rollout (right after an update), the policy plays the same
  ``eval_episodes`` validation courses (seeds ``VALIDATION_SEED + i``) deterministically, all at once in one
  vector env (:func:`agents.benchmarks.learning.evaluate_on_seeds`), and the mean return is reported to Optuna
  as intermediate value ``k`` (the k-th evaluation: trials whose rollouts differ in size still report on the same
  steps, which the median pruner needs); if the pruner says so the trial stops there and is PRUNED;
* the trial's value is the *last* evaluation's mean return, as RL Zoo's: the best of a noisy curve is biased
  upwards (the more evaluations, the luckier the maximum), while the last one is what the configuration leaves
  after its whole budget, which is what a run from the tuned block would be judged on.

A trial whose training diverges (NaN in the network or in a return) is PRUNED with the reason in its
``diverged`` attribute, as RL Zoo does: it counts against the budget, so a space that diverges often cannot make
the search run forever, and the search goes on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agents.algorithms import make_agent
from agents.benchmarks.learning import LearningTask, evaluate_on_seeds, validation_seeds
from agents.hyperparams import resolve, serialisable
from agents.training import StopOnInterrupt, action_noise
from agents.tuning.spaces import sample_entry
from agents.vec_env import make_vec_env


class Diverged(Exception):
    """The training produced NaN or infinite numbers."""


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a study shares: the task, the entry sampled on, and how trials are judged."""

    algo: str
    env: str
    env_kwargs: dict[str, Any]
    entry: dict[str, Any]  # the YAML entry with the user's overrides, n_envs and n_timesteps (the trial budget)
    fixed: frozenset[str]  # keys the user fixed: never sampled
    seed: int  # training seed of every trial (the same for all, so trials differ by their hyper-parameters)
    eval_freq: int  # env steps between evaluations
    eval_episodes: int  # validation courses per evaluation
    vec_env: str  # "native", "dummy" or "subproc"
    device: str = "cpu"
    progress: bool = False  # print a line per evaluation

    @property
    def budget(self) -> int:
        return int(self.entry["n_timesteps"])

    @property
    def n_evaluations(self) -> int:
        return max(math.ceil(self.budget / self.eval_freq), 1)

    def evaluation_task(self) -> LearningTask:
        """The fixed-seed batched evaluation of agents.benchmarks.learning, described as its LearningTask."""
        return LearningTask(
            name="tuning",
            env_id=self.env,
            env_kwargs=dict(self.env_kwargs),
            hyperparams=self.entry,
            budget=self.budget,
            metric="return",
            target=math.inf,
            eval_every=self.eval_freq,
            eval_episodes=self.eval_episodes,
            vec_env=self.vec_env,
            eval_mode="vector_entry_point" if self.vec_env == "native" else "sync",
        )


@dataclass
class Evaluation:
    step: int  # the k-th evaluation, 1-based: Optuna's step
    timesteps: int
    mean_return: float
    clean_rate: float | None


class TrialEvaluation(BaseCallback):
    """Evaluate every ``eval_freq`` steps and at the end, report to the trial, and stop when it is to be pruned."""

    def __init__(self, setup: TrialSetup, trial: optuna.Trial) -> None:
        super().__init__()
        self.setup = setup
        self.trial = trial
        self.task = setup.evaluation_task()
        self.seeds = validation_seeds(setup.eval_episodes)
        self.evaluations: list[Evaluation] = []
        self.pruned = False

    def _on_rollout_start(self) -> None:
        if self.num_timesteps >= (len(self.evaluations) + 1) * self.setup.eval_freq and not self.pruned:
            self.evaluate()
            self.pruned = self.trial.should_prune()

    def _on_step(self) -> bool:
        return not self.pruned

    def _on_training_end(self) -> None:
        last = self.evaluations[-1].timesteps if self.evaluations else 0
        if not self.pruned and self.num_timesteps > last:
            self.evaluate()

    def evaluate(self) -> None:
        score = evaluate_on_seeds(self.model, self.task, self.seeds)
        if not math.isfinite(score.mean_return):
            raise Diverged(f"mean return {score.mean_return} at {self.num_timesteps} steps")
        evaluation = Evaluation(len(self.evaluations) + 1, self.num_timesteps, score.mean_return, score.clean_rate)
        self.evaluations.append(evaluation)
        self.trial.report(score.mean_return, evaluation.step)
        if self.setup.progress:
            clean = f", {score.clean_rate:.0%} clean" if score.clean_rate is not None else ""
            print(f"  trial {self.trial.number}: {self.num_timesteps} steps, return {score.mean_return:.1f}{clean}")


def build_agent(algo: str, setup: TrialSetup, raw: dict[str, Any]) -> tuple[BaseAlgorithm, VecEnv]:
    """The agent and its training env exactly as ``train.py`` builds them, logging nothing."""
    kwargs, settings = resolve(raw, algo)
    set_random_seed(setup.seed)
    train_kwargs = {**setup.env_kwargs, **settings.train_env_kwargs}  # trials are scored on setup.env_kwargs
    venv: VecEnv = make_vec_env(setup.env, settings.n_envs, setup.seed, train_kwargs, kind=setup.vec_env)  # type: ignore[arg-type]
    if settings.normalize is not None:
        venv = VecNormalize(venv, **{"gamma": kwargs.get("gamma", 0.99), **settings.normalize})
    noise = action_noise(settings, venv.action_space)
    if noise is not None:
        kwargs["action_noise"] = noise
    model = make_agent(algo, venv, {**kwargs, "device": setup.device, "verbose": 0})
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.action_space.seed(setup.seed)
    return model, venv


def _finite_weights(model: BaseAlgorithm) -> bool:
    return all(bool(np.isfinite(p.detach().cpu().numpy()).all()) for p in model.policy.parameters())


@dataclass
class Objective:
    """Optuna's objective for ``setup``: see the module docstring. A Ctrl-C stops the trial at the next step and
    raises KeyboardInterrupt, which Optuna records as a FAILED trial before passing it on."""

    setup: TrialSetup
    interrupt: StopOnInterrupt = field(default_factory=StopOnInterrupt)

    def __call__(self, trial: optuna.Trial) -> float:
        setup = self.setup
        raw = sample_entry(setup.algo, trial, setup.entry, set(setup.fixed))
        trial.set_user_attr("hyperparams", serialisable(raw))
        started = time.perf_counter()
        model, venv = build_agent(setup.algo, setup, raw)
        evaluation = TrialEvaluation(setup, trial)
        try:
            with self.interrupt.listening():
                model.learn(setup.budget, callback=[evaluation, self.interrupt])
        except Diverged as e:
            return self._diverged(trial, str(e))
        except (ValueError, RuntimeError) as e:  # torch's distributions refuse NaN parameters with a ValueError
            if _finite_weights(model) and "nan" not in str(e).lower():
                raise
            return self._diverged(trial, f"{type(e).__name__}: {str(e).splitlines()[0]}")
        finally:
            venv.close()
        if self.interrupt.requested:
            raise KeyboardInterrupt
        trial.set_user_attr("train_seconds", time.perf_counter() - started)
        trial.set_user_attr("timesteps", int(model.num_timesteps))
        if evaluation.evaluations:
            last = evaluation.evaluations[-1]
            trial.set_user_attr("clean_rate", last.clean_rate)
            trial.set_user_attr("evaluated_at", last.timesteps)
        if evaluation.pruned:
            raise optuna.TrialPruned(f"pruned after evaluation {len(evaluation.evaluations)}")
        if not _finite_weights(model):
            return self._diverged(trial, "NaN in the network's weights")
        return evaluation.evaluations[-1].mean_return

    @staticmethod
    def _diverged(trial: optuna.Trial, reason: str) -> float:
        trial.set_user_attr("diverged", reason)
        raise optuna.TrialPruned(f"diverged: {reason}")

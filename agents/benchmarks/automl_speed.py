"""How fast the table-backed AutoML search environments step, and how fast PPO trains on them.

The claim under test: a cached (table) step of ``trendgym/ArchitectureSearch-v0`` costs under 100 microseconds,
so an RL controller trains on the tabular benchmark at thousands of steps per second. Measured:

* the step cost of ``gym.make("trendgym/ArchitectureSearch-v0")`` (default wrappers; resets included, as a user
  pays them) with raw actions drawn before the clock starts (a masked draw is the agent's cost, not the env's;
  the env maps a masked action to an allowed one, so any raw action is a valid input), against CartPole-v1
  in the same loop, alternating which goes first;
* MaskablePPO's training throughput on it (``learn`` steps per second, its default hyper-parameters, one torch
  thread), against SB3's PPO on CartPole-v1 with the same settings.

Median and min-max spread over repeats; seeds ``seed + repeat``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

import envs  # noqa: F401  registers the trendgym/ ids
from agents.benchmarks.report import format_machine, format_rate, machine_info, markdown_table, publish

BENCH_NAME = "automl_speed"
SEARCH_ID = "trendgym/ArchitectureSearch-v0"
CARTPOLE_ID = "CartPole-v1"
STEP_TARGET_US = 100.0  # the bound on a cached step

Progress = Callable[[str], None]


@dataclass(frozen=True)
class AutomlSpeedConfig:
    repeats: int = 5  # timed repeats of each measurement
    steps: int = 20_000  # env steps per step-cost repeat
    train_steps: int = 8192  # PPO learn() steps per throughput repeat
    seed: int = 0  # repeat r uses seed + r


@dataclass
class AutomlSpeedResult:
    config: AutomlSpeedConfig
    step_us: dict[str, list[float]] = field(default_factory=dict)  # env id -> microseconds per step, per repeat
    train_steps_per_second: dict[str, list[float]] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=machine_info)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        return automl_speed_markdown(self)


def time_steps(env_id: str, steps: int, seed: int, warmup: int = 100) -> float:
    """Microseconds per ``step()`` of a fresh ``gym.make(env_id)`` over ``steps`` pre-drawn actions."""
    env = gym.make(env_id)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps + warmup)]
    env.reset(seed=seed)
    for action in actions[:warmup]:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    start = time.perf_counter()
    for action in actions[warmup:]:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return 1e6 * elapsed / steps


def time_training(env_id: str, steps: int, seed: int) -> float:
    """``learn`` steps per second of MaskablePPO (the search env) or PPO (CartPole), default settings, CPU."""
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    algo = MaskablePPO if env_id == SEARCH_ID else PPO
    model = algo("MlpPolicy", gym.make(env_id), n_steps=1024, seed=seed, device="cpu")
    start = time.perf_counter()
    model.learn(steps)
    return steps / (time.perf_counter() - start)


def run_automl_speed(config: AutomlSpeedConfig | None = None, progress: Progress | None = None) -> AutomlSpeedResult:
    config = config or AutomlSpeedConfig()
    result = AutomlSpeedResult(config)
    for r in range(config.repeats):
        seed = config.seed + r
        order = (SEARCH_ID, CARTPOLE_ID) if r % 2 == 0 else (CARTPOLE_ID, SEARCH_ID)
        for env_id in order:
            result.step_us.setdefault(env_id, []).append(time_steps(env_id, config.steps, seed))
            result.train_steps_per_second.setdefault(env_id, []).append(time_training(env_id, config.train_steps, seed))
        if progress:
            progress(f"repeat {r + 1}/{config.repeats}: {result.step_us[SEARCH_ID][-1]:.1f} us/step")
    return result


def _median_spread(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def automl_speed_markdown(result: AutomlSpeedResult) -> str:
    c = result.config
    search_us = statistics.median(result.step_us[SEARCH_ID])
    verdict = "pass" if search_us < STEP_TARGET_US else "FAIL"
    rows = []
    for env_id in (SEARCH_ID, CARTPOLE_ID):
        steps = result.train_steps_per_second[env_id]
        rows.append(
            [
                f"`{env_id}`",
                _median_spread(result.step_us[env_id], ".1f"),
                f"{format_rate(statistics.median(steps))} ({format_rate(min(steps))}-{format_rate(max(steps))})",
            ]
        )
    table = markdown_table(["env", "us per step (median, min-max)", "PPO learn steps/s (median, min-max)"], rows)
    return "\n".join(
        [
            table,
            "",
            f"Table-backed step: {search_us:.1f} us against the {STEP_TARGET_US:.0f} us target: **{verdict}**. "
            f"{c.repeats} repeats of {c.steps:,} steps (gym.make, resets included) and of {c.train_steps:,} "
            "`learn` steps (MaskablePPO on the search env, PPO on CartPole; `n_steps=1024`, one torch thread); "
            f"seeds {c.seed}-{c.seed + c.repeats - 1}. `.venv/bin/python scripts/bench.py automl`; "
            f"{format_machine(result.machine)}.",
        ]
    )


def write_automl_speed_report(result: AutomlSpeedResult, out_dir: Path, readme: Path | None = None) -> dict[str, Any]:
    title = "Speed of the table-backed AutoML search environment"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)

"""The trained ski agents the policy-compression benchmarks start from: one PPO run of the main job's recipe
(``agents/hyperparams/ppo.yml``, green slope) per seed, trained once and reused.

Distilling or quantizing a policy says something only across several teachers, and each takes minutes to train,
so a teacher is looked up first: a finished run (``model.zip`` written) under ``root`` whose ``config.yml`` has
the seed. A run cut short (no ``model.zip``) is ignored and a new one trained.
"""

from __future__ import annotations

from pathlib import Path

from agents.runs import MODEL_FILE, RUNS_ROOT, read_config
from agents.training import TrainConfig, train

DEFAULT_ROOT = RUNS_ROOT / "compression" / "teachers"
ENV_ID = "trendgym/Ski-v0"
ALGO = "ppo"


def find_teacher(seed: int, root: Path = DEFAULT_ROOT) -> Path | None:
    """The finished teacher run of ``seed`` under ``root``, or None."""
    parent = Path(root) / ALGO
    if not parent.is_dir():
        return None
    for run_dir in sorted(parent.iterdir()):
        if (run_dir / MODEL_FILE).is_file() and read_config(run_dir).get("seed") == seed:
            return run_dir
    return None


def ski_teacher(seed: int, root: Path = DEFAULT_ROOT, timesteps: int | None = None, verbose: int = 0) -> Path:
    """The run folder of the green-slope PPO teacher of ``seed``, trained now (about 2 minutes on a free core)
    when ``root`` has none. ``timesteps`` None takes the recipe's budget (3M steps)."""
    found = find_teacher(seed, root)
    if found is not None:
        return found
    config = TrainConfig(
        algo=ALGO,
        env=ENV_ID,
        seed=seed,
        timesteps=timesteps,
        tensorboard_log=Path(root),
        eval_freq=0,
        save_freq=0,
        verbose=verbose,
        n_frames=0,
    )
    return train(config).run_dir

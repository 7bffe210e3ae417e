"""What a training run on a search env found: the best configuration the env's own search met while the agent
learned.

A search env (``trendgym/ArchitectureSearch-v0``, ``trendgym/HyperparamSearch-v0``) keeps every configuration its
episodes completed in ``history``, and training seeds only its first reset, so that history is the whole search
the training ran: one per training env, and a resumed run's search starts again with the resumed session. The
best of it is the configuration a person takes away, which the trained policy's own choices need not be.
"""

from __future__ import annotations

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv

from envs.automl.search_env import SearchEnv


def best_configuration_met(model: BaseAlgorithm) -> str | None:
    """One line naming the best configuration (by validation accuracy, the first of equals) that the training
    envs' searches met, e.g. ``best configuration met in training: {...} val acc 0.927 (episode 37 of 120)``.

    None when the env is not a search env, nothing was evaluated, or the training envs ran in other processes
    (``--vec-env subproc``: their histories went with them when training closed them).
    """
    venv = model.get_env()
    if venv is None or not isinstance(venv.unwrapped, DummyVecEnv):
        return None
    searches = [env.unwrapped for env in venv.unwrapped.envs]
    if not all(isinstance(search, SearchEnv) for search in searches):
        return None
    met = [(r.val_accuracy, -i, -j, i, j) for i, search in enumerate(searches) for j, r in enumerate(search.history)]
    if not met:
        return None
    *_, i, j = max(met)  # the best accuracy, the first env and episode of equals
    history = searches[i].history
    best = history[j]
    where = f"episode {j + 1} of {len(history)}"
    if len(searches) > 1:
        where += f" of training env {i + 1} of {len(searches)}"
    return (
        f"best configuration met in training: {best.config} val acc {best.val_accuracy:.3f}, "
        f"test acc {best.test_accuracy:.3f} ({where})"
    )

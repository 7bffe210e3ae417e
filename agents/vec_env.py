"""Vectorised envs for training, by kind: SB3's DummyVecEnv and SubprocVecEnv, or the env's native vector env.

Seeds: training env ``i`` of a run with ``--seed s`` resets first with seed ``s * 1000 + i`` and draws its
later courses from that seed's generator (see :mod:`agents.seeds`), whatever the kind, so the three kinds
see the same courses and, given the same actions, follow the same trajectories.

The native kind is the fast one for the ski env: ``gym.make_vec(..., vectorization_mode="vector_entry_point")``
steps every skier in one batched numpy call instead of one Python env per skier. Gymnasium's vector envs
reset a finished sub-env on the *next* step (the action of that step is ignored); SB3 expects the reset in
the *same* step, with the last observation of the episode in ``info["terminal_observation"]``.
:class:`NativeVecEnv` translates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

import envs  # noqa: F401  (registers the trendgym/ ids, also in subprocesses that unpickle make_env)

VecEnvKind = Literal["dummy", "subproc", "native"]
VEC_ENV_KINDS: tuple[str, ...] = ("dummy", "subproc", "native")
ENV_SEED_STRIDE = 1000  # env i of a run seeded s starts from seed s * ENV_SEED_STRIDE + i


def first_env_seed(seed: int | None) -> int | None:
    """The reset seed of env 0 of a run with ``--seed seed`` (env ``i`` adds ``i``)."""
    return None if seed is None else seed * ENV_SEED_STRIDE


def _split_infos(info: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """Gymnasium's dict of arrays (with ``_key`` masks) -> SB3's list of one dict per sub-env, Python scalars."""
    infos: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    for key, values in info.items():
        if key.startswith("_"):
            continue
        mask = info.get(f"_{key}")
        items = values.tolist() if isinstance(values, np.ndarray) and values.dtype != object else list(values)
        for i in range(num_envs):
            if mask is None or mask[i]:
                infos[i][key] = items[i]
    return infos


class NativeVecEnv(VecEnv):
    """An SB3 VecEnv over a Gymnasium vector env, resetting finished sub-envs in the same step as SB3 does.

    :param vector_env: a Gymnasium ``VectorEnv`` with next-step autoreset whose sub-envs can be reset alone
        through a ``reset_rows(rows) -> obs`` method (the ski env's ``SkiVectorEnv`` has one).
    """

    def __init__(self, vector_env: VectorEnv) -> None:
        mode = vector_env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode != AutoresetMode.NEXT_STEP:
            raise ValueError(f"NativeVecEnv expects a next-step autoreset vector env, got {mode}")
        if not callable(getattr(vector_env, "reset_rows", None)):
            raise TypeError(f"{type(vector_env).__name__} cannot reset single sub-envs; use vec_env='dummy'")
        self.vector_env = vector_env
        super().__init__(vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space)
        self.metadata = vector_env.metadata
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        options = self._options[0] or None  # one options dict for the batch: Gymnasium's vector API has one
        obs, info = self.vector_env.reset(seed=seeds, options=options)
        self.reset_infos = _split_infos(info, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, info = self.vector_env.step(self._actions)
        dones = np.logical_or(terminated, truncated)
        infos = _split_infos(info, self.num_envs)
        for i, item in enumerate(infos):
            item["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        if dones.any():
            rows = np.flatnonzero(dones)
            for i in rows:
                infos[i]["terminal_observation"] = obs[i].copy()
            obs = self.vector_env.reset_rows(rows)  # Gymnasium's vector API cannot reset some sub-envs
        return obs, np.asarray(rewards, dtype=np.float32), dones, infos

    def close(self) -> None:
        self.vector_env.close()

    def _indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The vector env's attribute, once per sub-env asked for (the sub-envs share one object)."""
        value = getattr(self.vector_env, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.vector_env, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        """Call the vector env's method once. A batched answer (an array with a row per sub-env, such as
        ``action_masks()``) is split into the sub-envs' rows; anything else is the same for every sub-env."""
        result = getattr(self.vector_env, method_name)(*method_args, **method_kwargs)
        batched = isinstance(result, np.ndarray) and result.ndim >= 1 and len(result) == self.num_envs
        return [result[i] if batched else result for i in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]


def make_env_fn(env_id: str, env_kwargs: dict[str, Any] | None = None, monitor: bool = False) -> Callable[[], gym.Env]:
    """A picklable function that builds one env (SubprocVecEnv sends it to its worker processes)."""

    def make() -> gym.Env:
        env = gym.make(env_id, **(env_kwargs or {}))
        return Monitor(env) if monitor else env

    return make


def make_vec_env(
    env_id: str,
    n_envs: int = 1,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    kind: VecEnvKind = "dummy",
    monitor: bool = True,
) -> VecEnv:
    """``n_envs`` copies of ``env_id`` as one SB3 VecEnv, env ``i`` seeded ``seed * 1000 + i`` at its first reset.

    :param kind: ``"dummy"`` (one process, one env after another: the simplest), ``"subproc"`` (one process
        per env: pays off only for slow envs) or ``"native"`` (the env's own batched vector env, much the
        fastest for the ski env; needs a ``vector_entry_point`` at registration).
    :param monitor: record each episode's return, length and time in ``info["episode"]`` (what SB3's
        ``rollout/ep_rew_mean`` is computed from).
    """
    env_kwargs = dict(env_kwargs or {})
    if kind == "native":
        spec = gym.spec(env_id)
        if spec.vector_entry_point is None:
            raise ValueError(f"{env_id} has no native vector env; use --vec-env dummy or subproc")
        venv: VecEnv = NativeVecEnv(
            gym.make_vec(env_id, num_envs=n_envs, vectorization_mode="vector_entry_point", **env_kwargs)
        )
        if monitor:
            venv = VecMonitor(venv)
    elif kind in ("dummy", "subproc"):
        fns = [make_env_fn(env_id, env_kwargs, monitor) for _ in range(n_envs)]
        venv = DummyVecEnv(fns) if kind == "dummy" else SubprocVecEnv(fns)
    else:
        raise ValueError(f"unknown vec env kind {kind!r}; choose one of {', '.join(VEC_ENV_KINDS)}")
    venv.seed(first_env_seed(seed))
    return venv

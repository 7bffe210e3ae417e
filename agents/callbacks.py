"""Callbacks that make a training run watchable in TensorBoard and safe to kill.

* :class:`EpisodeMetricsCallback`: the env's own episode metrics (gates, falls, clean runs...) as ``ski/``
  curves beside SB3's ``rollout/`` ones, so a person sees *how* the agent skis, not only its return.
* :class:`ValidationCallback`: SB3's EvalCallback on held-out courses, plus the clean-run rate and a strip of
  frames of one validation run in TensorBoard; best model, its VecNormalize statistics and
  ``evaluations.npz`` written atomically.
* :class:`HParamsCallback`: the run's hyper-parameters in TensorBoard's HPARAMS tab.
* :class:`AtomicCheckpointCallback`: checkpoints (model + VecNormalize) that a kill cannot leave half-written.
"""

from __future__ import annotations

import time
import warnings
from collections import deque
from copy import deepcopy
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import HParam, Image
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecNormalize

from agents.evaluation import resets_with_seed
from agents.runs import BEST_MODEL_FILE, atomic_save_model, atomic_save_vecnormalize, vecnormalize_path
from trends.files import atomic_write

NOT_TEXT = ("stdout", "log", "json", "csv")  # formats an image or hparams cannot go to
# How an env metric is named in TensorBoard when its own name would mislead.
METRIC_NAMES = {"clean": "clean_run_rate", "finished": "finish_rate", "time": "finish_time"}
METRIC_WINDOW = 100  # episodes the rolling means are taken over, as SB3's rollout/ep_rew_mean


def episode_metrics_of(env_id: str, env_kwargs: dict[str, Any] | None = None) -> tuple[str, tuple[str, ...]] | None:
    """The ``(namespace, info keys)`` an env declares in ``metadata["metrics_namespace"]`` and
    ``metadata["episode_metrics"]``, or None for an env that declares none.

    Read from a single env: a native vector env's metadata describes the vector env, not the task.
    """
    env = gym.make(env_id, **(env_kwargs or {}))
    try:
        metadata = env.unwrapped.metadata
    finally:
        env.close()
    keys = metadata.get("episode_metrics")
    if not keys:
        return None
    return metadata.get("metrics_namespace", "env"), tuple(keys)


class EpisodeMetrics:
    """Rolling means of an env's episode metrics, computed from the info dict of each episode's last step.

    ``time`` counts only finished episodes (a truncated run's time is the time limit, not a finish time);
    boolean metrics become rates.
    """

    def __init__(self, keys: tuple[str, ...], window: int = METRIC_WINDOW) -> None:
        self.keys = keys
        self.values: dict[str, deque[float]] = {METRIC_NAMES.get(k, k): deque(maxlen=window) for k in keys}

    def add(self, info: dict[str, Any]) -> None:
        for key in self.keys:
            if key not in info or (key == "time" and not info.get("finished", True)):
                continue
            self.values[METRIC_NAMES.get(key, key)].append(float(info[key]))

    def means(self) -> dict[str, float]:
        return {name: float(np.mean(v)) for name, v in self.values.items() if v}


class EpisodeMetricsCallback(BaseCallback):
    """Log the env's episode metrics to SB3's logger as ``<namespace>/<name>`` (``ski/clean_run_rate``...),
    rolling means over the last 100 training episodes."""

    def __init__(self, namespace: str, keys: tuple[str, ...], window: int = METRIC_WINDOW, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.namespace = namespace
        self.metrics = EpisodeMetrics(keys, window)

    def _on_step(self) -> bool:
        ended = False
        for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
            if done:
                self.metrics.add(info)
                ended = True
        if ended:
            for name, value in self.metrics.means().items():
                self.logger.record(f"{self.namespace}/{name}", value)
        return True


class HParamsCallback(BaseCallback):
    """Write the run's hyper-parameters to TensorBoard's HPARAMS tab when training starts (not on resume:
    the run already has them), with the metrics the tab compares runs by."""

    def __init__(self, hparams: dict[str, Any], metrics: tuple[str, ...]) -> None:
        super().__init__()
        plain = (int, float, str, bool)
        self.hparams = {k: v if isinstance(v, plain) else str(v) for k, v in hparams.items()}
        self.metric_names = metrics

    def _on_training_start(self) -> None:
        if self.num_timesteps == 0:
            self.logger.record("hparams", HParam(self.hparams, dict.fromkeys(self.metric_names, 0.0)), exclude=NOT_TEXT)

    def _on_step(self) -> bool:
        return True


class SeededEpisodes(gym.Wrapper):
    """Reset episode ``i`` with seed ``start + i``, counting again from ``start`` after :meth:`rewind`.

    The validation env: every evaluation skis the same held-out courses, so evaluations compare agents,
    not courses. An env whose episodes make one search (:func:`agents.evaluation.plays_one_search`) is seeded on
    the first episode only, so each evaluation is one search of its episodes, as ``evaluate.py`` plays it, rather
    than copies of a search's first episode.
    """

    def __init__(self, env: gym.Env, start: int) -> None:
        super().__init__(env)
        self.start = start
        self.count = 0

    def rewind(self) -> None:
        self.count = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        seed = self.start + self.count if resets_with_seed(self.env, self.count) else None
        self.count += 1
        return self.env.reset(seed=seed, options=options)


def frame_strip(frames: list[np.ndarray], height: int = 160) -> np.ndarray:
    """Frames side by side at ``height`` pixels, one HxWx3 uint8 image for TensorBoard."""
    step = max(frames[0].shape[0] // height, 1)
    small = [f[::step, ::step] for f in frames]
    gap = np.full((small[0].shape[0], 4, 3), 255, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for f in small:
        parts += [f, gap]
    return np.concatenate(parts[:-1], axis=1)


class ValidationCallback(EvalCallback):
    """EvalCallback on held-out courses that writes what it keeps atomically and logs more of what it sees.

    Beyond SB3's ``eval/mean_reward``: the env's episode metrics of the validation episodes
    (``eval/clean_run_rate``...), and a strip of ``n_frames`` frames of one validation episode
    (``eval/episode``), drawn by the env's ``rgb_array`` renderer. The best model is saved with its
    VecNormalize statistics (``best_vecnormalize.pkl``), since the model alone cannot act without them.

    :param eval_env: a VecEnv of one :class:`SeededEpisodes`-wrapped env, so each evaluation skis episodes
        seeded ``start, start + 1, ...``.
    :param run_dir: where ``best_model.zip`` and ``evaluations.npz`` go; None keeps nothing.
    :param render_env_fn: makes an env with ``render_mode="rgb_array"`` for the frame strip; None for none.
    """

    def __init__(
        self,
        eval_env: VecEnv,
        run_dir: Path | None,
        metric_keys: tuple[str, ...] = (),
        render_env_fn: Any = None,
        render_seed: int = 0,
        n_frames: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(eval_env, best_model_save_path=None, log_path=None, **kwargs)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.metric_keys = metric_keys
        self.render_env_fn = render_env_fn
        self.render_seed = render_seed
        self.n_frames = n_frames
        self._episode_infos: list[dict[str, Any]] = []
        self._render_env: gym.Env | None = None
        self.evaluations_clean: list[list[bool]] = []
        if self.run_dir is not None:
            self._load_history()

    def _load_history(self) -> None:
        """Continue ``evaluations.npz`` and the best mean reward of a resumed run instead of starting over."""
        path = self.run_dir / "evaluations.npz"
        if not path.is_file():
            return
        with np.load(path) as data:
            self.evaluations_timesteps = data["timesteps"].tolist()
            self.evaluations_results = data["results"].tolist()
            self.evaluations_length = data["ep_lengths"].tolist()
            if "clean" in data:
                self.evaluations_clean = data["clean"].tolist()
        if self.evaluations_results:
            self.best_mean_reward = float(max(np.mean(r) for r in self.evaluations_results))

    def _init_callback(self) -> None:
        """A run resumed from a checkpoint before its last validations forgets them, as its curves do."""
        super()._init_callback()
        kept = [i for i, t in enumerate(self.evaluations_timesteps) if t <= self.model.num_timesteps]
        if len(kept) == len(self.evaluations_timesteps):
            return
        self.evaluations_timesteps = [self.evaluations_timesteps[i] for i in kept]
        self.evaluations_results = [self.evaluations_results[i] for i in kept]
        self.evaluations_length = [self.evaluations_length[i] for i in kept]
        self.evaluations_clean = [self.evaluations_clean[i] for i in kept if i < len(self.evaluations_clean)]

    def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        if locals_["done"]:
            self._episode_infos.append(locals_["info"])

    def _on_step(self) -> bool:
        if self.eval_freq <= 0 or self.n_calls % self.eval_freq != 0:
            return True
        self._sync_normalization()
        self._episode_infos = []
        self.eval_env.env_method("rewind")
        rewards, lengths = evaluate_policy(
            self.model,
            self.eval_env,
            n_eval_episodes=self.n_eval_episodes,
            deterministic=self.deterministic,
            return_episode_rewards=True,
            warn=self.warn,
            callback=self._log_success_callback,
        )
        self._record(rewards, lengths)
        self._log_frames()
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)

        mean_reward = float(np.mean(rewards))
        self.last_mean_reward = mean_reward
        if mean_reward > self.best_mean_reward:
            self.best_mean_reward = mean_reward
            self._save_best()
        return True

    def _sync_normalization(self) -> None:
        """Give the validation env the training env's observation statistics.

        SB3's ``sync_envs_normalization`` needs both envs wrapped alike, layer by layer; the training env may
        be a native vector env under a VecMonitor while validation steps one plain env.
        """
        source = self.model.get_vec_normalize_env()
        if source is None:
            return
        target = self.eval_env
        while not isinstance(target, VecNormalize):
            if not isinstance(target, VecEnvWrapper):
                raise TypeError("the training env normalises observations but the validation env does not")
            target = target.venv
        if source.norm_obs:  # without it VecNormalize has no obs_rms (the pixel skier's images)
            target.obs_rms = deepcopy(source.obs_rms)
        target.ret_rms = deepcopy(source.ret_rms)

    def _record(self, rewards: list[float], lengths: list[int]) -> None:
        """Log this evaluation and add it to ``evaluations.npz``."""
        self.logger.record("eval/mean_reward", float(np.mean(rewards)))
        self.logger.record("eval/mean_ep_length", float(np.mean(lengths)))
        metrics = EpisodeMetrics(self.metric_keys, window=len(self._episode_infos) or 1)
        for info in self._episode_infos:
            metrics.add(info)
        for name, value in metrics.means().items():
            self.logger.record(f"eval/{name}", value)
        if self.verbose >= 1:
            clean = metrics.means().get("clean_run_rate")
            extra = f", clean runs {clean:.0%}" if clean is not None else ""
            print(f"Eval at {self.num_timesteps} steps: reward {np.mean(rewards):.1f} +/- {np.std(rewards):.1f}{extra}")
        self.evaluations_timesteps.append(self.num_timesteps)
        self.evaluations_results.append(list(rewards))
        self.evaluations_length.append(list(lengths))
        extra_arrays: dict[str, Any] = {}
        if "clean" in self.metric_keys:
            self.evaluations_clean.append([bool(i.get("clean", False)) for i in self._episode_infos])
            extra_arrays["clean"] = self.evaluations_clean
        if self.run_dir is not None:
            arrays = {
                "timesteps": self.evaluations_timesteps,
                "results": self.evaluations_results,
                "ep_lengths": self.evaluations_length,
                **extra_arrays,
            }
            atomic_write(self.run_dir / "evaluations.npz", lambda f: np.savez(f, **arrays))

    def _save_best(self) -> None:
        if self.run_dir is None:
            return
        path = self.run_dir / BEST_MODEL_FILE
        atomic_save_model(self.model, path)
        vecnormalize = self.model.get_vec_normalize_env()
        if vecnormalize is not None:
            atomic_save_vecnormalize(vecnormalize, vecnormalize_path(path))
        if self.verbose >= 1:
            print(f"New best mean reward {self.best_mean_reward:.1f}: saved {path}")

    def _log_frames(self) -> None:
        """One validation episode as a strip of frames in TensorBoard (``eval/episode``)."""
        if self.render_env_fn is None or self.n_frames <= 0:
            return
        try:
            frames = self._episode_frames()
        except Exception as e:  # rendering is a nicety: a missing display or pygame must not stop training
            warnings.warn(f"no episode frames in TensorBoard: {type(e).__name__}: {e}", stacklevel=2)
            self.render_env_fn = None
            return
        if frames:
            self.logger.record("eval/episode", Image(frame_strip(frames), "HWC"), exclude=NOT_TEXT)

    def _episode_frames(self) -> list[np.ndarray]:
        if self._render_env is None:
            self._render_env = self.render_env_fn()
        env = self._render_env
        vecnormalize = self.model.get_vec_normalize_env()
        obs, _ = env.reset(seed=self.render_seed)
        frames, done, t = [env.render()], False, 0
        while not done:
            model_obs = vecnormalize.normalize_obs(obs) if vecnormalize is not None else obs
            action, _ = self.model.predict(model_obs, deterministic=True)
            obs, _, terminated, truncated, _ = env.step(action.item() if action.shape == () else action)
            done, t = terminated or truncated, t + 1
            if t % 20 == 0 or done:  # every 2 s of skiing, and the finish
                frames.append(env.render())
        if len(frames) > self.n_frames:  # keep n_frames spread over the run, always the first and the last
            frames = [frames[i] for i in np.linspace(0, len(frames) - 1, self.n_frames).round().astype(int)]
        return frames

    def _on_training_end(self) -> None:
        if self._render_env is not None:
            self._render_env.close()
            self._render_env = None


class AtomicCheckpointCallback(CheckpointCallback):
    """CheckpointCallback whose model and VecNormalize files are written to a temporary name and renamed,
    so a kill during a save leaves the previous checkpoints and no half-written file.

    Beside every ``save_freq`` calls it also saves every ``save_seconds`` of wall time: a budget-sized
    ``save_freq`` would let a SIGKILL at 98% lose the whole run, a small one floods the folder on a fast env.
    """

    def __init__(
        self,
        save_freq: int,
        save_path: Path,
        name_prefix: str = "rl_model",
        verbose: int = 0,
        save_seconds: float | None = None,
    ) -> None:
        super().__init__(save_freq, str(save_path), name_prefix, save_vecnormalize=True, verbose=verbose)
        self.save_seconds = save_seconds
        self._last_save = time.monotonic()

    def _due(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            return True
        return self.save_seconds is not None and time.monotonic() - self._last_save >= self.save_seconds

    def _on_step(self) -> bool:
        if not self._due():
            return True
        self._last_save = time.monotonic()
        model_path = Path(self._checkpoint_path(extension="zip"))
        atomic_save_model(self.model, model_path)
        vecnormalize = self.model.get_vec_normalize_env()
        if vecnormalize is not None:
            atomic_save_vecnormalize(vecnormalize, Path(self._checkpoint_path("vecnormalize_", extension="pkl")))
        if self.verbose >= 1:
            print(f"Saved checkpoint {model_path}")
        return True

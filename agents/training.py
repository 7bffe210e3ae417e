"""Train an agent from a config, RL Baselines3 Zoo's way made simpler to start: one call does it all.

:func:`train` makes a run folder (see :mod:`agents.runs`), writes ``config.yml`` first, builds the vectorised
env (normalised if the hyper-parameters ask), the agent, and the callbacks (env metrics, validation on
held-out courses, checkpoints, TensorBoard hyper-parameters), and trains. Ctrl-C stops it cleanly: the model
is saved where a later ``--resume`` finds it. ``resume`` continues a run in its own folder, the step count
(and so the TensorBoard curves) going on from where they stopped.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import signal
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize, VecTransposeImage

from agents.algorithms import AlgorithmError, algorithm_class, check_action_space, make_agent
from agents.callbacks import (
    AtomicCheckpointCallback,
    EpisodeMetricsCallback,
    HParamsCallback,
    SeededEpisodes,
    ValidationCallback,
    episode_metrics_of,
)
from agents.events import truncate_events
from agents.hyperparams import (
    HyperparamsError,
    TrainSettings,
    apply_overrides,
    load_hyperparams,
    resolve,
    serialisable,
)
from agents.runs import (
    CHECKPOINT_DIR,
    CHECKPOINT_PREFIX,
    CONFIG_FILE,
    MODEL_FILE,
    RUNS_ROOT,
    RunError,
    atomic_save_model,
    atomic_save_vecnormalize,
    checkpoints,
    config_dir_of,
    load_agent,
    new_run_dir,
    read_config,
    resolve_model_path,
    vecnormalize_path,
    write_config,
)
from agents.seeds import MAX_TRAIN_SEED, VALIDATION_SEED
from agents.transfer import TRANSFER_PARTS, transfer_policy
from agents.vec_env import VEC_ENV_KINDS, make_vec_env

RESERVED = {"seed": "--seed", "device": "--device", "verbose": "--quiet", "tensorboard_log": "--tensorboard-log"}


class ConfigError(ValueError):
    """A training request that cannot work as asked (unknown env, bad env arguments...): a usage error."""


@dataclass
class TrainConfig:
    """What ``scripts/train.py`` asks for; every field has the same name as its command-line flag."""

    algo: str = "ppo"
    env: str = "trendgym/Ski-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # keyword arguments of gym.make (slope="blue")
    seed: int = 0  # training env i starts from seed * 1000 + i (agents.seeds)
    timesteps: int | None = None  # total budget; None: n_timesteps of the hyper-parameter file
    n_envs: int | None = None  # None: n_envs of the hyper-parameter file
    hyperparams: list[str] = field(default_factory=list)  # "key:value" overrides of the file's entry
    hyperparams_file: Path | None = None  # a yml in RL Zoo's format instead of agents/hyperparams/<algo>.yml
    tensorboard_log: Path = RUNS_ROOT  # root of the run folders (TensorBoard events go in each run folder)
    eval_freq: int = 100_000  # timesteps between validations; 0 for none
    eval_episodes: int = 20  # validation courses per validation
    save_freq: int = 200_000  # timesteps between checkpoints; 0 for none
    save_minutes: float = 2.0  # also a checkpoint every so many minutes of training, so a kill loses minutes; 0: none
    vec_env: str | None = None  # "dummy", "subproc", "native"; None: native when the env has one
    device: str = "auto"
    resume: str | None = None  # a run folder or model zip to continue
    init_from: str | None = None  # a trained run (folder or zip) whose policy the new agent starts from
    init_parts: str = "all"  # what init_from gives: "all" the policy, "body" its hidden layers only
    verbose: int = 1  # 0 quiet, 1 progress bar and validation lines, 2 also SB3's tables
    command: str = ""  # the command line, for config.yml
    n_frames: int = 8  # frames of the validation episode strip in TensorBoard; 0 for none
    torch_threads: int = 1  # small MLPs gain nothing from more threads, and other jobs share the machine


@dataclass
class TrainResult:
    run_dir: Path
    model: BaseAlgorithm
    model_path: Path  # model.zip
    interrupted: bool  # stopped by Ctrl-C or SIGTERM before the budget
    num_timesteps: int
    stop_signal: int | None = None  # the signal that stopped it: the exit code is 128 + it


@dataclass
class _Plan:
    """Everything resolved before anything is built: from a fresh config or from a run's config.yml."""

    run_dir: Path
    config: dict[str, Any]  # what config.yml holds
    kwargs: dict[str, Any]  # constructor keywords
    settings: TrainSettings
    vec_env: str
    resume_from: Path | None = None


def versions() -> dict[str, str]:
    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    return {name: version(name) for name in ("trendgym", "stable-baselines3", "sb3-contrib", "torch", "gymnasium")}


def probe_env(env_id: str, env_kwargs: dict[str, Any]) -> gym.Env:
    """Make one env to check the id and the arguments, turning gymnasium's and the env's errors into one line."""
    try:
        return gym.make(env_id, **env_kwargs)
    except (gym.error.Error, ModuleNotFoundError) as e:  # "pkg:Env-v0" imports pkg first
        trendgym = sorted(k for k in gym.registry if k.startswith("trendgym/"))
        raise ConfigError(f"unknown env {env_id!r} ({e}); trendgym envs: {', '.join(trendgym)}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad --env-kwargs for {env_id}: {e}") from None


def _check_request(config: TrainConfig) -> None:
    if not 0 <= config.seed < MAX_TRAIN_SEED:
        raise ConfigError(f"--seed must be in 0..{MAX_TRAIN_SEED - 1} (higher seeds are the validation courses)")
    if config.vec_env is not None and config.vec_env not in VEC_ENV_KINDS:
        raise ConfigError(f"--vec-env must be one of {', '.join(VEC_ENV_KINDS)}, got {config.vec_env!r}")
    for name in ("eval_freq", "eval_episodes", "save_freq", "save_minutes"):
        if getattr(config, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must not be negative")
    if config.init_parts not in TRANSFER_PARTS:
        raise ConfigError(f"--init-parts must be one of {', '.join(TRANSFER_PARTS)}, got {config.init_parts!r}")
    if config.init_from is not None:
        resolve_model_path(config.init_from)  # a RunError now, before a run folder is made, if it is not there


def _raw_hyperparams(config: TrainConfig) -> dict[str, Any]:
    entry = load_hyperparams(config.algo, config.env, config.hyperparams_file, config.env_kwargs)
    raw = apply_overrides(entry, config.hyperparams)
    for key, flag in RESERVED.items():
        if key in raw:
            raise ConfigError(f"set {key} with {flag}, not --hyperparams")
    if config.n_envs is not None:
        raw["n_envs"] = config.n_envs
    if config.timesteps is not None:
        raw["n_timesteps"] = config.timesteps
    return raw


def default_vec_env(env_id: str, env_kwargs: dict[str, Any]) -> str:
    """The native vector env when the env has one that serves these arguments and can reset one sub-env alone
    (what :class:`~agents.vec_env.NativeVecEnv` needs; Gymnasium's CartPole vector env cannot), else DummyVecEnv."""
    if gym.spec(env_id).vector_entry_point is None:
        return "dummy"
    try:
        vector_env = gym.make_vec(env_id, num_envs=1, vectorization_mode="vector_entry_point", **env_kwargs)
    except (TypeError, ValueError):
        return "dummy"
    native = callable(getattr(vector_env, "reset_rows", None))
    vector_env.close()
    return "native" if native else "dummy"


def _fresh_plan(config: TrainConfig) -> _Plan:
    """Resolve a new run: check everything the user typed before a folder is made."""
    _check_request(config)
    algorithm_class(config.algo)
    env = probe_env(config.env, config.env_kwargs)
    try:
        check_action_space(config.algo, env.action_space, config.env)
        if config.algo.lower() == "maskableppo" and not hasattr(env.unwrapped, "action_masks"):
            raise ConfigError(f"maskableppo needs an env with action_masks(); {config.env} has none, use ppo")
    finally:
        env.close()
    raw = _raw_hyperparams(config)
    kwargs, settings = resolve(raw, config.algo)
    if settings.train_env_kwargs:  # the training envs' own arguments must make an env too
        probe_env(config.env, {**config.env_kwargs, **settings.train_env_kwargs}).close()
    vec_env = config.vec_env or default_vec_env(config.env, config.env_kwargs)
    try:
        run_dir = new_run_dir(config.algo, config.env, Path(config.tensorboard_log))
    except OSError as e:  # a file in the way, a folder that cannot be written, a read-only file system
        raise RunError(f"cannot make a run folder under {config.tensorboard_log}: {e.strerror or e}") from None
    record = {
        "algo": config.algo.lower(),
        "env": config.env,
        "env_kwargs": dict(config.env_kwargs),
        "seed": config.seed,
        "n_timesteps": settings.n_timesteps,
        "n_envs": settings.n_envs,
        "vec_env": vec_env,
        "device": config.device,
        "normalize": serialisable({"n": raw.get("normalize", False)})["n"],
        "hyperparams": serialisable({k: v for k, v in raw.items() if k not in ("n_envs", "n_timesteps", "normalize")}),
        "eval_freq": config.eval_freq,
        "eval_episodes": config.eval_episodes,
        "save_freq": config.save_freq,
        "save_minutes": config.save_minutes,
        "command": config.command,
        "versions": versions(),
    }
    if config.init_from is not None:
        record.update(init_from=str(config.init_from), init_parts=config.init_parts)
    return _Plan(run_dir, record, kwargs, settings, vec_env)


def resume_target(run_or_zip: str | Path) -> tuple[Path, Path]:
    """``(run folder, model zip)`` to continue: the given zip, or the run's newest checkpoint or model.zip."""
    path = Path(run_or_zip)
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise RunError(f"cannot resume {path}: not a model zip file (unreadable or corrupt)")
        return config_dir_of(path), path
    if not path.is_dir():
        raise RunError(f"cannot resume {path}: no such run folder or model zip")
    candidates = [p for _, p in checkpoints(path)]
    if (path / MODEL_FILE).is_file():
        candidates.append(path / MODEL_FILE)
    if not candidates:
        raise RunError(f"cannot resume {path}: it holds no model.zip and no checkpoint")
    return path, max(candidates, key=lambda p: p.stat().st_mtime)


def _resume_plan(config: TrainConfig) -> _Plan:
    """Resolve a resumed run from its config.yml; only the budget, device and verbosity may change."""
    run_dir, zip_path = resume_target(config.resume)
    try:
        record = read_config(run_dir)
    except RunError as e:
        raise RunError(f"cannot resume {zip_path}: {e}") from None
    missing = [k for k in ("algo", "env", "seed", "n_timesteps", "n_envs") if k not in record]
    if missing:
        raise RunError(f"{run_dir / 'config.yml'} lacks {', '.join(missing)}; cannot resume")
    raw = {**record.get("hyperparams", {}), "n_envs": record["n_envs"], "n_timesteps": record["n_timesteps"]}
    raw["normalize"] = record.get("normalize", False)
    if config.timesteps is not None:
        raw["n_timesteps"] = record["n_timesteps"] = config.timesteps
    try:
        kwargs, settings = resolve(raw, record["algo"])
    except (HyperparamsError, AlgorithmError) as e:
        raise RunError(f"{run_dir / 'config.yml'}: {e}") from None
    record["device"] = config.device
    record.setdefault("resumes", []).append({"from": str(zip_path), "command": config.command})
    vec_env = record.get("vec_env") or "dummy"
    return _Plan(run_dir, record, kwargs, settings, vec_env, resume_from=zip_path)


def action_noise(settings: TrainSettings, action_space: gym.spaces.Space) -> Any:
    """The exploration noise an off-policy entry asks for (RL Zoo's ``noise_type`` and ``noise_std``), or None."""
    if settings.noise_type is None:
        return None
    n = int(np.prod(action_space.shape))
    mean, sigma = np.zeros(n), settings.noise_std * np.ones(n)
    if settings.noise_type == "normal":
        return NormalActionNoise(mean, sigma)
    return OrnsteinUhlenbeckActionNoise(mean, sigma)


def _build_envs(plan: _Plan) -> tuple[VecEnv, VecEnv]:
    """The training env (normalised as asked, statistics restored on resume) and the validation env."""
    c, settings = plan.config, plan.settings
    env_kwargs = c.get("env_kwargs") or {}
    train_kwargs = {**env_kwargs, **settings.train_env_kwargs}  # the training distribution; validation: the task's
    venv = make_vec_env(c["env"], settings.n_envs, c["seed"], train_kwargs, kind=plan.vec_env)  # type: ignore[arg-type]

    def validation_env() -> gym.Env:
        return SeededEpisodes(Monitor(gym.make(c["env"], **env_kwargs)), VALIDATION_SEED)

    eval_env: VecEnv = DummyVecEnv([validation_env])
    if settings.normalize is not None:
        gamma = plan.kwargs.get("gamma", 0.99)
        stats = vecnormalize_path(plan.resume_from) if plan.resume_from is not None else None
        if stats is not None and stats.is_file():
            try:
                venv = VecNormalize.load(str(stats), venv)
            except Exception as e:  # a truncated or foreign pickle raises anything from EOFError to AttributeError
                venv.close()
                what = f"{stats} is not a readable VecNormalize file ({type(e).__name__})"
                raise RunError(f"cannot resume: {what}") from None
            venv.training = True
        else:
            venv = VecNormalize(venv, **{"gamma": gamma, **settings.normalize})
        # norm_obs as in training: images (CnnPolicy) are not normalised, and a validation env that did would clip
        # every pixel to +-10 with statistics never synced.
        eval_env = VecNormalize(eval_env, training=False, norm_obs=venv.norm_obs, norm_reward=False, gamma=gamma)
    if is_image_space(eval_env.observation_space) and not is_image_space_channels_first(eval_env.observation_space):
        eval_env = VecTransposeImage(eval_env)  # as SB3 wraps the training env of an image policy
    return venv, eval_env


def _build_model(plan: _Plan, venv: VecEnv, device: str) -> BaseAlgorithm:
    c = plan.config
    if plan.resume_from is not None:
        cls = algorithm_class(c["algo"])
        try:
            return cls.load(plan.resume_from, env=venv, device=device)
        except Exception as e:  # a corrupt or foreign zip: SB3 raises anything from KeyError to RuntimeError
            raise RunError(f"cannot resume from {plan.resume_from}: {type(e).__name__}: {e}") from None
    kwargs = dict(plan.kwargs)
    noise = action_noise(plan.settings, venv.action_space)
    if noise is not None:
        kwargs["action_noise"] = noise
    try:
        model = make_agent(c["algo"], venv, {**kwargs, "device": device, "verbose": 0})
    except (AssertionError, ValueError, TypeError, RuntimeError) as e:  # SB3's own checks of what the ranges miss
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"these hyper-parameters cannot build a {c['algo']} agent: {reason}") from None
    if c.get("init_from"):
        try:
            transfer_policy(load_agent(c["init_from"], device=device), model, venv, c.get("init_parts", "all"))
        except ValueError as e:  # policies built differently: the user's choice of runs
            raise ConfigError(str(e)) from None
    # The off-policy warm-up draws from the action space: seed it, so a seed gives the same run. (SB3's own seed=
    # would also reseed the envs, overriding agents.seeds' scheme of one course sequence per training env.)
    model.action_space.seed(c["seed"])
    return model


def _render_modes(env_id: str, env_kwargs: dict[str, Any]) -> list[str]:
    env = gym.make(env_id, **env_kwargs)
    try:
        return list(env.metadata.get("render_modes", []))
    finally:
        env.close()


def _callbacks(plan: _Plan, config: TrainConfig, n_envs: int, eval_env: VecEnv) -> list[BaseCallback]:
    c = plan.config
    env_kwargs = c.get("env_kwargs") or {}
    metrics = episode_metrics_of(c["env"], env_kwargs)
    keys = metrics[1] if metrics else ()
    callbacks: list[BaseCallback] = []
    if metrics is not None:
        callbacks.append(EpisodeMetricsCallback(*metrics))
    hparams = {k: c[k] for k in ("algo", "env", "seed", "n_envs", "n_timesteps", "normalize")}
    hparams.update(c.get("hyperparams", {}))
    watched = ["eval/mean_reward", "rollout/ep_rew_mean"]
    if "clean" in keys:
        watched += ["eval/clean_run_rate", f"{metrics[0]}/clean_run_rate"]
    callbacks.append(HParamsCallback(hparams, tuple(watched)))
    eval_freq, save_freq = c.get("eval_freq", 0), c.get("save_freq", 0)
    if eval_freq > 0:

        def render_env() -> gym.Env:
            return gym.make(c["env"], render_mode="rgb_array", **env_kwargs)

        validation = ValidationCallback(
            eval_env,
            plan.run_dir,
            metric_keys=keys,
            render_env_fn=render_env if "rgb_array" in _render_modes(c["env"], env_kwargs) else None,
            render_seed=VALIDATION_SEED,
            n_frames=config.n_frames,
            n_eval_episodes=c.get("eval_episodes", 20),
            eval_freq=max(eval_freq // n_envs, 1),
            deterministic=True,
            verbose=config.verbose,
        )
        callbacks.append(validation)
    save_minutes = c.get("save_minutes", 0)
    if save_freq > 0 or save_minutes > 0:
        folder = plan.run_dir / CHECKPOINT_DIR
        calls = max(save_freq // n_envs, 1) if save_freq > 0 else 2**62  # 2**62: never by step count
        seconds = 60 * save_minutes if save_minutes > 0 else None
        callbacks.append(AtomicCheckpointCallback(calls, folder, CHECKPOINT_PREFIX, save_seconds=seconds))
    return callbacks


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, and what kill, timeout, schedulers and containers send


class StopOnInterrupt(BaseCallback):
    """Ctrl-C or SIGTERM asks the training to stop after the current step, and a second one interrupts at once.

    A KeyboardInterrupt raised wherever Python happens to be can land in a finaliser or a library's clean-up and be
    swallowed there ("Exception ignored in ..."), and the training would go on as if nothing had happened. Setting
    a flag that the next step reads cannot be lost. SIGTERM is treated as Ctrl-C: by default Python dies of it
    with nothing saved.
    """

    def __init__(self) -> None:
        super().__init__()
        self.received: int | None = None  # the signal that asked to stop

    @property
    def requested(self) -> bool:
        return self.received is not None

    @contextmanager
    def listening(self) -> Iterator[None]:
        """Route SIGINT and SIGTERM to this callback within the block (main thread only: elsewhere Ctrl-C keeps
        raising)."""
        try:
            previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        except ValueError:  # not the main thread: signal handlers cannot be set
            yield
            return
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.received = signum

    def _on_step(self) -> bool:
        return not self.requested


def _close_progress_bars() -> None:
    """Stop SB3's progress bar, which an interrupted ``learn`` leaves running, before anything is printed."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def steps_per_collection(model: BaseAlgorithm) -> tuple[int, str]:
    """How many env steps ``learn`` takes between two checks of the budget, and why, in words.

    SB3 checks the budget only between collections: PPO always finishes its rollout of ``n_envs x n_steps``,
    an off-policy algorithm its ``train_freq`` steps of every env, so a budget is rounded up to a multiple.
    """
    n_envs = model.n_envs
    if isinstance(model, OnPolicyAlgorithm):
        return n_envs * model.n_steps, f"{n_envs} envs x {model.n_steps} n_steps per update"
    if isinstance(model, OffPolicyAlgorithm) and model.train_freq.unit.value == "step":
        frequency = model.train_freq.frequency
        return n_envs * frequency, f"{n_envs} envs x train_freq {frequency}"
    return n_envs, f"{n_envs} envs"


def trained_total(model: BaseAlgorithm, asked: int) -> int:
    """The step count ``learn`` ends at when asked for ``asked`` in all: the budget rounded up to whole collections
    (:func:`steps_per_collection`). Training is asked for exactly this, so the progress bar ends at 100% and a
    linear schedule reaches its end at the last update, rather than 3,002,368 steps of a bar of 3,000,000."""
    start = model.num_timesteps
    if asked <= start:
        return start
    per_collection, _ = steps_per_collection(model)
    return start + -(-(asked - start) // per_collection) * per_collection


def budget_notes(model: BaseAlgorithm, asked: int, resume_from: Path | None) -> list[str]:
    """What the training is about to do with the budget, said before it starts: where a resumed run goes on
    from, a budget that the collections round up, and an off-policy budget that ends before learning starts."""
    name, start = type(model).__name__, model.num_timesteps
    notes = [f"resuming from {resume_from} at step {start:,}; training on to {asked:,}"] if resume_from else []
    per_collection, why = steps_per_collection(model)
    if asked <= start:
        return [*notes, f"the run is already at step {start:,} of {asked:,}: nothing left to train"]
    total = trained_total(model, asked)
    if total != asked:
        notes.append(f"{name} collects {per_collection:,} steps at a time ({why}): {asked:,} steps become {total:,}")
    learning_starts = getattr(model, "learning_starts", 0)
    if isinstance(model, OffPolicyAlgorithm) and total <= learning_starts:
        notes.append(
            f"warning: {name} starts learning after learning_starts={learning_starts:,} steps, so a budget of "
            f"{total:,} steps never updates the policy (give --timesteps above it, or --hyperparams learning_starts:N)"
        )
    return notes


def save_final(model: BaseAlgorithm, run_dir: Path) -> Path:
    """Save ``model.zip`` (+ ``vecnormalize.pkl``) atomically, deaf to a second Ctrl-C or SIGTERM while it writes."""
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    try:
        path = run_dir / MODEL_FILE
        atomic_save_model(model, path)
        vecnormalize = model.get_vec_normalize_env()
        if vecnormalize is not None:
            atomic_save_vecnormalize(vecnormalize, vecnormalize_path(path))
        return path
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def _discarded_on_error(plan: _Plan) -> Iterator[None]:
    """A new run whose envs or agent cannot be built leaves no folder behind (only its config.yml is there yet);
    a resumed run keeps its folder, whatever happens."""
    try:
        yield
    except (ConfigError, RunError):
        if plan.resume_from is None and [p.name for p in plan.run_dir.iterdir()] == [CONFIG_FILE]:
            shutil.rmtree(plan.run_dir)
        raise


def train(config: TrainConfig) -> TrainResult:
    """Train (or, with ``config.resume``, continue) a run; see the module docstring. Returns when the budget
    is spent or at Ctrl-C, the model saved either way."""
    torch.set_num_threads(config.torch_threads)
    if config.resume and config.init_from:
        raise ConfigError("--init-from starts a new run and --resume continues one: give one of them")
    plan = _resume_plan(config) if config.resume else _fresh_plan(config)
    write_config(plan.run_dir, plan.config)
    set_random_seed(plan.config["seed"])
    with _discarded_on_error(plan):
        venv, eval_env = _build_envs(plan)
    try:
        with _discarded_on_error(plan):
            model = _build_model(plan, venv, config.device)
        if plan.resume_from is not None:  # a killed run logged past its checkpoint: continue the curves from it
            truncate_events(plan.run_dir, model.num_timesteps)
        formats = ["tensorboard"] + (["stdout"] if config.verbose >= 2 else [])
        model.set_logger(configure(str(plan.run_dir), formats))
        callbacks = _callbacks(plan, config, plan.settings.n_envs, eval_env)
        remaining = trained_total(model, plan.settings.n_timesteps) - model.num_timesteps
        if config.verbose >= 1:
            for note in budget_notes(model, plan.settings.n_timesteps, plan.resume_from):
                print(note, flush=True)
        stop = StopOnInterrupt()
        interrupted = False
        if remaining > 0:
            try:
                with stop.listening():
                    model.learn(
                        remaining,
                        callback=[*callbacks, stop],
                        reset_num_timesteps=plan.resume_from is None,
                        progress_bar=config.verbose >= 1,
                    )
            except KeyboardInterrupt:
                interrupted = True
                _close_progress_bars()
        interrupted = interrupted or stop.requested
        model_path = save_final(model, plan.run_dir)
        received = stop.received if stop.requested else signal.SIGINT if interrupted else None
        return TrainResult(plan.run_dir, model, model_path, interrupted, model.num_timesteps, received)
    finally:
        venv.close()
        eval_env.close()

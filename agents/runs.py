"""Where training runs live on disk and how a trained agent is found and loaded again.

A run is a folder ``runs/<algo>/<EnvName>_<n>/`` (RL Baselines3 Zoo's layout) holding:

* ``config.yml``: everything needed to reproduce the run (algorithm, env and its arguments, seed, budget,
  hyper-parameters as written in the YAML, the command line, library versions);
* ``model.zip``: the final model, or the model at Ctrl-C; ``vecnormalize.pkl`` beside it when the run
  normalises observations;
* ``best_model.zip`` (+ ``best_vecnormalize.pkl``): the best model on the validation courses;
* ``evaluations.npz``: the validation results during training;
* ``checkpoints/rl_model_<steps>_steps.zip`` (+ ``rl_model_vecnormalize_<steps>_steps.pkl``);
* TensorBoard event files, directly in the run folder so ``tensorboard --logdir runs`` names each run.

Every file is written to a temporary name in the same folder and then renamed over the final name
(``os.replace`` is atomic on POSIX and Windows), so a run killed at any moment leaves every file readable:
either the old version or the new one, never half of one. A run made in one go after the work (a distilled
student) is written whole into a hidden folder and renamed into place (:func:`staged_run_dir`), so it is
there complete or not at all.
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import re
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from agents.algorithms import ALGOS
from agents.hyperparams import HyperparamsError, normalizes_observations
from trends.files import atomic_write, atomic_write_text

RUNS_ROOT = Path("runs")
CONFIG_FILE = "config.yml"
MODEL_FILE = "model.zip"
BEST_MODEL_FILE = "best_model.zip"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_PREFIX = "rl_model"
_CHECKPOINT_RE = re.compile(rf"{CHECKPOINT_PREFIX}_(\d+)_steps\.zip$")
_RUN_RE = re.compile(r"^(?P<name>.+)_(?P<n>\d+)$")


class RunError(Exception):
    """A user-facing problem with a run or model file; scripts print str(e) as one line and exit 1."""


def env_folder_name(env_id: str) -> str:
    """The run folder's env part: the id without its namespace, ``"trendgym/Ski-v0"`` -> ``"Ski-v0"``.

    ``"envs:trendgym/Ski-v0"`` (the module-prefixed form gym.make accepts) gives the same name.
    """
    return env_id.split(":")[-1].split("/")[-1]


def new_run_dir(algo: str, env_id: str, root: Path = RUNS_ROOT) -> Path:
    """Create and return ``root/<algo>/<EnvName>_<n+1>``, ``n`` the highest number already there.

    ``mkdir(exist_ok=False)`` in a loop makes two trainings started at the same moment get different folders.
    """
    return numbered_dir(Path(root) / algo.lower(), env_folder_name(env_id))


def numbered_dir(parent: Path, name: str) -> Path:
    """Create and return ``parent/<name>_<n+1>``, ``n`` the highest number already there: a new folder for each
    run of a command, so no run overwrites an earlier one's results.

    ``mkdir(exist_ok=False)`` in a loop makes two runs started at the same moment get different folders.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    numbers = [int(m["n"]) for p in parent.iterdir() if (m := _RUN_RE.match(p.name)) and m["name"] == name]
    n = max(numbers, default=0) + 1
    while True:
        folder = parent / f"{name}_{n}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            n += 1


class StagedRun(NamedTuple):
    """A run folder being written: files go into ``folder``; ``run_dir`` is its name once it is complete."""

    folder: Path
    run_dir: Path


@contextmanager
def staged_run_dir(algo: str, env_id: str, root: Path = RUNS_ROOT) -> Iterator[StagedRun]:
    """A new run folder written whole or not at all: its number is claimed at once (an empty folder, as
    :func:`new_run_dir` makes it), its files are written into a hidden folder beside it, and that folder is
    renamed over the empty one when the block ends without an exception. On an exception (Ctrl-C included)
    both are removed, so no folder with a model and without its statistics or config is left to be loaded.
    """
    run_dir = new_run_dir(algo, env_id, root)
    # hidden, and ending in a letter so that new_run_dir never reads it as a run's number
    folder = run_dir.with_name(f".{run_dir.name}.{uuid.uuid4().hex[:8]}.partial")
    folder.mkdir()
    try:
        yield StagedRun(folder, run_dir)
        try:
            os.replace(folder, run_dir)  # POSIX renames a folder over an empty one atomically
        except OSError:  # Windows does not: free the name first
            run_dir.rmdir()
            os.replace(folder, run_dir)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        if run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise


def _run_dirs(root: Path) -> Iterator[Path]:
    """Every run folder under ``root``; hidden folders (runs still being written) are not runs yet."""
    root = Path(root)
    if not root.is_dir():
        return
    for algo_dir in root.iterdir():
        if algo_dir.is_dir() and not algo_dir.name.startswith("."):
            yield from (p for p in algo_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def latest_run(root: Path = RUNS_ROOT) -> Path:
    """The run whose ``model.zip`` or ``best_model.zip`` was written last: the one just trained."""
    newest: tuple[float, Path] | None = None
    for run_dir in _run_dirs(root):
        for name in (MODEL_FILE, BEST_MODEL_FILE):
            f = run_dir / name
            if f.is_file() and (newest is None or f.stat().st_mtime > newest[0]):
                newest = (f.stat().st_mtime, run_dir)
    if newest is None:
        raise RunError(
            f"no runs under {Path(root)}/; train one with: python scripts/train.py --algo ppo --env trendgym/Ski-v0"
        )
    return newest[1]


def write_config(run_dir: Path, config: dict) -> None:
    """Write ``config.yml`` atomically, keys in the order given (the order a person reads them in)."""
    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    atomic_write_text(Path(run_dir) / CONFIG_FILE, text)


def read_config(run_dir: Path) -> dict:
    """The run's ``config.yml`` as a dict."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path} does not exist; is {run_dir} a run folder?") from None
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as e:
        raise RunError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(config, dict):
        raise RunError(f"{path} is not a mapping of settings")
    return config


def atomic_save_model(model: BaseAlgorithm, path: Path) -> None:
    """``model.save(path)`` through a temporary file, so a kill mid-save leaves the previous zip intact."""
    atomic_write(Path(path), model.save)


def atomic_save_vecnormalize(vecnormalize: VecNormalize, path: Path) -> None:
    """Save VecNormalize statistics atomically (``VecNormalize.save`` pickles itself without its env), those of
    a live training env or statistics loaded by :func:`load_vecnormalize` alike."""
    _restore_dropped_state(vecnormalize)
    atomic_write(Path(path), lambda f: pickle.dump(vecnormalize, f))


def _restore_dropped_state(vecnormalize: VecNormalize) -> None:
    """Give unpickled statistics back what ``VecNormalize.__getstate__`` dropped and only ``set_venv`` restores.

    SB3 2.9's ``__getstate__`` deletes ``class_attributes`` and ``returns`` from the state it pickles, so an
    object unpickled without an env (as :func:`load_vecnormalize` does: the statistics are all a watcher needs)
    raises ``KeyError: 'class_attributes'`` when pickled (saved beside a distilled student) or deep-copied again.
    Both are derived values: the class's members, and the running returns of ``num_envs`` envs (zeros, as
    ``set_venv`` and ``reset`` make them). A live object already has both and is left as it is.
    """
    state = vars(vecnormalize)
    if "class_attributes" not in state:
        vecnormalize.class_attributes = dict(inspect.getmembers(type(vecnormalize)))
    if "returns" not in state:
        vecnormalize.returns = np.zeros(getattr(vecnormalize, "num_envs", 1))


def vecnormalize_path(model_path: Path) -> Path:
    """Where the VecNormalize statistics that go with ``model_path`` live.

    ``model.zip`` -> ``vecnormalize.pkl``, ``best_model.zip`` -> ``best_vecnormalize.pkl``,
    ``rl_model_<s>_steps.zip`` -> ``rl_model_vecnormalize_<s>_steps.pkl`` (CheckpointCallback's names),
    anything else ``<stem>_vecnormalize.pkl``.
    """
    model_path = Path(model_path)
    name = model_path.name
    if name == MODEL_FILE:
        return model_path.with_name("vecnormalize.pkl")
    if name == BEST_MODEL_FILE:
        return model_path.with_name("best_vecnormalize.pkl")
    if m := _CHECKPOINT_RE.match(name):
        return model_path.with_name(f"{CHECKPOINT_PREFIX}_vecnormalize_{m[1]}_steps.pkl")
    return model_path.with_name(f"{model_path.stem}_vecnormalize.pkl")


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """The run's checkpoints as ``(steps, path)``, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m[1]), p) for p in folder.iterdir() if (m := _CHECKPOINT_RE.match(p.name))]
    return sorted(found)


def load_vecnormalize(path: Path) -> VecNormalize | None:
    """VecNormalize statistics, frozen for evaluation, or None if ``path`` does not exist.

    The object is unpickled without an env: ``normalize_obs`` needs only the statistics, so a watcher or an
    evaluator can normalise observations of any env (single or vector) it steps itself.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            vecnormalize = pickle.load(f)
    except Exception as e:  # a truncated or foreign pickle raises anything from EOFError to AttributeError
        raise RunError(f"{path} is not a readable VecNormalize file ({type(e).__name__})") from None
    if not isinstance(vecnormalize, VecNormalize):
        raise RunError(f"{path} holds a {type(vecnormalize).__name__}, not VecNormalize statistics")
    _restore_dropped_state(vecnormalize)
    vecnormalize.training = False
    vecnormalize.norm_reward = False
    return vecnormalize


@dataclass
class LoadedAgent:
    """A trained model with what it needs to act as it did in training: its config and its obs statistics."""

    model: BaseAlgorithm
    config: dict  # the run's config.yml ({} for a bare zip with no config beside it)
    path: Path  # the zip that was loaded
    vecnormalize: VecNormalize | None  # observation statistics, or None; use .normalize_obs(obs)

    def predict(
        self,
        obs: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """``model.predict`` on the observation as the model saw it in training (normalised if it was)."""
        if self.vecnormalize is not None:
            obs = self.vecnormalize.normalize_obs(obs)
        return self.model.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic)


def _model_in_run(run_dir: Path, prefer_best: bool) -> Path:
    """The zip to load from a run folder: best or final as asked, else the other, else the newest checkpoint."""
    order = [BEST_MODEL_FILE, MODEL_FILE] if prefer_best else [MODEL_FILE, BEST_MODEL_FILE]
    for name in order:
        if (run_dir / name).is_file():
            return run_dir / name
    found = checkpoints(run_dir)
    if found:
        return found[-1][1]
    raise RunError(f"{run_dir} holds no model.zip, best_model.zip or checkpoint")


def config_dir_of(zip_path: Path) -> Path:
    """The run folder a model zip belongs to: its folder, or the one above for ``checkpoints/``."""
    parent = Path(zip_path).parent
    return parent.parent if parent.name == CHECKPOINT_DIR else parent


def resolve_model_path(run_or_zip: str | Path | None, prefer_best: bool = True) -> Path:
    """The model zip meant by a run folder, a zip file or None (the latest run)."""
    if run_or_zip is None:
        return _model_in_run(latest_run(), prefer_best)
    path = Path(run_or_zip)
    if path.is_dir():
        return _model_in_run(path, prefer_best)
    if path.is_file():
        return path
    # SB3 accepts "model" for "model.zip"; a name with another suffix ("model.zp") is a typo, not that zip
    zipped = path.with_suffix(".zip")
    if not path.suffix and zipped.is_file():
        return zipped
    hint = f"; did you mean {zipped}?" if zipped.is_file() else ""
    raise RunError(f"{path} does not exist (give a run folder such as runs/ppo/Ski-v0_1 or a model .zip){hint}")


def _config_beside(zip_path: Path) -> dict:
    run_dir = config_dir_of(zip_path)
    return read_config(run_dir) if (run_dir / CONFIG_FILE).is_file() else {}


def _likely_classes(path: Path) -> list[type[BaseAlgorithm]]:
    """Every algorithm class, the likeliest first for a zip saved without a config.yml beside it.

    Several classes load each other's zips without complaint (PPO loads an A2C or a RecurrentPPO zip, SAC a
    TQC zip), so trying them in a fixed order would guess wrong. A zip records the module of its policy
    class and the algorithm's attributes: the class whose policies live in that module, and whose
    constructor arguments are most nearly all among those attributes, made the zip.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
        saved = set(data)
        policy_module = data.get("policy_class", {}).get("__module__")
    except (KeyError, ValueError, AttributeError, OSError, zipfile.BadZipFile):
        return list(ALGOS.values())

    def unlikeliness(cls: type[BaseAlgorithm]) -> tuple[bool, bool, int]:
        foreign_policy = policy_module not in {p.__module__ for p in cls.policy_aliases.values()}
        # DDPG is TD3 with one actor update per critic update and target smoothing clipped to nothing.
        not_ddpg = cls is ALGOS["ddpg"] and (data.get("policy_delay"), data.get("target_noise_clip")) != (1, 0.0)
        missing = sum(name not in saved for name in inspect.signature(cls.__init__).parameters)
        return foreign_policy, not_ddpg, missing

    return sorted(ALGOS.values(), key=unlikeliness)  # sorted() is stable: ties keep ALGOS' order


def _load_model(path: Path, algo: str | None, device: str) -> BaseAlgorithm:
    """Load ``path`` with the class of ``algo``, or with each known class in turn when it is not known."""
    if not zipfile.is_zipfile(path):
        raise RunError(f"{path} is not a model zip file (unreadable or corrupt)")
    if algo is not None and algo.lower() not in ALGOS:
        raise RunError(f"{path}: config.yml names an unknown algorithm {algo!r}")
    candidates = [ALGOS[algo.lower()]] if algo is not None else _likely_classes(path)
    errors: list[str] = []
    for cls in candidates:
        try:
            return cls.load(path, device=device)
        except Exception as e:  # SB3 raises KeyError, ValueError, RuntimeError, ... for a zip of another kind
            errors.append(f"{cls.__name__}: {type(e).__name__}")
    what = f"a {candidates[0].__name__} model" if algo is not None else "a Stable-Baselines3 model"
    raise RunError(f"{path} is not {what} that can be loaded ({'; '.join(errors)})")


def load_agent(run_or_zip: str | Path | None, prefer_best: bool = True, device: str = "auto") -> LoadedAgent:
    """Load a trained agent from a run folder, a model zip, or (None) the latest run.

    From a run folder, ``best_model.zip`` if it exists and ``prefer_best``, else ``model.zip``. From a zip,
    that file, with the ``config.yml`` of the run it lies in (if any) and the VecNormalize statistics saved
    beside it. Every problem (missing file, corrupt zip, a zip of the wrong kind) is a :class:`RunError`.
    """
    path = resolve_model_path(run_or_zip, prefer_best)
    config = _config_beside(path)
    vecnormalize = load_vecnormalize(vecnormalize_path(path))
    if vecnormalize is None:
        _refuse_if_statistics_missing(path, config)
    model = _load_model(path, config.get("algo"), device)
    return LoadedAgent(model=model, config=config, path=path, vecnormalize=vecnormalize)


def _refuse_if_statistics_missing(path: Path, config: dict) -> None:
    """A model trained on normalised observations acts on raw ones without its statistics: it still skis, only
    worse (a distilled skier scored 88 where its teacher skis 162), so every score of it would be quietly wrong.
    Refused here, where watch, evaluate, compress, ensemble and transfer all load their agents."""
    if "normalize" not in config and config.get("distilled_from"):
        _refuse_if_teacher_normalized(path, Path(config["distilled_from"]))
    try:
        normalized = normalizes_observations(config.get("normalize", False))
    except HyperparamsError as e:
        raise RunError(f"{config_dir_of(path) / CONFIG_FILE}: normalize: {e}") from None
    if normalized:
        setting = yaml.safe_dump(config["normalize"], default_flow_style=True).splitlines()[0]  # as config.yml says it
        final = path.with_name(MODEL_FILE)
        other = (
            f"; {MODEL_FILE} has its statistics (--last loads it)"
            if path.name == BEST_MODEL_FILE and vecnormalize_path(final).is_file() and final.is_file()
            else ""
        )
        raise RunError(
            f"{path} was trained on normalised observations (config.yml: normalize: {setting}) but "
            f"{vecnormalize_path(path).name} is missing beside it; without those statistics it acts on raw "
            f"observations and every score of it would be wrong{other}"
        )


def _refuse_if_teacher_normalized(path: Path, teacher: Path) -> None:
    """Students distilled before their config said ``normalize`` (and before their statistics were saved at all:
    the save raised KeyError after the zip was written) learnt on their teacher's normalised observations; their
    teacher's config.yml says so."""
    teacher_config = config_dir_of(teacher) / CONFIG_FILE
    try:
        normalized = teacher_config.is_file() and normalizes_observations(
            read_config(teacher_config.parent).get("normalize")
        )
    except (RunError, HyperparamsError):
        return  # an unreadable teacher config says nothing either way
    if normalized:
        raise RunError(
            f"{path} was distilled from {teacher}, which acts on normalised observations, but "
            f"{vecnormalize_path(path).name} is missing beside it; distil it again to get a student with its statistics"
        )

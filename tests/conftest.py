"""Test settings shared by every test: headless pygame, one torch thread."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import torch

torch.set_num_threads(1)


import gymnasium as gym  # noqa: E402
import pytest  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402

import envs  # noqa: E402, F401


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A PPO skier trained for 1024 steps (it has not learned to ski; it only has to load and act) in a run folder
    laid out as scripts/train.py lays it out."""
    from agents.runs import atomic_save_model, new_run_dir, write_config

    root = tmp_path_factory.mktemp("runs")
    model = PPO("MlpPolicy", gym.make("trendgym/Ski-v0"), n_steps=256, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(1024)
    run_dir = new_run_dir("ppo", "trendgym/Ski-v0", root=root)
    write_config(run_dir, {"algo": "ppo", "env": "trendgym/Ski-v0", "env_kwargs": {"slope": "green"}, "seed": 0})
    atomic_save_model(model, run_dir / "model.zip")
    return run_dir


@pytest.fixture(scope="session")
def train_py_run(tmp_path_factory):
    """A PPO skier written by scripts/train.py itself (its main, in this process): one update of the ppo.yml
    entry, two validations, about 10 s. Unlike :func:`trained_run` it normalises observations (``normalize:
    true``, as the ski entries did before issue 18 and as any other entry may), so its folder holds
    ``vecnormalize.pkl`` and ``best_vecnormalize.pkl`` and its config says so: what the statistics tests need."""
    from helpers import load_script

    root = tmp_path_factory.mktemp("train_py")
    argv = ["--algo", "ppo", "--env", "trendgym/Ski-v0", "--timesteps", "2000", "--eval-freq", "1000"]
    argv += ["--eval-episodes", "2", "--tensorboard-log", str(root), "--quiet"]
    argv += ["--hyperparams", "normalize:true", "policy_kwargs:dict(net_arch=[64, 64])"]
    assert load_script("train").main(argv) == 0
    run_dir = root / "ppo" / "Ski-v0_1"
    assert (run_dir / "vecnormalize.pkl").is_file() and (run_dir / "best_vecnormalize.pkl").is_file()
    return run_dir


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """The compression zoo's cache: the default one when it holds every model (nothing to train), else one temporary
    folder for the whole session, where each model is trained once, when a test first asks for it."""
    from trends.compression.zoo import DEFAULT_CACHE, ZOO

    if all((DEFAULT_CACHE / f"{name}.pt").exists() for name in ZOO):
        return DEFAULT_CACHE
    return tmp_path_factory.mktemp("zoo")


@pytest.fixture(scope="session")
def pool_cache(tmp_path_factory):
    """The ensemble pools' cache: the default one when it holds both pools, else one temporary folder for the
    session, where a pool is trained once (about 40 s each), when a test first asks for it."""
    from trends.ensemble import DEFAULT_CACHE, MEMBERS

    cached = all((DEFAULT_CACHE / d / f"{m.name}.npz").exists() for d, members in MEMBERS.items() for m in members)
    return DEFAULT_CACHE if cached else tmp_path_factory.mktemp("pools")


@pytest.fixture(scope="session")
def digits_pool(pool_cache):
    from trends.ensemble import load_pool

    return load_pool("digits", pool_cache)


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of a throwaway PostgreSQL server on loopback, started once for the session and removed after it
    (agents/benchmarks/postgres.py; `make test` installs Debian's server package when it is missing). A server that
    cannot start fails the tests that need it, with the reason; TRENDGYM_SKIP_POSTGRES=1 skips them instead."""
    from agents.benchmarks.postgres import PostgresServer, PostgresUnavailable

    if os.environ.get("TRENDGYM_SKIP_POSTGRES") == "1":
        pytest.skip("TRENDGYM_SKIP_POSTGRES=1")
    try:
        server = PostgresServer(fsync=False).start()  # no durability against power loss needed: faster
    except PostgresUnavailable as error:
        pytest.fail(f"cannot start a PostgreSQL server for the tests: {error} (TRENDGYM_SKIP_POSTGRES=1 skips them)")
    from trends.automl.evaluator import open_storage

    open_storage(server.url)  # Optuna's tables, made once here rather than raced for by the first workers
    yield server.url
    server.stop()

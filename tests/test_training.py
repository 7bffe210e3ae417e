"""Training from scripts: a short PPO run learns, TensorBoard gets SB3's and the ski env's curves, runs
resume, survive SIGKILL and Ctrl-C, and bad input gets one line, never a traceback."""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml
from stable_baselines3 import PPO
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import envs  # noqa: F401
from agents import seeds
from agents.baselines import RandomPolicy
from agents.runs import load_agent, read_config
from agents.training import ConfigError, TrainConfig, default_vec_env, train
from agents.vec_env import make_vec_env

ROOT = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, str(ROOT / "scripts" / "train.py")]
SKI = "trendgym/Ski-v0"
# 8 PPO updates of the Ski-v0 entry with 32 envs x 128 steps (the entry's 256 x 16 would end no episode in 8
# rollouts, and the tests want finished runs in TensorBoard): about 10 s
BUDGET = 32 * 128 * 8


def short_config(root: Path, **changes) -> TrainConfig:
    settings = dict(
        algo="ppo",
        env=SKI,
        seed=1,
        timesteps=BUDGET,
        n_envs=32,
        hyperparams=["n_steps:128"],
        tensorboard_log=root,
        eval_freq=BUDGET // 2,
        eval_episodes=3,
        save_freq=BUDGET // 2,
        verbose=0,
        n_frames=3,
    )
    return TrainConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    return train(short_config(tmp_path_factory.mktemp("runs")))


def scalars(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def mean_return(policy, courses) -> float:
    env = gym.make(SKI)
    returns = []
    for seed in courses:
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            action, _ = policy.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total, done = total + reward, terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*TRAIN, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_native_vec_env_matches_dummy_step_by_step():
    dummy = make_vec_env(SKI, 3, seed=7, env_kwargs={"slope": "black"}, kind="dummy")
    native = make_vec_env(SKI, 3, seed=7, env_kwargs={"slope": "black"}, kind="native")
    assert np.allclose(dummy.reset(), native.reset())
    rng, episodes = np.random.default_rng(0), 0
    for t in range(1500):
        actions = rng.integers(0, 6, 3) if t % 5 else np.full(3, 2)  # glide now and then, to finish some runs
        obs_d, rew_d, done_d, infos_d = dummy.step(actions)
        obs_n, rew_n, done_n, infos_n = native.step(actions)
        assert np.allclose(obs_d, obs_n, atol=1e-5) and np.allclose(rew_d, rew_n, atol=1e-4)
        assert np.array_equal(done_d, done_n)
        for info_d, info_n in zip(infos_d, infos_n, strict=True):
            assert info_d["TimeLimit.truncated"] == info_n["TimeLimit.truncated"]
            assert info_d["clean"] == info_n["clean"] and info_d["gates_passed"] == info_n["gates_passed"]
            if "terminal_observation" in info_d:
                episodes += 1
                assert np.allclose(info_d["terminal_observation"], info_n["terminal_observation"], atol=1e-5)
                assert info_d["episode"]["l"] == info_n["episode"]["l"]
                assert info_d["episode"]["r"] == pytest.approx(info_n["episode"]["r"], rel=1e-4)
    assert episodes >= 3


def test_short_ppo_run_beats_the_random_policy(short_run):
    agent = load_agent(short_run.run_dir, prefer_best=False)
    courses = seeds.test_seeds(10)
    random = RandomPolicy(gym.make(SKI).action_space, seed=0)
    assert mean_return(agent, courses) > mean_return(random, courses) + 100  # random skis about -130, clean is 165


def test_run_folder_holds_everything(short_run):
    run = short_run.run_dir
    assert run.parent.name == "ppo" and run.name == "Ski-v0_1"
    names = {p.name for p in run.iterdir()}
    assert {"config.yml", "model.zip", "vecnormalize.pkl", "best_model.zip", "best_vecnormalize.pkl"} <= names
    assert "evaluations.npz" in names and any(n.startswith("events.out.tfevents") for n in names)
    assert {p.name for p in (run / "checkpoints").iterdir()} >= {
        f"rl_model_{BUDGET // 2}_steps.zip",
        f"rl_model_vecnormalize_{BUDGET // 2}_steps.pkl",
    }
    config = read_config(run)
    assert config["algo"] == "ppo" and config["env"] == SKI and config["seed"] == 1
    assert config["hyperparams"]["learning_rate"].startswith("lin_")  # as written in ppo.yml
    assert config["hyperparams"]["policy_kwargs"] == "dict(net_arch=[64, 64], features_extractor_class=SkiFeatures)"
    assert {"stable-baselines3", "torch", "gymnasium", "trendgym"} <= set(config["versions"])
    with np.load(run / "evaluations.npz") as data:
        assert data["results"].shape == (2, 3) and list(data["timesteps"]) == [BUDGET // 2, BUDGET]


def test_tensorboard_has_sb3_and_ski_curves(short_run):
    events = scalars(short_run.run_dir)
    tags = set(events.Tags()["scalars"])
    assert {"rollout/ep_rew_mean", "train/value_loss", "train/learning_rate", "eval/mean_reward"} <= tags
    assert {"ski/clean_run_rate", "ski/gates_passed", "ski/gates_missed", "ski/falls", "ski/tree_hits"} <= tags
    assert {"ski/finish_time", "eval/clean_run_rate"} <= tags
    assert "eval/episode" in events.Tags()["images"]
    gates = [e.value for e in events.Scalars("ski/gates_passed")]
    assert all(0 <= g <= 8 for g in gates)  # green has 8 gates


def test_resume_continues_the_step_count(short_run, tmp_path):
    run = tmp_path / "ppo" / "Ski-v0_1"
    shutil.copytree(short_run.run_dir, run)
    before = max(e.step for e in scalars(run).Scalars("rollout/ep_rew_mean"))
    result = train(short_config(tmp_path, resume=str(run), timesteps=BUDGET + 32 * 128 * 2))
    assert result.run_dir == run and result.num_timesteps > short_run.num_timesteps
    steps = [e.step for e in scalars(run).Scalars("rollout/ep_rew_mean")]
    assert max(steps) > before and min(steps) < before  # one curve, continued, not restarted
    assert read_config(run)["resumes"][0]["from"].endswith("model.zip")
    assert load_agent(run, prefer_best=False).model.num_timesteps == result.num_timesteps


def start_training(tmp_path: Path, *extra: str) -> subprocess.Popen:
    args = ["--timesteps", "1e6", "--save-freq", "8192", "--eval-freq", "8192", "--eval-episodes", "2", "--quiet"]
    args += ["--n-envs", "32", "--hyperparams", "n_steps:128"]  # as short_config: a checkpoint every ~0.4 s, not 0.1 s
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    return subprocess.Popen(
        [*TRAIN, *args, "--tensorboard-log", str(tmp_path / "runs"), *extra],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_checkpoint(process: subprocess.Popen, run: Path, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while not list((run / "checkpoints").glob("rl_model_*_steps.zip")):
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "no checkpoint in time"
        time.sleep(0.2)


def test_sigkill_leaves_every_file_readable(tmp_path):
    process = start_training(tmp_path)
    run = tmp_path / "runs" / "ppo" / "Ski-v0_1"
    try:
        wait_for_checkpoint(process, run)
        time.sleep(1.0)  # into the next writes
    finally:
        process.kill()
        process.communicate()
    assert yaml.safe_load((run / "config.yml").read_text())["algo"] == "ppo"
    zips = list(run.rglob("*.zip"))
    assert zips and not list(run.rglob("*.tmp"))  # a kill between write and rename may leave one; here none
    for path in zips:
        assert load_agent(path).model.num_timesteps > 0
    if (run / "evaluations.npz").exists():
        with np.load(run / "evaluations.npz") as data:
            assert len(data["timesteps"]) >= 1
    assert scalars(run).Tags()["scalars"], "the event files read back (what they hold depends on when the kill came)"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_save_the_model_and_say_how_to_resume(tmp_path, signum):
    """Ctrl-C (exit 130) and SIGTERM, what kill, timeout and schedulers send (exit 143), both save and say so."""
    process = start_training(tmp_path)
    run = tmp_path / "runs" / "ppo" / "Ski-v0_1"
    try:
        wait_for_checkpoint(process, run)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr and "Traceback" not in stdout
    assert f"{signal.Signals(signum).name}: stopped at" in stdout and "--resume" in stdout
    assert load_agent(run / "model.zip").model.num_timesteps >= 8192
    assert (run / "vecnormalize.pkl").is_file()


def one_line_error(result_code: int, stderr: str, code: int, message: str) -> None:
    assert result_code == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--env", "trendgym/Skii-v0"], 2, "unknown env"),
        (["--frobnicate"], 2, "unrecognized arguments"),
        (["--algo", "sac"], 2, "SkiContinuous-v0"),
        (["--resume", "corrupt.zip"], 1, "corrupt"),
    ],
)
def test_bad_input_gets_one_line_and_an_exit_code(tmp_path, args, code, message):
    (tmp_path / "corrupt.zip").write_bytes(b"not a zip")
    result = run_script(*args, "--tensorboard-log", str(tmp_path / "runs"), "--quiet", cwd=tmp_path)
    one_line_error(result.returncode, result.stderr, code, message)
    assert not list((tmp_path / "runs").rglob("config.yml"))  # nothing half-made


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--algo", "ppo3"], 2, "invalid choice"),
        (["--timesteps", "many"], 2, "expected a positive integer"),
        (["--env-kwargs", "colour:red"], 2, "colour"),
        (["--env-kwargs", "slope:red"], 2, "red"),
        (["--hyperparams", "learning_rate"], 2, "key:value"),
        (["--hyperparams", "n_step:8"], 2, "no hyperparameter 'n_step'"),
        (["--hyperparams", "seed:3"], 2, "--seed"),
        (["--seed", "600"], 2, "--seed"),
        (["--resume", "runs/ppo/Nothing_1"], 1, "no such run"),
        (["--resume", "elsewhere.zip"], 1, "config.yml"),
        (["--env", "nonexistent_pkg:Foo-v0"], 2, "unknown env"),
        (["--hyperparams", "learning_rate:abc"], 2, "learning_rate must be a number >= 0"),
        (["--hyperparams", "n_steps:0"], 2, "n_steps must be a whole number >= 1"),
        (["--hyperparams", "n_steps:-5"], 2, "n_steps must be a whole number >= 1"),
        (["--hyperparams", "batch_size:0"], 2, "batch_size must be a whole number >= 1"),
        (["--hyperparams", "batch_size:1"], 2, "cannot build a ppo agent"),  # SB3's own check, in one line
        (["--hyperparams", "policy_kwargs:dict(net_arch=[-1])"], 2, "net_arch must list positive layer widths"),
        (["--hyperparams", "gamma:2"], 2, "gamma must be a number >= 0 and <= 1"),
        (["--hyperparams", "ent_coef:-0.1"], 2, "ent_coef must be a number >= 0"),
        (["--save-minutes", "-1"], 2, "expected a number >= 0"),
        (["--device", "nope"], 2, "invalid choice"),
    ],
)
def test_bad_input_in_process(tmp_path, monkeypatch, capsys, args, code, message):
    """The same checks as above without a new Python per case (main() is what the script runs)."""
    spec = importlib.util.spec_from_file_location("train_script", ROOT / "scripts" / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.chdir(tmp_path)
    PPO("MlpPolicy", gym.make(SKI), n_steps=64).save(tmp_path / "elsewhere.zip")  # a zip outside any run
    try:
        result = script.main([*args, "--tensorboard-log", str(tmp_path / "runs"), "--quiet"])
    except SystemExit as e:  # argparse's errors
        result = e.code
    one_line_error(result, capsys.readouterr().err, code, message)
    assert not list((tmp_path / "runs").rglob("config.yml"))


def test_maskableppo_trains_on_the_ski_env_with_its_action_masks(tmp_path):
    config = TrainConfig(
        algo="maskableppo",
        env=SKI,
        timesteps=1024,
        n_envs=4,
        hyperparams=["n_steps:128", "batch_size:128"],
        tensorboard_log=tmp_path,
        eval_freq=0,
        save_freq=0,
        verbose=0,
    )
    result = train(config)
    assert result.num_timesteps >= 1024 and (result.run_dir / "model.zip").exists()


def test_the_pixel_skier_trains_validates_and_saves_with_a_cnn_policy(tmp_path):
    """Its entry normalises rewards but not the images: validation must not normalise them either (it clipped every
    pixel to +-10 and failed on the missing statistics before)."""
    config = TrainConfig(
        algo="ppo",
        env="trendgym/SkiPixels-v0",
        timesteps=512,
        n_envs=2,
        hyperparams=["n_steps:128", "batch_size:128"],
        tensorboard_log=tmp_path,
        eval_freq=256,
        eval_episodes=1,
        save_freq=0,
        verbose=0,
        n_frames=0,
    )
    result = train(config)
    assert (result.run_dir / "model.zip").exists() and (result.run_dir / "best_model.zip").exists()
    evaluations = np.load(result.run_dir / "evaluations.npz")
    assert len(evaluations["results"]) == 2
    loaded = load_agent(result.run_dir)
    assert loaded.model.policy.__class__.__name__ == "ActorCriticCnnPolicy" and not loaded.vecnormalize.norm_obs


def test_a_new_run_can_start_from_a_trained_agent(trained_run, tmp_path):
    """--init-from: the new agent starts with the trained policy (all of it, or its hidden layers only) and the
    trained run's observation statistics, and its config.yml says where it came from."""
    source = load_agent(trained_run)
    for parts in ("all", "body"):
        config = TrainConfig(
            env_kwargs={"slope": "blue"}, timesteps=1, n_envs=1, eval_freq=0, save_freq=0, verbose=0, n_frames=0,
            tensorboard_log=tmp_path / parts, init_from=str(trained_run), init_parts=parts,
            # the trained run's plain MlpPolicy, not the blue entry's SkiFeatures (a different first layer)
            hyperparams=["n_steps:8", "batch_size:8", "learning_rate:0.0", "policy_kwargs:dict(net_arch=[64, 64])"],
        )  # fmt: skip
        result = train(config)
        ours, theirs = result.model.policy.state_dict(), source.model.policy.state_dict()
        assert all((ours[k] == theirs[k]).all() for k in ours if k.startswith("mlp_extractor."))
        heads_equal = all((ours[k] == theirs[k]).all() for k in ours if k.startswith("action_net."))
        assert heads_equal == (parts == "all")
        assert read_config(result.run_dir)["init_from"] == str(trained_run)


def test_init_from_refuses_a_differently_built_policy_and_resume_together(trained_run, tmp_path):
    base = dict(timesteps=1, n_envs=1, eval_freq=0, save_freq=0, verbose=0, n_frames=0, tensorboard_log=tmp_path)
    base["hyperparams"] = ["n_steps:8", "batch_size:8"]
    with pytest.raises(ConfigError, match="differently shaped policy"):
        arch = {**base, "hyperparams": [*base["hyperparams"], "policy_kwargs:dict(net_arch=[8])"]}
        train(TrainConfig(**arch, init_from=str(trained_run)))
    with pytest.raises(ConfigError, match="give one of them"):
        train(TrainConfig(**base, init_from=str(trained_run), resume=str(trained_run)))


def test_the_native_vector_env_is_the_default_only_where_it_can_reset_one_sub_env():
    assert default_vec_env("trendgym/Ski-v0", {"slope": "blue"}) == "native"
    assert default_vec_env("trendgym/Ski-v0", {"obs_type": "pixels"}) == "dummy"
    assert default_vec_env("CartPole-v1", {}) == "dummy"  # gymnasium's CartPoleVectorEnv resets all or none


def load_train_script():
    spec = importlib.util.spec_from_file_location("train_script", ROOT / "scripts" / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_budget_rounding_and_resume_are_said_before_training(tmp_path, monkeypatch, capsys):
    """PPO rounds a budget up to whole rollouts and a resume goes on from a checkpoint: both said in one line."""
    monkeypatch.chdir(tmp_path)
    script = load_train_script()
    root = ["--tensorboard-log", str(tmp_path / "runs"), "--no-eval"]
    assert script.main(["--timesteps", "1000", "--hyperparams", "n_steps:16", "--n-envs", "4", *root]) == 0
    out = capsys.readouterr().out
    first_line = out.splitlines()[0]
    assert first_line == "PPO collects 64 steps at a time (4 envs x 16 n_steps per update): 1,000 steps become 1,024"
    assert "trained 1,024 steps" in out and "watch.py and evaluate.py load model.zip" in out
    assert "1,024/1,024" in out  # the progress bar ends where training does, at 100%
    run = tmp_path / "runs" / "ppo" / "Ski-v0_1"
    assert script.main(["--resume", str(run), "--timesteps", "2048"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"resuming from {run / 'model.zip'} at step 1,024; training on to 2,048"
    assert script.main(["--resume", str(run), "--timesteps", "2048"]) == 0
    assert "already at step 2,048 of 2,048: nothing left to train" in capsys.readouterr().out


def test_an_off_policy_budget_below_learning_starts_is_warned(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["--algo", "sac", "--env", "trendgym/SkiContinuous-v0", "--timesteps", "300", "--n-envs", "1"]
    code = load_train_script().main([*args, "--tensorboard-log", str(tmp_path / "runs"), "--no-eval"])
    assert code == 0
    out = capsys.readouterr().out
    assert "warning: SAC starts learning after learning_starts=" in out and "never updates the policy" in out


@pytest.mark.parametrize("where", ["afile/tb", "/proc/tb"])
def test_a_tensorboard_log_that_cannot_hold_runs_is_one_line(tmp_path, monkeypatch, capsys, where):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("a file in the way")
    code = load_train_script().main(["--tensorboard-log", where, "--quiet"])
    one_line_error(code, capsys.readouterr().err, 1, "cannot make a run folder under")


def test_resuming_with_junk_statistics_is_one_line(short_run, tmp_path, capsys):
    run = tmp_path / "ppo" / "Ski-v0_1"
    shutil.copytree(short_run.run_dir, run)
    (run / "vecnormalize.pkl").write_bytes(b"junk, not a pickle")
    for f in (run / "checkpoints").iterdir():
        f.unlink()  # so model.zip, beside the junk, is what resumes
    code = load_train_script().main(["--resume", str(run), "--quiet"])
    one_line_error(code, capsys.readouterr().err, 1, "is not a readable VecNormalize file")


def test_checkpoints_come_every_few_minutes_whatever_the_step_budget(tmp_path):
    """A kill loses minutes, not the run: --save-minutes checkpoints although --save-freq is the whole budget."""
    config = short_config(tmp_path, save_freq=10**9, save_minutes=0.002, eval_freq=0)  # every 0.12 s
    result = train(config)
    saved = list((result.run_dir / "checkpoints").glob("rl_model_*_steps.zip"))
    assert len(saved) >= 2
    assert read_config(result.run_dir)["save_minutes"] == 0.002


def test_a_run_resumed_from_an_early_checkpoint_draws_no_stretch_twice(short_run, tmp_path):
    """As after a SIGKILL: the events reach BUDGET, the checkpoint BUDGET // 2. The resumed curve follows on."""
    run = tmp_path / "ppo" / "Ski-v0_1"
    shutil.copytree(short_run.run_dir, run)
    (run / "model.zip").unlink()
    checkpoint = run / "checkpoints" / f"rl_model_{BUDGET // 2}_steps.zip"
    train(short_config(tmp_path, resume=str(checkpoint), timesteps=BUDGET + 32 * 128 * 2))
    steps = [e.step for e in scalars(run).Scalars("rollout/ep_rew_mean")]
    assert steps == sorted(steps) and len(steps) == len(set(steps)), steps
    assert max(steps) > BUDGET
    with np.load(run / "evaluations.npz") as data:
        timesteps = list(data["timesteps"])
    assert timesteps == sorted(set(timesteps)) and timesteps[0] == BUDGET // 2


def test_train_env_kwargs_change_the_training_envs_only(tmp_path):
    """A hyper-parameter entry's train_env_kwargs (here more trees) reach the training envs, not the validation."""
    from agents.training import _build_envs, _fresh_plan

    config = short_config(tmp_path, n_envs=2, hyperparams=["train_env_kwargs:dict(trees_per_gate=2.0)"])
    plan = _fresh_plan(config)
    venv, eval_env = _build_envs(plan)
    try:
        assert venv.unwrapped.vector_env.slope.n_trees == 16  # green's 8 gates x 2
        assert eval_env.unwrapped.envs[0].unwrapped.slope.n_trees == 4  # the slope's own
    finally:
        venv.close()
        eval_env.close()
    assert plan.config["hyperparams"]["train_env_kwargs"] == "dict(trees_per_gate=2.0)"  # config.yml records it
    with pytest.raises(ConfigError, match="bad --env-kwargs"):
        _fresh_plan(short_config(tmp_path, hyperparams=["train_env_kwargs:dict(trees_per_gate=-1)"]))

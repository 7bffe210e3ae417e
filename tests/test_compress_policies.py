"""A compressed policy acts as its agent does: fp32 exactly, fp16 and int8 on most states; a run's report and an ONNX
export. Tiny PPO agents trained a few hundred steps on VecNormalize'd envs, so that normalisation is exercised
(action equality does not need a skilled agent)."""

import json
import sys

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from agents.benchmarks.compression_policies import (
    CompressionPoliciesConfig,
    run_compression_policies,
    write_compression_policies_report,
)
from agents.compression.policies import (
    POLICY_FORMATS,
    CompressedPolicy,
    ExportUnavailable,
    action_agreement,
    compress_policy,
    export_onnx,
    policy_report,
)
from agents.compression.teachers import ENV_ID
from agents.runs import (
    LoadedAgent,
    atomic_save_model,
    atomic_save_vecnormalize,
    load_agent,
    new_run_dir,
    read_config,
    write_config,
)
from trends.compression.measure import state_dict_bytes

ENV_IDS = ("trendgym/Ski-v0", "trendgym/SkiContinuous-v0")  # Discrete and Box actions


def _train(env_id: str) -> LoadedAgent:
    venv = VecNormalize(make_vec_env(env_id, n_envs=2, seed=0))
    policy_kwargs = {"net_arch": [64, 64]}  # the teachers' widths
    model = PPO(
        "MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu", policy_kwargs=policy_kwargs
    )
    model.learn(256)
    # PPO initialises the action head with gain 0.01, so an untrained agent's logits are nearly equal and its Box
    # means nearly 0, which any compression matches; scaled up, they spread as a trained agent's do.
    model.policy.action_net.weight.data *= 100
    vecnormalize = model.get_vec_normalize_env()
    vecnormalize.training = False
    return LoadedAgent(model=model, config={"env": env_id}, path=None, vecnormalize=vecnormalize)


def _observations(env_id: str, n: int = 400) -> np.ndarray:
    """Raw observations of a random skier: the states a policy meets, not the ones a Box space's bounds allow."""
    env = gym.make(env_id)
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    observations = []
    for _ in range(n):
        observations.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return np.stack(observations)


@pytest.fixture(scope="module", params=ENV_IDS)
def agent(request) -> LoadedAgent:
    return _train(request.param)


@pytest.fixture(scope="module")
def observations(agent) -> np.ndarray:
    return _observations(agent.config["env"])


@pytest.fixture(scope="module")
def saved_run(agent, tmp_path_factory):
    """The agent in a run folder laid out as scripts/train.py lays it out, statistics beside the model."""
    env_id = agent.config["env"]
    run_dir = new_run_dir("ppo", env_id, root=tmp_path_factory.mktemp("runs"))
    write_config(run_dir, {"algo": "ppo", "env": env_id, "env_kwargs": {"slope": "green"}, "seed": 0})
    atomic_save_model(agent.model, run_dir / "model.zip")
    atomic_save_vecnormalize(agent.vecnormalize, run_dir / "vecnormalize.pkl")
    return run_dir


def test_fp32_acts_exactly_as_the_agent_on_a_batch_and_one_observation_at_a_time(agent, observations):
    policy = compress_policy(agent, "fp32")
    expected, _ = agent.predict(observations, deterministic=True)
    actions, state = policy.predict(observations)
    assert state is None
    assert actions.shape == expected.shape
    np.testing.assert_array_equal(actions, expected)
    for obs in observations[:20]:
        np.testing.assert_array_equal(policy.predict(obs)[0], agent.predict(obs, deterministic=True)[0])


def test_the_normalisation_matters_so_it_is_really_applied(agent, observations):
    """Acting on raw observations would give other actions: the equality above is not a coincidence."""
    raw_policy = CompressedPolicy(compress_policy(agent, "fp32").actor, "fp32", agent.model.policy, None)
    expected, _ = agent.predict(observations, deterministic=True)
    assert not np.array_equal(raw_policy.predict(observations)[0], expected)


@pytest.mark.parametrize("fmt", ["fp16", "int8"])
def test_fp16_and_int8_agree_with_fp32_on_most_observations(agent, observations, fmt):
    policy = compress_policy(agent, fmt)
    expected, _ = compress_policy(agent, "fp32").predict(observations)
    actions, _ = policy.predict(observations)
    assert actions.shape == expected.shape
    assert action_agreement(actions, expected, policy.action_space) >= 0.9
    assert policy.action_space.contains(policy.predict(observations[0])[0])


def test_compressed_checkpoints_are_smaller_and_the_agent_is_left_unchanged(agent, observations):
    before = agent.predict(observations, deterministic=True)[0]
    sizes = {fmt: state_dict_bytes(compress_policy(agent, fmt).actor) for fmt in POLICY_FORMATS}
    assert sizes["int8"] < sizes["fp32"]
    assert sizes["fp16"] < sizes["fp32"]
    np.testing.assert_array_equal(agent.predict(observations, deterministic=True)[0], before)


def test_a_model_just_trained_in_this_process_compresses():
    """Training leaves a distribution in the policy whose tensors refuse deepcopy; compression must not copy it."""
    model = PPO("MlpPolicy", "trendgym/Ski-v0", n_steps=64, batch_size=64, n_epochs=1, seed=1, device="cpu")
    model.learn(64)
    for fmt in ("fp16", "int8"):
        assert compress_policy(model, fmt).predict(_observations("trendgym/Ski-v0", 5))[0].shape == (5,)


def test_bad_requests_are_refused_with_a_reason(agent, observations):
    with pytest.raises(ValueError, match="fp32, fp16, int8"):
        compress_policy(agent, "int4")
    with pytest.raises(ValueError, match="deterministically"):
        compress_policy(agent, "fp16").predict(observations[0], deterministic=False)


def test_policy_report_on_a_run_folder_has_fp32_first_and_the_same_courses_for_each_format(saved_run):
    report = policy_report(saved_run, episodes=3, repeats=2)
    assert [row.name for row in report.rows] == ["fp32", "fp16", "int8"]
    assert report.score_name == "return"
    assert all("clean" in row.note for row in report.rows)
    assert all("agrees" in row.note for row in report.rows[1:])
    assert report.rows[2].size_bytes < report.rows[0].size_bytes
    assert all(row.score_std is not None for row in report.rows)
    assert report.markdown().splitlines()[2].startswith("| fp32 (original")


def test_onnx_export_takes_raw_observations_and_acts_as_the_policy(saved_run, observations, tmp_path):
    pytest.importorskip("onnx")  # the exporter needs it, onnxruntime runs the file
    onnxruntime = pytest.importorskip("onnxruntime")
    agent = load_agent(saved_run, device="cpu")
    policy = compress_policy(agent, "fp32")
    path = export_onnx(agent, tmp_path / "policy.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (outputs,) = session.run(None, {"observation": observations.astype(np.float32)})
    expected, _ = policy.predict(observations)
    space = policy.action_space
    if isinstance(space, gym.spaces.Discrete):
        np.testing.assert_array_equal(outputs.argmax(axis=1), expected)
    else:
        np.testing.assert_allclose(np.clip(outputs, space.low, space.high), expected, atol=1e-5)
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_int8_onnx_export_is_smaller_and_acts_like_the_int8_policy(saved_run, observations, tmp_path):
    pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    agent = load_agent(saved_run, device="cpu")
    fp32, int8 = (
        export_onnx(agent, tmp_path / "fp32.onnx"),
        export_onnx(compress_policy(agent, "int8"), tmp_path / "int8.onnx"),
    )
    assert int8.stat().st_size < fp32.stat().st_size
    session = onnxruntime.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    (outputs,) = session.run(None, {"observation": observations.astype(np.float32)})
    policy = compress_policy(agent, "fp32")
    expected, _ = policy.predict(observations)
    space = policy.action_space
    acted = (
        outputs.argmax(axis=1) if isinstance(space, gym.spaces.Discrete) else np.clip(outputs, space.low, space.high)
    )
    assert action_agreement(acted, expected, space) >= 0.9


def test_onnx_export_refuses_fp16_and_names_the_install_when_onnx_is_missing(agent, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="only fp32 or int8"):
        export_onnx(compress_policy(agent, "fp16"), tmp_path / "fp16.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ExportUnavailable, match=r"needs onnx, not installed here; install it with: \S+ -m pip install"):
        export_onnx(agent, tmp_path / "policy.onnx")
    assert not (tmp_path / "policy.onnx").exists()


def test_the_benchmark_compares_every_format_of_a_teacher_on_the_same_courses(saved_run, tmp_path):
    if read_config(saved_run)["env"] != ENV_ID:
        pytest.skip("the benchmark's teachers ski the Discrete env")
    config = CompressionPoliciesConfig(teacher_seeds=(0,), episodes=2, repeats=2, teacher_root=saved_run.parent.parent)
    messages = []
    result = run_compression_policies(config, messages.append)
    assert [r.format for r in result.runs] == list(POLICY_FORMATS)
    assert result.teachers == {0: str(saved_run)}  # found, not trained
    assert result.runs[0].agreement == 1.0 and result.runs[2].size_bytes < result.runs[0].size_bytes
    written = write_compression_policies_report(result, tmp_path, readme=None)
    markdown = written["markdown"].read_text()
    assert "| int8 |" in markdown and "How to read it" in markdown
    data = json.loads(written["json"].read_text())
    assert [s["format"] for s in data["summary"]] == list(POLICY_FORMATS)
    assert len(messages) == 1

"""Policy distillation (agents.distill): DAgger with a teacher's action distribution as the label, into an SB3
student a tenth of the teacher's size or less, that saves, loads and is evaluated like any trained agent."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from agents.baselines import HeuristicSkier, RandomPolicy
from agents.distill import PolicyDistillConfig, distill_policy, policy_parameters
from agents.evaluation import evaluate
from agents.runs import load_agent
from agents.seeds import test_seeds as evaluation_seeds

SEEDS = evaluation_seeds(10)  # courses never used in training
FAST = PolicyDistillConfig(student_net_arch=(16,), iterations=4, steps_per_iteration=500)


@pytest.fixture(scope="module")
def cartpole_teacher():
    """PPO with RL Zoo's CartPole hyper-parameters, 20k steps (about 8 s): it balances for all 500 steps."""
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = PPO(
        "MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
        learning_rate=1e-3, seed=0, device="cpu",
    )  # fmt: skip
    return model.learn(20_000)


def test_a_tiny_student_balances_like_its_teacher(cartpole_teacher):
    """Measured: teacher 4610 policy parameters, 500.0 mean return; student [16] 114 parameters, 500.0."""
    distilled = distill_policy(cartpole_teacher, "CartPole-v1", None, FAST)
    assert isinstance(distilled.student, PPO)
    assert distilled.teacher_parameters == policy_parameters(cartpole_teacher)
    assert distilled.student_parameters * 10 < distilled.teacher_parameters
    teacher = evaluate(cartpole_teacher, "CartPole-v1", None, SEEDS).mean_return
    student = evaluate(distilled.student, "CartPole-v1", None, SEEDS).mean_return
    random = evaluate(RandomPolicy(gym.make("CartPole-v1").action_space, seed=0), "CartPole-v1", None, SEEDS)
    assert teacher > 400
    assert student >= 0.9 * teacher
    assert student > 5 * random.mean_return
    assert [s.beta for s in distilled.history] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])
    assert [s.states for s in distilled.history] == [500, 1000, 1500, 2000]


def test_the_same_seed_gives_the_same_student(cartpole_teacher):
    config = PolicyDistillConfig(iterations=2, steps_per_iteration=200, epochs=2, seed=4)
    first = distill_policy(cartpole_teacher, "CartPole-v1", None, config).student.policy.state_dict()
    second = distill_policy(cartpole_teacher, "CartPole-v1", None, config).student.policy.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


class NormalizedCartPoleTeacher:
    """A scripted CartPole balancer that, like an agent trained under VecNormalize, acts on normalised
    observations: it undoes the normalisation, so it balances only when it is given normalised ones."""

    def __init__(self, vecnormalize: VecNormalize) -> None:
        self.vecnormalize = vecnormalize

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        raw = self.vecnormalize.unnormalize_obs(np.asarray(observation))
        return (raw[..., 2] + 0.5 * raw[..., 3] > 0).astype(np.int64), None


@pytest.fixture
def frozen_statistics():
    vecnormalize = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]), norm_reward=False)
    vecnormalize.obs_rms.mean = np.array([0.5, -0.3, 0.02, 0.1])
    vecnormalize.obs_rms.var = np.array([0.5, 0.8, 0.01, 0.3])
    vecnormalize.training = False
    return vecnormalize


def test_a_normalised_teacher_gives_a_student_that_keeps_its_statistics(frozen_statistics, tmp_path):
    teacher = NormalizedCartPoleTeacher(frozen_statistics)
    distilled = distill_policy(teacher, "CartPole-v1", None, FAST, vecnormalize=frozen_statistics)
    assert distilled.teacher_parameters is None  # a black box: its actions are regressed
    assert evaluate(distilled, "CartPole-v1", None, SEEDS).mean_return >= 450

    distilled.save(tmp_path / "model.zip")
    loaded = load_agent(tmp_path / "model.zip", device="cpu")
    assert loaded.vecnormalize is not None
    np.testing.assert_allclose(loaded.vecnormalize.obs_rms.var, frozen_statistics.obs_rms.var)
    raw = np.array([[0.1, 0.2, -0.03, 0.4], [-0.5, 0.0, 0.05, -0.2]], dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(raw)[0], distilled.predict(raw)[0])
    assert evaluate(loaded, "CartPole-v1", None, SEEDS[:3]).mean_return >= 450


def test_a_student_imitates_the_heuristic_skier_with_continuous_actions():
    """A Box teacher without a distribution: the student's Gaussian mean regresses its [turn, brake].
    Measured on 10 test courses: heuristic 167.8, student [32] 161.2, random -40.6."""
    env_id = "trendgym/SkiContinuous-v0"
    heuristic = HeuristicSkier(gym.make(env_id).action_space)
    config = PolicyDistillConfig(student_net_arch=(32,), iterations=6, steps_per_iteration=1000)
    distilled = distill_policy(heuristic, env_id, None, config)
    teacher = evaluate(heuristic, env_id, None, SEEDS[:5]).mean_return
    student = evaluate(distilled, env_id, None, SEEDS[:5]).mean_return
    random = evaluate(RandomPolicy(gym.make(env_id).action_space, seed=0), env_id, None, SEEDS[:5]).mean_return
    assert student >= 0.85 * teacher
    assert student - random >= 0.85 * (teacher - random)
    assert all(np.isfinite(s.loss) for s in distilled.history)


def test_beta_decays_to_zero():
    assert [PolicyDistillConfig(iterations=3).beta(i) for i in range(3)] == [1.0, 0.5, 0.0]
    exponential = PolicyDistillConfig(beta_schedule="exponential")
    assert [exponential.beta(i) for i in range(3)] == [1.0, 0.5, 0.25]


@pytest.mark.parametrize("bad", [dict(beta_schedule="cosine"), dict(iterations=0), dict(student_algo="xyz")])
def test_a_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        PolicyDistillConfig(**bad)


def test_a_gaussian_teacher_passes_on_its_means_and_its_spread():
    """A PPO teacher with Box actions: the KL between diagonal Gaussians fits the student's standard deviation
    as well as its means (the teacher need not be good at skiing for that)."""
    env_id = "trendgym/SkiContinuous-v0"
    teacher = PPO("MlpPolicy", gym.make(env_id), seed=0, device="cpu")
    with torch.no_grad():
        teacher.policy.log_std.copy_(torch.tensor([-1.5, -0.5]))  # the student starts at SB3's 0
    config = PolicyDistillConfig(student_net_arch=(32,), iterations=3, steps_per_iteration=500, epochs=20)
    distilled = distill_policy(teacher, env_id, None, config)
    torch.testing.assert_close(distilled.student.policy.log_std.detach(), torch.tensor([-1.5, -0.5]), atol=0.05, rtol=0)
    states = torch.as_tensor(np.stack([gym.make(env_id).reset(seed=s)[0] for s in SEEDS]))
    with torch.no_grad():
        teacher_mean = teacher.policy.get_distribution(states).distribution.mean
        student_mean = distilled.student.policy.get_distribution(states).distribution.mean
    assert (teacher_mean - student_mean).abs().max() < 0.1
    assert distilled.history[-1].loss < distilled.history[0].loss

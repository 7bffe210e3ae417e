"""The search envs: Gymnasium and SB3 accept them, masks forbid exactly the invalid options, the reward is the
backend's number, the search's history persists across episodes as documented, the renderer draws, and MaskablePPO
learns to find better architectures than random search on the shipped table."""

import math
import zlib

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from envs.automl.charts import Series, draw_chart
from envs.automl.search_env import SearchEnv
from trends.automl.evaluator import Evaluation, config_key
from trends.automl.space import Categorical, SearchSpace, get_space
from trends.automl.table import config_json, table_paths
from trends.models import NetworkSpec
from trends.training import TrainRecipe

ARCH_ID, HPARAM_ID = "trendgym/ArchitectureSearch-v0", "trendgym/HyperparamSearch-v0"
SPACE_OF = {ARCH_ID: "mnist1d-arch", HPARAM_ID: "digits-hparams"}
HAS_ARCH_TABLE = all(p.exists() for p in table_paths("mnist1d-arch"))
needs_arch_table = pytest.mark.skipif(not HAS_ARCH_TABLE, reason="the mnist1d-arch table is not built yet")


class FakeBackend:
    """A Backend with made-up, deterministic scores (no table, no training) that records every call, as a search
    runner's backend does."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.calls: list[dict] = []

    def evaluate(self, config) -> Evaluation:
        self.calls.append(dict(config))
        text = config_json(self.space.canonical(config))
        u = zlib.crc32(text.encode()) / 2**32  # in [0, 1), a fixed function of the configuration
        spec, recipe = self.space.build(config)
        return Evaluation(
            key=config_key(self.space.dataset, spec, recipe),
            dataset=self.space.dataset,
            spec=spec,
            recipe=recipe,
            val_accuracy=0.5 + 0.4 * u,
            test_accuracy=0.48 + 0.4 * u,
            val_loss=1.0 - u,
            epochs=5,
            seconds=1.5,
            parameters=1000 + round(1e5 * u),
            flops=20_000,
            diverged=False,
        )


def make(env_id: str = ARCH_ID, **kwargs) -> gym.Env:
    """The registered env over a FakeBackend of its space (the real table when asked for)."""
    kwargs.setdefault("backend", FakeBackend(get_space(SPACE_OF[env_id])))
    return gym.make(env_id, **kwargs)


def random_actions(rng: np.random.Generator, n: int, high: int) -> list[int]:
    return rng.integers(0, high, size=n).tolist()


def masked_choice(env: gym.Env, rng: np.random.Generator) -> int:
    return int(rng.choice(np.flatnonzero(env.unwrapped.action_masks())))


# ---- API -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", [ARCH_ID, HPARAM_ID])
def test_gymnasium_and_sb3_accept_the_env(env_id):
    gym_check_env(make(env_id).unwrapped, skip_render_check=True)
    sb3_check_env(make(env_id).unwrapped)
    gym_check_env(make(env_id, render_mode="rgb_array").unwrapped)


@needs_arch_table
def test_gymnasium_and_sb3_accept_the_env_on_the_shipped_table():
    env = gym.make(ARCH_ID)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped)


@pytest.mark.parametrize("env_id", [ARCH_ID, HPARAM_ID])
def test_spaces_and_metadata(env_id):
    env = make(env_id).unwrapped
    space = env.space
    n = sum(space.n_options(i) for i in range(len(space.decisions))) + len(space.decisions) + space.max_options + 3
    assert env.observation_space.shape == (n,)
    assert env.action_space.n == space.max_options
    assert env.metadata["metrics_namespace"] == "search"
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert info["evaluations"] == 0 and math.isnan(info["best_val_accuracy"])


def test_same_seed_same_search():
    def rollout(seed: int) -> tuple[list, list]:
        env = make()
        rng = np.random.default_rng(7)
        observations, rewards = [env.reset(seed=seed)[0]], []
        for action in random_actions(rng, 200, env.action_space.n):  # invalid actions included
            obs, reward, terminated, _, _ = env.step(action)
            observations.append(obs)
            rewards.append(reward)
            if terminated:
                observations.append(env.reset()[0])
        return observations, rewards

    (obs_a, rew_a), (obs_b, rew_b) = rollout(3), rollout(3)
    assert sum(r > 0 for r in rew_a) >= 15  # several episodes
    np.testing.assert_array_equal(np.array(obs_a), np.array(obs_b))
    assert rew_a == rew_b


# ---- actions and masks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", [ARCH_ID, HPARAM_ID])
def test_masks_forbid_exactly_the_invalid_options(env_id):
    env = make(env_id).unwrapped
    space = env.space
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(600):
        partial = env.config
        decision = space.next_decision(partial)
        expected = np.zeros(space.max_options, dtype=bool)
        expected[: space.n_options(decision)] = space.valid_options(partial)
        mask = env.action_masks()
        np.testing.assert_array_equal(mask, expected)
        assert env.decision == decision
        obs = env._observation()
        np.testing.assert_array_equal(obs[env._mask_offset : env._search_offset], mask)
        assert obs[env._decision_offset + decision] == 1.0
        assert obs[env._decision_offset : env._mask_offset].sum() == 1.0
        _, _, terminated, _, info = env.step(masked_choice(env, rng))
        assert not info["invalid_action"]
        if terminated:
            assert space.is_valid(info["config"])
            assert not env.action_masks().any()
            env.reset()


def test_observation_encodes_the_choices():
    env = make().unwrapped
    env.reset(seed=0)
    for action in (0, 1, 0):  # layer1 conv, width 32, kernel 3
        env.step(action)
    obs = env._observation()
    offsets = env._choice_offsets
    assert obs[offsets[0] : offsets[0] + 2].tolist() == [1.0, 0.0]
    assert obs[offsets[1] : offsets[1] + 2].tolist() == [0.0, 1.0]
    assert obs[offsets[2] : offsets[2] + 2].tolist() == [1.0, 0.0]
    assert obs[offsets[3] : env._decision_offset].sum() == 0.0  # layer 2 not chosen yet
    assert obs[env._decision_offset + 3] == 1.0  # the current decision is layer2_type


def test_invalid_actions_map_to_allowed_options():
    env = make().unwrapped
    env.reset(seed=0)
    _, _, _, _, info = env.step(2)  # layer1_type has two options: 2 -> allowed[2 % 2] = conv
    assert info["invalid_action"] and env.config == {"layer1_type": "conv"}
    env.reset()
    env.step(1)  # dense
    env.step(0)  # width 16
    assert env.action_masks().tolist() == [False, True, True]  # no convolution after a dense layer
    _, _, _, _, info = env.step(0)  # masked conv -> allowed[0 % 2] = dense
    assert info["invalid_action"] and env.config["layer2_type"] == "dense"
    _, _, _, _, info = env.step(np.int64(1))  # numpy integers are actions too
    assert not info["invalid_action"] and env.config["layer2_width"] == 32


@pytest.mark.parametrize("action", [-1, 3, 1.0, True, "1", None, np.array([1]), np.array(0.5)])
def test_actions_outside_the_action_space_raise(action):
    env = make().unwrapped
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match=r"integer in 0\.\.2"):
        env.step(action)


def test_stepping_needs_a_reset():
    env = make().unwrapped
    with pytest.raises(ResetNeeded):
        env.step(0)
    with pytest.raises(ResetNeeded):
        env.action_masks()
    env.reset(seed=0)
    for action in (1, 0, 2):  # dense 16, stop
        _, _, terminated, _, _ = env.step(action)
    assert terminated
    with pytest.raises(ResetNeeded, match="complete"):
        env.step(0)


# ---- rewards and the search's history --------------------------------------------------------------------


@pytest.mark.parametrize("size_penalty", [0.0, 0.05])
def test_reward_is_the_backends_score(size_penalty):
    backend = FakeBackend(get_space("mnist1d-arch"))
    env = make(backend=backend, size_penalty=size_penalty).unwrapped
    rng = np.random.default_rng(1)
    env.reset(seed=0)
    episodes = 0
    while episodes < 20:
        _, reward, terminated, truncated, info = env.step(masked_choice(env, rng))
        assert not truncated
        if not terminated:
            assert reward == 0.0 and "val_accuracy" not in info
            continue
        record = backend.evaluate(info["config"])
        assert backend.calls[-2] == info["config"]
        assert info["val_accuracy"] == record.val_accuracy and info["test_accuracy"] == record.test_accuracy
        assert info["parameters"] == record.parameters and info["flops"] == record.flops
        assert reward == pytest.approx(record.val_accuracy - size_penalty * math.log10(record.parameters))
        assert set(env.metadata["episode_metrics"]) <= set(info)
        episodes += 1
        env.reset()
    assert len(backend.calls) == 2 * episodes  # the env asked once per episode, this test once more


@needs_arch_table
def test_reward_is_the_table_value():
    from trends.automl.table import load_table

    table = load_table("mnist1d-arch")
    env = gym.make(ARCH_ID).unwrapped
    env.reset(seed=0)
    for action in (0, 1, 1, 1, 1, 1, 2):  # conv 32 k5, dense 32 + skip, stop
        _, reward, terminated, _, info = env.step(action)
        assert not info["invalid_action"]
    assert terminated
    assert info["config"] == {
        "layer1_type": "conv",
        "layer1_width": 32,
        "layer1_kernel": 5,
        "layer2_type": "dense",
        "layer2_width": 32,
        "layer2_skip": True,
        "layer3_type": "stop",
    }
    assert reward == table.lookup(info["config"]).val_accuracy


def play_episodes(env: gym.Env, n: int, rng: np.random.Generator, seed: int | None = None) -> list[dict]:
    """Complete ``n`` configurations with random masked actions; the infos of their last steps."""
    infos = []
    env.reset(seed=seed)
    while len(infos) < n:
        _, _, terminated, _, info = env.step(masked_choice(env, rng))
        if terminated:
            infos.append(info)
            if len(infos) < n:
                env.reset()
    return infos


def test_the_search_persists_across_episodes():
    env = make().unwrapped
    infos = play_episodes(env, 30, np.random.default_rng(0), seed=0)
    assert [i["evaluations"] for i in infos] == list(range(1, 31))
    vals = [i["val_accuracy"] for i in infos]
    best = int(np.argmax(vals))
    assert infos[-1]["best_val_accuracy"] == max(vals)
    assert infos[-1]["best_test_accuracy"] == infos[best]["test_accuracy"]
    assert [i["best_val_accuracy"] for i in infos] == np.maximum.accumulate(vals).tolist()
    assert infos[-1]["distinct_evaluations"] == len({config_json(i["config"]) for i in infos})
    assert [r.val_accuracy for r in env.history] == vals

    obs, info = env.reset()  # continues the search
    assert info["evaluations"] == 30 and info["best_val_accuracy"] == max(vals)
    assert obs[env._search_offset] == pytest.approx(max(vals))
    assert obs[env._search_offset + 1] == pytest.approx(vals[-1])
    assert obs[env._search_offset + 2] == pytest.approx(math.log10(31) / 4)

    obs, info = env.reset(options={"new_search": True})
    assert info["evaluations"] == 0 and env.history == []
    assert obs[env._search_offset :].tolist() == [0.0, 0.0, 0.0]
    play_episodes(env, 3, np.random.default_rng(0))
    _, info = env.reset(seed=5)  # a seed starts a new search too
    assert info["evaluations"] == 0 and info["distinct_evaluations"] == 0


def test_a_failed_evaluation_leaves_the_env_where_it_was():
    class FailingOnce(FakeBackend):
        def evaluate(self, config):
            if not self.calls:
                self.calls.append(None)
                raise RuntimeError("budget spent")
            return super().evaluate(config)

    env = SearchEnv(backend=FailingOnce(get_space("mnist1d-arch")))
    env.reset(seed=0)
    env.step(1)  # dense
    env.step(0)  # width 16
    with pytest.raises(RuntimeError, match="budget"):
        env.step(2)  # stop: completes, and the backend raises
    assert env.decision == 3 and env.history == []  # still choosing layer2_type
    _, _, terminated, _, info = env.step(2)
    assert terminated and info["evaluations"] == 1


def test_unknown_reset_options_raise():
    env = make().unwrapped
    with pytest.raises(ValueError, match="new_search"):
        env.reset(options={"new_serch": True})


# ---- arguments ---------------------------------------------------------------------------------------------


def test_bad_arguments_raise_one_line_errors():
    arch = get_space("mnist1d-arch")
    cases = [
        ({"space": "cifar-arch"}, "unknown search space"),
        ({"space": 3}, "space must be"),
        ({"backend": "oracle"}, "unknown backend"),
        ({"backend": object()}, "backend must be"),
        ({"backend": FakeBackend(get_space("digits-hparams"))}, "scores space 'digits-hparams'"),
        ({"backend": FakeBackend(arch), "size_penalty": -0.1}, "size_penalty"),
        ({"backend": FakeBackend(arch), "size_penalty": math.nan}, "size_penalty"),
        ({"backend": FakeBackend(arch), "size_penalty": "big"}, "size_penalty"),
        ({"backend": FakeBackend(arch), "render_mode": "ascii"}, "render_mode"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            SearchEnv(**kwargs)
        assert len(str(error.value).splitlines()) == 1


def test_the_train_backend_is_built_from_its_arguments(tmp_path):
    from trends.automl.backends import TrainBackend

    env = SearchEnv(space="digits-hparams", backend="train", storage=tmp_path / "cache.db")
    assert isinstance(env.backend, TrainBackend) and env.backend.space is get_space("digits-hparams")


def test_a_space_without_a_table_is_a_one_line_error():
    with pytest.raises(ValueError, match="tiny") as error:
        SearchEnv(space=tiny_space(), backend="table")
    assert len(str(error.value).splitlines()) == 1


def tiny_space() -> SearchSpace:
    decisions = (
        Categorical("kind", ("a", "b")),
        Categorical("size", (1, 2, 3), allows=lambda c, o: not (c["kind"] == "b" and o == 3)),
        Categorical("extra", (False, True), applies=lambda c: c["kind"] == "a"),
    )
    return SearchSpace("tiny", "digits", decisions, lambda c: (NetworkSpec(), TrainRecipe()))


def test_a_custom_space_and_backend():
    space = tiny_space()
    backend = FakeBackend(space)
    env = SearchEnv(space=space, backend=backend)
    assert env.action_space.n == 3 and env.observation_space.shape == (2 + 3 + 2 + 3 + 3 + 3,)
    configs = set()
    rng = np.random.default_rng(0)
    for info in play_episodes(env, 60, rng, seed=0):
        configs.add(config_json(info["config"]))
    assert len(configs) == space.size == 8  # kind a: 3 sizes x 2 extras; kind b: 2 sizes
    assert env.history[-1].config == backend.calls[-1]


# ---- rendering ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", [ARCH_ID, HPARAM_ID])
def test_rgb_array_frames_show_the_search(env_id):
    env = make(env_id, render_mode="rgb_array")
    rng = np.random.default_rng(0)
    play_episodes(env, 12, rng, seed=0)
    env.reset()
    first = env.render()
    assert first.shape == (540, 960, 3) and first.dtype == np.uint8
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 20  # not blank
    env.step(masked_choice(env, rng))
    second = env.render()
    assert not np.array_equal(first, second)
    env.close()
    env.close()


def test_human_mode_opens_a_window_and_closes_twice():
    env = make(render_mode="human")
    env.reset(seed=0)
    env.step(0)
    env.close()
    env.close()


def test_render_without_a_mode_warns():
    env = make().unwrapped
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


def test_charts_skip_bad_points_and_degenerate_ranges():
    import pygame

    surface = pygame.Surface((320, 200))
    rect = pygame.Rect(0, 0, 320, 200)
    cases = [
        [],
        [Series([], [], (255, 0, 0), "empty")],
        [Series([1.0], [0.5], (255, 0, 0), "one point", "dots")],
        [Series([0, 1, 2], [0.3, 0.3, 0.3], (0, 0, 255), "flat", "step")],
        [Series([0, 1, 2, 3], [1.0, math.nan, math.inf, 0.1], (0, 128, 0), "holes")],
    ]
    for series in cases:
        draw_chart(surface, rect, series, title="t", x_label="x", y_label="y")
    draw_chart(surface, rect, [Series([1, 2, 3], [1e-3, 0.0, 10.0], (0, 0, 0))], log_y=True, y_range=(1e-4, 100.0))
    with pytest.raises(ValueError, match="style"):
        draw_chart(surface, rect, [Series([1, 2], [1, 2], (0, 0, 0), style="bars")])


# ---- learning ------------------------------------------------------------------------------------------------


LEARNING_STEPS = 6144  # about 750 architectures, 3-6 s on one core
LEARNING_EPISODES = 100  # configurations compared: the agent's sampled ones vs a random controller's
LEARNING_MARGIN = 0.15  # validation accuracy the agent must gain over random search, on average


def sampled_configs_mean(model, env: gym.Env, n: int) -> float:
    """Mean validation accuracy of ``n`` configurations the trained policy samples (not its greedy choice: the
    distribution it has learned is what a search draws from)."""
    obs, _ = env.reset(seed=0)
    vals: list[float] = []
    while len(vals) < n:
        action, _ = model.predict(obs, action_masks=env.unwrapped.action_masks(), deterministic=False)
        obs, _, terminated, _, info = env.step(action)
        if terminated:
            vals.append(info["val_accuracy"])
            obs, _ = env.reset()
    return float(np.mean(vals))


@needs_arch_table
def test_maskable_ppo_beats_random_search_on_the_table():
    from sb3_contrib import MaskablePPO

    from trends.automl.table import load_table

    table, space = load_table("mnist1d-arch"), get_space("mnist1d-arch")
    rng = np.random.default_rng(0)
    random_mean = np.mean([table.lookup(space.sample(rng)).val_accuracy for _ in range(LEARNING_EPISODES)])
    model = MaskablePPO(
        "MlpPolicy",
        gym.make(ARCH_ID),
        n_steps=256,
        batch_size=64,
        n_epochs=4,
        learning_rate=3e-3,
        gamma=1.0,  # one reward at the end of a short episode: no reason to discount it
        ent_coef=0.03,  # keeps the controller exploring until it has found the good corner of the space
        seed=0,
        device="cpu",
    )
    model.learn(LEARNING_STEPS)
    agent_mean = sampled_configs_mean(model, gym.make(ARCH_ID), LEARNING_EPISODES)
    assert agent_mean > random_mean + LEARNING_MARGIN, (agent_mean, random_mean)


def test_the_registered_hyperparameter_env_trains_for_real_and_caches(tmp_path):
    from trends.automl.evaluator import Evaluator

    env = gym.make(HPARAM_ID, storage=tmp_path / "cache.db")
    env.reset(seed=0)
    for action in (3, 4, 0):  # learning rate 3e-3, batch 256, no hidden layer: a linear model on digits
        _, reward, terminated, _, info = env.step(action)
    assert terminated and info["config"] == {"learning_rate": 3e-3, "batch_size": 256, "hidden_layers": 0}
    assert 0.8 < reward == info["val_accuracy"] < 1.0  # a linear model learns digits well
    assert len(Evaluator(tmp_path / "cache.db")) == 1

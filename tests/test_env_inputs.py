"""Hostile input to every registered env (issue 17): constructor arguments, reset options and actions of the wrong
type, out of range or absurdly large are each answered at once by a specific exception whose one-line message names
what was wrong, and whatever an env accepts leaves it working, its observations in the observation space.

The table tests pin the cases found by hand; the hypothesis tests throw random values of every type at every
argument, option and action of every ``trendgym/`` id (and the native vector env) on small instances built once.
"""

import inspect
import math
import os
import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import load_env_creator
from gymnasium.error import InvalidAction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from synthetic_search import TARGETS, MatchingBackend

import envs  # noqa: F401
from envs.automl.lr_control_env import Instance
from envs.checks import ArgumentTypeError, check_bool, check_float, check_int, check_options, shown
from envs.ski.vector_env import SkiVectorEnv
from trends.automl.space import get_space
from trends.compression.zoo import ZOO, TrainedModel
from trends.data import load_dataset
from trends.ensemble.pool import MemberPool
from trends.models import LayerSpec, NetworkSpec, build_network

TRENDGYM_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("trendgym/"))
VECTOR = "trendgym/Ski-v0 (native vector env)"
# What a clean answer to bad input is; AssertionError, IndexError, KeyError, AttributeError, MemoryError... are not.
CLEAN = (ValueError, TypeError, gym.error.Error)
# Examples per env and test: 3 x 15 tests x 12 examples run in about 10 s on a loaded two-core machine;
# TRENDGYM_FUZZ_EXAMPLES=500 searches harder.
EXAMPLES = int(os.environ.get("TRENDGYM_FUZZ_EXAMPLES", "12"))


# ---- small instances of every env ------------------------------------------------------------------------------


def tiny_pool(members: int = 3, samples: int = 40, classes: int = 3) -> MemberPool:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(classes), (members, samples)).astype(np.float32)
    labels = rng.integers(0, classes, samples)
    return MemberPool("tiny", tuple(f"m{i}" for i in range(members)), proba, proba.copy(), labels, labels.copy())


def untrained_mlp() -> TrainedModel:
    """digits-mlp's architecture, untrained: all PruningEnv needs of a model, without training one."""
    entry = ZOO["digits-mlp"]
    dataset = load_dataset(entry.dataset)
    model = build_network(entry.spec, dataset.sample_shape, dataset.n_classes).eval()
    return TrainedModel("digits-mlp", dataset, entry.spec, model, 0.1, 0.1)


TINY_INSTANCE = Instance("digits", NetworkSpec((LayerSpec("dense", 8),)), batch_size=512, seed=0)


@pytest.fixture(scope="module")
def cheap(cache_dir) -> dict[str, dict]:
    """Per env id, the arguments of a small instance that costs milliseconds to build and step (the registered
    defaults train networks or build pools); the fuzzed argument replaces one of them."""
    return {
        "trendgym/Ski-v0": {},
        "trendgym/SkiContinuous-v0": {},
        "trendgym/SkiPixels-v0": {},
        "trendgym/ArchitectureSearch-v0": {
            "backend": MatchingBackend(get_space("mnist1d-arch"), TARGETS["mnist1d-arch"])
        },
        "trendgym/HyperparamSearch-v0": {
            "backend": MatchingBackend(get_space("digits-hparams"), TARGETS["digits-hparams"])
        },
        "trendgym/LearningRateControl-v0": {"instance_set": [TINY_INSTANCE], "epochs": 3},
        "trendgym/Pruning-v0": {"model": untrained_mlp()},
        "trendgym/Quantization-v0": {"model": "digits-mlp", "cache_dir": cache_dir},
        "trendgym/EnsembleWeighting-v0": {"pool": tiny_pool(), "max_members": 3},
        "trendgym/FeatureEngineering-v0": {"max_features": 8, "budget": 3, "folds": 2},
    }


def creator(env_id: str):
    """What makes the env of ``env_id``: its entry point with the registered arguments, and the given ones (no
    wrappers: the env's own checks are what is tested, not gymnasium's passive checker). Importing the entry point
    may take seconds (scikit-learn, torch); making the env should not."""
    if env_id == VECTOR:
        return lambda **kwargs: SkiVectorEnv(**{"num_envs": 2, **kwargs})
    spec = gym.spec(env_id)
    entry_point = load_env_creator(spec.entry_point)
    return lambda **kwargs: entry_point(**{**spec.kwargs, **kwargs})


def make(env_id: str, **kwargs):
    return creator(env_id)(**kwargs)


def test_every_registered_env_has_a_small_instance(cheap):
    assert sorted(cheap) == TRENDGYM_IDS


# ---- the shared checks ----------------------------------------------------------------------------------------


def test_the_checks_tell_numbers_bools_and_strings_apart():
    assert check_int("n", np.int64(3), 1, 5) == 3 and check_int("n", None, 1, or_none=True) is None
    for bad in (True, 1.0, "3", 3 + 0j, np.float64(3), None):
        with pytest.raises(ArgumentTypeError, match=r"n must be a whole number in 1\.\.5"):
            check_int("n", bad, 1, 5)
    assert check_float("x", np.float32(0.5), 0, 1) == 0.5 and check_float("x", 1, 0, 1) == 1.0
    for bad in (True, "0.5", 0.5j, [0.5]):
        with pytest.raises(ArgumentTypeError, match=r"x must be a finite number in \(0, 1\]"):
            check_float("x", bad, 0, 1, low_open=True)
    for bad in (0, math.nan, math.inf, 10**400):
        with pytest.raises(ValueError, match=r"x must be a finite number in \(0, 1\]"):
            check_float("x", bad, 0, 1, low_open=True)
    assert check_bool("flag", np.bool_(False)) is False
    for bad in ("False", 0, None):
        with pytest.raises(ArgumentTypeError, match="flag must be True or False"):
            check_bool("flag", bad)
    assert check_options(None, ("a",), "Env") == {}
    with pytest.raises(ValueError, match=r"unknown reset option\(s\) \['b'\]; the only option is 'a'"):
        check_options({"b": 1}, ("a",), "Env")


def test_a_bad_value_is_shown_on_one_short_line():
    assert shown(np.zeros((50, 50))).startswith("array([[0., 0.,") and len(shown(np.zeros((50, 50)))) == 60
    assert shown(10**5000) == "<int of 16610 bits>"
    assert "\n" not in shown(np.eye(3))


# ---- the cases of the issue ------------------------------------------------------------------------------------

BAD_ARGUMENTS = [
    # env id, arguments, exception, what the message names
    ("trendgym/Ski-v0", {"continuous": "False"}, ArgumentTypeError, "continuous must be True or False"),
    ("trendgym/Ski-v0", {"continuous": 1}, ArgumentTypeError, "continuous"),
    ("trendgym/Ski-v0", {"slope": ["green"]}, ArgumentTypeError, "slope"),
    ("trendgym/Ski-v0", {"course_seed": True}, ArgumentTypeError, "course_seed"),
    ("trendgym/Ski-v0", {"course_seed": 1.7}, ArgumentTypeError, "course_seed"),
    ("trendgym/Ski-v0", {"frame_skip": True}, ArgumentTypeError, "frame_skip"),
    ("trendgym/Ski-v0", {"frame_skip": "12"}, ArgumentTypeError, "frame_skip"),
    ("trendgym/Ski-v0", {"frame_skip": 10**6}, ValueError, "frame_skip must be a whole number in 1..1000"),
    ("trendgym/SkiPixels-v0", {"frame_stack": 10**6}, ValueError, "frame_stack must be a whole number in 1..64"),
    ("trendgym/SkiPixels-v0", {"frame_stack": 2.0}, ArgumentTypeError, "frame_stack"),
    ("trendgym/Ski-v0", {"render_mode": np.array(["human"])}, ArgumentTypeError, "render_mode"),
    (VECTOR, {"num_envs": 10**7}, ValueError, "num_envs must be a whole number in 1..65536"),
    (VECTOR, {"num_envs": True}, ArgumentTypeError, "num_envs"),
    (VECTOR, {"continuous": "no"}, ArgumentTypeError, "continuous"),
    (VECTOR, {"max_episode_steps": 10**9}, ValueError, "max_episode_steps"),
    ("trendgym/ArchitectureSearch-v0", {"size_penalty": 1j}, ArgumentTypeError, "size_penalty"),
    ("trendgym/ArchitectureSearch-v0", {"size_penalty": True}, ArgumentTypeError, "size_penalty"),
    ("trendgym/HyperparamSearch-v0", {"device": 0}, ArgumentTypeError, "device"),
    ("trendgym/LearningRateControl-v0", {"epochs": 10**6}, ValueError, "epochs must be a whole number in 1..1000"),
    ("trendgym/LearningRateControl-v0", {"epochs": True}, ArgumentTypeError, "epochs"),
    ("trendgym/LearningRateControl-v0", {"discrete": "yes"}, ArgumentTypeError, "discrete"),
    ("trendgym/LearningRateControl-v0", {"crash_penalty": "-1"}, ArgumentTypeError, "crash_penalty"),
    ("trendgym/LearningRateControl-v0", {"instance_set": ["train"]}, ArgumentTypeError, "instance_set"),
    ("trendgym/LearningRateControl-v0", {"instance_set": "train "}, ValueError, "instance_set"),
    ("trendgym/Pruning-v0", {"preserve": "0.5"}, ArgumentTypeError, "preserve"),
    ("trendgym/Pruning-v0", {"min_preserve": math.nan}, ValueError, "min_preserve"),
    ("trendgym/Pruning-v0", {"cache_dir": 3}, ArgumentTypeError, "cache_dir"),
    ("trendgym/Quantization-v0", {"fix_first_last": "x"}, ArgumentTypeError, "fix_first_last must be True or False"),
    ("trendgym/Quantization-v0", {"continuous": 0}, ArgumentTypeError, "continuous"),
    ("trendgym/Quantization-v0", {"size_budget": True}, ArgumentTypeError, "size_budget"),
    ("trendgym/Quantization-v0", {"model": None}, ArgumentTypeError, "model"),
    ("trendgym/EnsembleWeighting-v0", {"max_members": 10**6}, ValueError, "max_members"),
    ("trendgym/EnsembleWeighting-v0", {"max_members": True}, ArgumentTypeError, "max_members"),
    ("trendgym/EnsembleWeighting-v0", {"start": None}, ArgumentTypeError, "start"),
    ("trendgym/FeatureEngineering-v0", {"max_features": 1000}, ValueError, "max_features must be a whole number"),
    ("trendgym/FeatureEngineering-v0", {"max_features": 10000}, ValueError, "max_features"),
    ("trendgym/FeatureEngineering-v0", {"max_features": 8.0}, ArgumentTypeError, "max_features"),
    ("trendgym/FeatureEngineering-v0", {"budget": 10**9}, ValueError, "budget"),
    ("trendgym/FeatureEngineering-v0", {"folds": 10**4}, ValueError, "folds"),
    ("trendgym/FeatureEngineering-v0", {"feature_cost": -math.inf}, ValueError, "feature_cost"),
]


BAD_INSTANCES = [
    ({"batch_size": True}, ArgumentTypeError, "batch_size"),
    ({"batch_size": 2**20}, ValueError, "batch_size"),
    ({"seed": 1.5}, ArgumentTypeError, "seed"),
    ({"dataset": None}, ArgumentTypeError, "dataset"),
    ({"network": NetworkSpec((LayerSpec("dense", 10**6),))}, ValueError, "width"),
    ({"network": NetworkSpec((LayerSpec("dense", 64),) * 100)}, ValueError, "number of layers"),
    ({"network": NetworkSpec((LayerSpec("conv", 512, kernel=99),))}, ValueError, "kernel"),
    ({"network": NetworkSpec((LayerSpec("conv", 1024, kernel=15),) * 2)}, ValueError, "weights"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_INSTANCES)
def test_bad_instances_are_refused_before_their_network_is_built(kwargs, error, message):
    with pytest.raises(error, match=message) as raised:
        Instance(**{"dataset": "digits", "network": NetworkSpec(), **kwargs})
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(("env_id", "kwargs", "error", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_refused_at_once(cheap, env_id, kwargs, error, message):
    create = creator(env_id)
    start = time.perf_counter()
    with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")) as raised:
        create(**{**cheap.get(env_id, {}), **kwargs})
    assert time.perf_counter() - start < 1.0  # before anything is allocated, trained or scored
    assert "\n" not in str(raised.value)


def test_a_type_error_is_a_value_error_too_for_the_callers_that_catch_those():
    with pytest.raises(ValueError, match="continuous"):
        gym.make("trendgym/Ski-v0", continuous="no")
    with pytest.raises(TypeError, match="continuous"):
        gym.make("trendgym/Ski-v0", continuous="no")


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("trendgym/Ski-v0", {"frame_skip": np.int64(2), "course_seed": np.uint32(7), "continuous": np.bool_(True)}),
        ("trendgym/SkiPixels-v0", {"frame_stack": np.int8(3)}),
        (VECTOR, {"num_envs": np.int32(3)}),
        ("trendgym/FeatureEngineering-v0", {"max_features": np.int16(6), "feature_cost": np.float32(0.01)}),
        ("trendgym/EnsembleWeighting-v0", {"max_members": np.int64(2)}),
        ("trendgym/Pruning-v0", {"preserve": 1, "min_preserve": np.float32(0.5)}),
    ],
)
def test_numpy_numbers_pass_where_numbers_are_expected(cheap, env_id, kwargs):
    env = make(env_id, **{**cheap.get(env_id, {}), **kwargs})
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


BAD_OPTIONS = [
    ("trendgym/Ski-v0", {"course": 1}, ValueError, "unknown reset option"),
    ("trendgym/Ski-v0", {"course_seed": 1.7}, ArgumentTypeError, "course_seed"),
    ("trendgym/Ski-v0", {"course_seed": "12"}, ArgumentTypeError, "course_seed"),
    ("trendgym/Ski-v0", {"course_seed": -3}, ValueError, "course_seed"),
    ("trendgym/Ski-v0", "course_seed", ArgumentTypeError, "options must be a dict"),
    (VECTOR, {"course_seed": 1}, ValueError, "unknown reset option"),
    ("trendgym/ArchitectureSearch-v0", {"new_search": "no"}, ArgumentTypeError, "new_search"),
    ("trendgym/LearningRateControl-v0", {"instance": 1.0}, ArgumentTypeError, "instance"),
    ("trendgym/LearningRateControl-v0", {"instance": True}, ArgumentTypeError, "instance"),
    ("trendgym/LearningRateControl-v0", {"instance": 5}, ValueError, "instance"),
    ("trendgym/Pruning-v0", {"anything": None}, ValueError, "PruningEnv takes none"),
    ("trendgym/Quantization-v0", {"new_search": 1}, ArgumentTypeError, "new_search"),
    ("trendgym/EnsembleWeighting-v0", [("a", 1)], ArgumentTypeError, "options"),
    ("trendgym/FeatureEngineering-v0", {"budget": 2}, ValueError, "unknown reset option"),
]


@pytest.mark.parametrize(("env_id", "options", "error", "message"), BAD_OPTIONS)
def test_bad_reset_options_are_refused(cheap, env_id, options, error, message):
    env = make(env_id, **cheap.get(env_id, {}))
    with pytest.raises(error, match=message) as raised:
        env.reset(seed=0, options=options)
    assert "\n" not in str(raised.value)


def test_a_course_seed_option_still_picks_the_course():
    env = make("trendgym/Ski-v0")
    env.reset(seed=0, options={"course_seed": np.int64(12)})
    first = env.unwrapped.course
    env.reset(seed=1, options={"course_seed": 12})
    np.testing.assert_array_equal(env.unwrapped.course.tree_x, first.tree_x)
    env.reset(seed=1, options={"course_seed": 13})
    assert not np.array_equal(env.unwrapped.course.tree_x, first.tree_x)


COMPLEX_AND_CO = [np.array([0.5 + 1j]), [0.5 + 0j], 0.5 + 1j, "0.5", ["0.5"], True, np.array([True]), [None]]
BAD_ACTIONS = [
    *(("trendgym/Pruning-v0", {}, a) for a in COMPLEX_AND_CO),
    *(("trendgym/LearningRateControl-v0", {}, a) for a in COMPLEX_AND_CO),
    *(("trendgym/Quantization-v0", {"continuous": True}, a) for a in COMPLEX_AND_CO),
    *(("trendgym/EnsembleWeighting-v0", {"continuous": True}, a) for a in ([1, 1, 1j], np.ones(3, bool), "abc")),
    ("trendgym/LearningRateControl-v0", {"discrete": True}, True),
    ("trendgym/LearningRateControl-v0", {"discrete": True}, 2.0),
    ("trendgym/SkiContinuous-v0", {}, np.array([True, False])),
    ("trendgym/SkiContinuous-v0", {}, ["1", "0"]),
    ("trendgym/SkiContinuous-v0", {}, [1, 0, 0]),
    ("trendgym/SkiContinuous-v0", {}, np.array([1, 0], dtype=object)),
    ("trendgym/SkiContinuous-v0", {}, [[1, 0]]),
    ("trendgym/Ski-v0", {}, np.bool_(True)),
    ("trendgym/Ski-v0", {}, np.array([2])),  # as Discrete.contains: a one-element array is not an integer
    ("trendgym/ArchitectureSearch-v0", {}, np.uint8(200)),
    ("trendgym/FeatureEngineering-v0", {}, np.array([[1]])),
    (VECTOR, {"continuous": True}, np.full((2, 2), "a")),
    (VECTOR, {"continuous": True}, np.array([[0, np.nan], [0, 0]])),
    (VECTOR, {}, np.array([True, False])),
]


@pytest.mark.parametrize(("env_id", "kwargs", "action"), BAD_ACTIONS)
def test_bad_actions_raise_invalid_action(cheap, env_id, kwargs, action):
    env = make(env_id, **{**cheap.get(env_id, {}), **kwargs})
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match="action") as raised:
        env.step(action)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "action", [np.array([1, 0]), [1, 0], (1.0, -1.0), np.array([1, 0], dtype=np.int8), np.array([0.5, 0], np.float16)]
)
def test_a_box_action_of_any_real_dtype_or_a_list_is_accepted(action):
    """Any array of real numbers of the space's shape, as a Box env takes it; lists and tuples too, as
    ``Box.contains`` casts them."""
    env = make("trendgym/SkiContinuous-v0")
    env.reset(seed=0)
    obs, *_ = env.step(action)
    assert env.observation_space.contains(obs)
    vec = make(VECTOR, continuous=True)
    vec.reset(seed=0)
    vec.step(np.array([action, action]))


def test_finite_box_actions_outside_the_bounds_are_clipped_where_documented(cheap):
    pruning = make("trendgym/Pruning-v0", **cheap["trendgym/Pruning-v0"])
    pruning.reset(seed=0)
    assert pruning.step(np.array([-5]))[4]["requested"] == pytest.approx(pruning.min_preserve)  # an int array too
    ski = make("trendgym/SkiContinuous-v0")  # the ski env documents no clipping: out of range is refused
    ski.reset(seed=0)
    with pytest.raises(InvalidAction, match=r"\[turn, brake\] in \[-1, 1\]"):
        ski.step(np.array([2, 0]))


# ---- fuzzing ---------------------------------------------------------------------------------------------------

NUMPY_ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.int64, np.int8, np.uint8, np.float32, np.float64, np.bool_, np.complex64, "U2"]),
    shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3),
)
HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10, max_value=70),
    st.integers(),
    st.sampled_from([2**31, 2**63, -(2**63), 10**6, 10**30]),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.5, 1.7, -0.0, 1e300]),
    st.complex_numbers(max_magnitude=1e3),
    st.text(max_size=6),
    st.sampled_from(["", "False", "no", "12", "1.7", "green", "black", "pixels", "vector", "rgb_array", "l2", "gbm"]),
    st.lists(st.one_of(st.integers(-3, 8), st.floats(-2, 2), st.booleans()), max_size=4),
    st.tuples(st.floats(-1, 1), st.floats(-1, 1)),
    NUMPY_ARRAYS,
    st.sampled_from([np.int64(3), np.uint8(1), np.float32(0.5), np.bool_(True), np.float64(np.nan)]),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
# Arguments naming a folder or a storage are fuzzed with values that cannot be one: a random string would be a real
# folder where a zoo model is trained and written (or a storage URL).
NOT_A_PATH = HOSTILE.filter(lambda v: v is not None and not isinstance(v, str))


def constructor_arguments(env_id: str) -> tuple[str, ...]:
    """Every argument the env's constructor takes: all of them are fuzzed, a new one included."""
    target = SkiVectorEnv if env_id == VECTOR else load_env_creator(gym.spec(env_id).entry_point)
    return tuple(inspect.signature(target).parameters)


# Sizes that are valid but cost seconds to build (65536 skiers are 440 MB) are left out of the fuzzing.
AFFORDABLE = {"num_envs": HOSTILE.filter(lambda v: not (isinstance(v, (int, np.integer)) and 64 < v <= 2**16))}
PATH_ARGUMENTS = {"cache_dir", "storage"}
FUZZ_IDS = [*TRENDGYM_IDS, VECTOR]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_good_observation(env, obs) -> None:
    assert env.observation_space.contains(obs), f"observation outside {env.observation_space}"
    if np.issubdtype(np.asarray(obs).dtype, np.floating):
        assert np.all(np.isfinite(obs))


def assert_clean(error: BaseException, names: tuple[str, ...]) -> None:
    """A clean answer: one of the specific exceptions, on one line, naming what was wrong."""
    assert isinstance(error, CLEAN), f"{type(error).__name__}: {error}"
    assert "\n" not in str(error), str(error)
    assert any(name in str(error) for name in names), f"{error} names none of {names}"


def step(env, action) -> None:
    """One step of ``action``, which the env took: the observation and reward must be good; an ended episode is
    reset (the native vector env resets its skiers itself)."""
    obs, reward, terminated, truncated, _ = env.step(action)
    assert_good_observation(env, obs)
    assert np.all(np.isfinite(reward))
    if (np.any(terminated) or np.any(truncated)) and not isinstance(env, SkiVectorEnv):
        assert_good_observation(env, env.reset()[0])


@pytest.mark.parametrize("env_id", FUZZ_IDS)
@FUZZ
@given(data=st.data())
def test_fuzzed_constructor_arguments(cheap, env_id, data):
    name = data.draw(st.sampled_from(constructor_arguments(env_id)), label="argument")
    value = data.draw(NOT_A_PATH if name in PATH_ARGUMENTS else AFFORDABLE.get(name, HOSTILE), label="value")
    try:
        env = make(env_id, **{**cheap.get(env_id, {}), name: value})
    except Exception as error:
        assert_clean(error, (name,))
        return
    try:
        obs, _ = env.reset(seed=0)
        assert_good_observation(env, obs)
        env.action_space.seed(0)
        for _ in range(2):
            step(env, env.action_space.sample())
    finally:
        env.close()


# The envs whose other action space is an argument away (the ski envs have an id each).
OTHER_ACTIONS = {
    "trendgym/LearningRateControl-v0": {"discrete": True},
    "trendgym/Quantization-v0": {"continuous": True},
    "trendgym/EnsembleWeighting-v0": {"continuous": True},
    VECTOR: {"continuous": True},
}


@pytest.fixture(scope="module")
def built(cheap) -> dict:
    """One small instance of every env (and of its other action space), reused by the option and action fuzzing."""
    built = {env_id: make(env_id, **cheap.get(env_id, {})) for env_id in FUZZ_IDS}
    for env_id, kwargs in OTHER_ACTIONS.items():
        built[f"{env_id} (other actions)"] = make(env_id, **{**cheap.get(env_id, {}), **kwargs})
    yield built
    for env in built.values():
        env.close()


OPTION_KEYS = st.sampled_from(["course_seed", "new_search", "instance", "seed", "x"])


@pytest.mark.parametrize("env_id", FUZZ_IDS)
@FUZZ
@given(data=st.data())
def test_fuzzed_reset_options(built, env_id, data):
    env = built[env_id]
    options = data.draw(st.one_of(HOSTILE, st.dictionaries(OPTION_KEYS, HOSTILE, max_size=2)), label="options")
    seed = data.draw(st.one_of(st.none(), st.integers(0, 2**32), HOSTILE), label="seed")
    try:
        obs, _ = env.reset(seed=seed, options=options)
    except Exception as error:
        assert_clean(error, ("option", "seed", "Seed"))  # gymnasium's own seed check says "Seed must be..."
        env.reset(seed=0)  # a refused reset leaves an env that resets
        return
    assert_good_observation(env, obs)


def near_misses(space: gym.Space) -> st.SearchStrategy:
    """Valid actions, and valid ones a little off: another dtype, another shape, just out of range."""
    sample = st.integers(0, 2**32 - 1).map(lambda seed: (space.seed(seed), space.sample())[1])
    return st.one_of(
        sample,
        sample.map(lambda a: np.asarray(a).astype(np.float64)),
        sample.map(lambda a: np.asarray(a).tolist()),
        sample.map(lambda a: np.asarray(a)[None]),
        sample.map(lambda a: np.asarray(a) + 1),
        sample.map(lambda a: -np.asarray(a) - 1),
    )


ACTION_ENVS = [*FUZZ_IDS, *(f"{env_id} (other actions)" for env_id in OTHER_ACTIONS)]


@pytest.mark.parametrize("env_id", ACTION_ENVS)
@FUZZ
@given(data=st.data())
def test_fuzzed_actions(built, env_id, data):
    env = built[env_id]
    env.reset(seed=0)
    actions = data.draw(st.lists(st.one_of(HOSTILE, near_misses(env.action_space)), min_size=1, max_size=3))
    for action in actions:
        try:
            step(env, action)
        except AssertionError:
            raise
        except Exception as error:
            assert_clean(error, ("action",))

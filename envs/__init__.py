"""trendgym's Gymnasium environments; importing this package registers every ``trendgym/`` id.

``gym.make("envs:trendgym/Ski-v0")`` imports it for you.
"""

from gymnasium.envs.registration import register, registry

SKI_MAX_STEPS = 1000  # 100 s of skiing
SKI_CLEAN_GREEN = 160.0  # return of a clean run of the green slope (see SkiEnv's docstring)
# The skier as a CNN sees it (ALE's pixel Atari ids are the same game as the RAM ones): two 84x84 frames 0.4 s apart,
# a decision every 4 physics steps. With one frame every pixel agent tried settled on braking all the way down.
SKI_PIXELS_KWARGS = {"obs_type": "pixels", "frame_skip": 4, "frame_stack": 2}


def _register(env_id: str, **kwargs) -> None:
    if env_id not in registry:  # importing twice (e.g. under two names) must not warn
        register(id=env_id, **kwargs)


_register(
    "trendgym/Ski-v0",
    entry_point="envs.ski.ski_env:SkiEnv",
    vector_entry_point="envs.ski.vector_env:SkiVectorEnv",
    max_episode_steps=SKI_MAX_STEPS,
    reward_threshold=SKI_CLEAN_GREEN,
)
_register(
    "trendgym/SkiPixels-v0",
    entry_point="envs.ski.ski_env:SkiEnv",
    max_episode_steps=SKI_MAX_STEPS // SKI_PIXELS_KWARGS["frame_skip"],
    reward_threshold=SKI_CLEAN_GREEN,
    kwargs=SKI_PIXELS_KWARGS,
)
_register(
    "trendgym/SkiContinuous-v0",
    entry_point="envs.ski.ski_env:SkiEnv",
    vector_entry_point="envs.ski.vector_env:SkiVectorEnv",
    max_episode_steps=SKI_MAX_STEPS,
    reward_threshold=SKI_CLEAN_GREEN,
    kwargs={"continuous": True},
)

# AutoML (issue 4). An episode of a search env is one configuration, a handful of decisions, so no time limit is
# needed; the learning-rate env ends after its fixed number of epochs.
_register(
    "trendgym/ArchitectureSearch-v0",
    entry_point="envs.automl.search_env:SearchEnv",
    kwargs={"space": "mnist1d-arch"},
)
# digits-hparams has no table (its 3625 configurations include wide convolutions that take minutes each to train on
# a CPU), so this env trains for real by default; every result lands in the evaluator's cache.
_register(
    "trendgym/HyperparamSearch-v0",
    entry_point="envs.automl.search_env:SearchEnv",
    kwargs={"space": "digits-hparams", "backend": "train"},
)
_register("trendgym/LearningRateControl-v0", entry_point="envs.automl.lr_control_env:LearningRateControlEnv")

# Model compression (issue 5): one step per layer of a trained network, after AMC and HAQ.
_register("trendgym/Pruning-v0", entry_point="envs.compression.pruning_env:PruningEnv")
_register("trendgym/Quantization-v0", entry_point="envs.compression.quantization_env:QuantizationEnv")

# Ensembles (issue 6): Caruana's ensemble selection as a decision process; episodes end by themselves.
_register("trendgym/EnsembleWeighting-v0", entry_point="envs.ensemble.weighting_env:EnsembleWeightingEnv")

# Feature engineering (issue 8): Khurana et al.'s transformation graph as a decision process; an episode ends at its
# stop or when its transformation budget is spent.
_register("trendgym/FeatureEngineering-v0", entry_point="envs.features.feature_env:FeatureEngineeringEnv")

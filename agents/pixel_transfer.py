"""Pre-trained vision for pixel agents: ski frames to pre-train an encoder on, and the hook that puts a pre-trained
encoder (:mod:`trends.transfer.vision`) into a Stable-Baselines3 ``CnnPolicy`` before PPO trains it.

Frames come with the state vector the same env would observe, so one collection serves both pretexts: the
supervised one regresses the state, the contrastive one ignores it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

import envs  # noqa: F401  (registers trendgym/Ski-v0)
from agents.baselines import HeuristicSkier
from envs.rendering import FrameStack
from envs.ski.rendering import SkiRenderer
from envs.ski.ski_env import PIXEL_SIZE

SKI_ID = "trendgym/Ski-v0"
RANDOM_SHARE = 0.3  # share of steps where the collector acts at random instead of as the heuristic skier


def collect_frames(
    n: int,
    seed: int,
    slope: str = "green",
    random_share: float = RANDOM_SHARE,
    frame_skip: int = 1,
    frame_stack: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs of (observation, state): uint8 ``(n, 84, 84, 3 * frame_stack)`` frames exactly as
    ``obs_type="pixels"`` with this ``frame_skip`` and ``frame_stack`` shows them, and float32 ``(n, 19)`` state
    vectors as ``obs_type="vector"`` observes the same moment.

    The heuristic skier drives, so frames go down whole courses past gates and trees as a good skier sees them;
    a random action on ``random_share`` of the steps adds the off-line, fallen and crossing views a learning
    agent will meet. One vector-obs env is stepped and its scene drawn by the renderer the pixels env uses,
    stacked by the same :class:`~envs.rendering.FrameStack`.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    env = gym.make(SKI_ID, slope=slope, frame_skip=frame_skip)
    renderer = SkiRenderer(PIXEL_SIZE, PIXEL_SIZE, hud=False)
    stack = FrameStack(frame_stack)
    skier, rng = HeuristicSkier(env.action_space), np.random.default_rng(seed)
    frames = np.empty((n, PIXEL_SIZE, PIXEL_SIZE, 3 * stack.k), dtype=np.uint8)
    states = np.empty((n, *env.observation_space.shape), dtype=np.float32)
    try:
        state, _ = env.reset(seed=seed)
        frame = stack.reset(renderer.rgb_array(env.unwrapped.scene()))
        for i in range(n):
            frames[i], states[i] = frame, state
            action = rng.integers(env.action_space.n) if rng.random() < random_share else skier.predict(state)[0]
            state, _, terminated, truncated, _ = env.step(int(action))
            if terminated or truncated:
                state, _ = env.reset()
                frame = stack.reset(renderer.rgb_array(env.unwrapped.scene()))
            else:
                frame = stack.push(renderer.rgb_array(env.unwrapped.scene()))
    finally:
        renderer.close()
        env.close()
    return frames, states


def encoder_init(
    encoder_state_dict: Mapping[str, torch.Tensor], freeze: bool
) -> Callable[[BaseAlgorithm, VecEnv], None]:
    """A ``train_to_target`` ``init`` hook: load a :class:`~trends.transfer.vision.NatureEncoder`'s weights into the
    new model's ``NatureCNN`` features extractor, and with ``freeze`` stop them from learning.

    Freezing sets ``requires_grad=False``: the policy's optimizer was built over all its parameters, but a
    parameter without a gradient is skipped by Adam's step and by the gradient clipping, so only the policy and
    value heads learn. The extractor must be shared by actor and critic (SB3's default for PPO), so one load
    serves both.
    """

    def init(model: BaseAlgorithm, venv: VecEnv) -> None:
        policy = model.policy
        if not getattr(policy, "share_features_extractor", True):
            raise ValueError("encoder_init expects a policy whose actor and critic share the features extractor")
        extractor = policy.features_extractor
        extractor.load_state_dict(dict(encoder_state_dict))
        if freeze:
            extractor.requires_grad_(False)

    return init

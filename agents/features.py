"""Features extractors for Stable-Baselines3 policies on trendgym's envs (``policy_kwargs`` of a hyper-parameter
entry: ``dict(features_extractor_class=SkiFeatures)``).

:class:`SkiFeatures` gives a policy the skier's surroundings in the skier's own frame. The ski observation holds
everything a skier needs (``envs.ski.heuristic`` reads nothing else), but on scales made for the whole view:
a tree 1 m to the side of the skier's line and one 3 m to the side differ by 0.1 in ``dx / 20 m``, and whether
the line hits it is a product of that offset with the heading. Issue 18 found PPO's skier gliding straight into
trees it had seen for four seconds; the extractor adds, for each observed tree and the next gate, the offset
across and the distance along the skis' line in metres, on the few-metre scale at which a tree is hit or missed.
It is part of the agent, not of the env: the policy computes it from the observation, so the trained model
acts on ``Ski-v0`` as it is. It reads raw observations: train it without observation normalisation
(``normalize: "dict(norm_obs=False, norm_reward=True)"``; the ski observation is scaled to [-1, 1] already).
"""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from envs.ski.physics import FALL_ACCEL, MAX_SPEED, MAX_TURN_RATE, N_TREES_SEEN, OBS_SIZE, SENSE_X, SENSE_Y
from envs.ski.ski_env import SOFT_TURN

_SIN, _COS = 1, 2  # of the heading, in the observation
_GATE = 9  # dx, dy of the next gate
_TREES = 13  # dx, dy of the first of the trees observed
NEAR_ACROSS = 3.0  # m: the scale of an offset across the skis' line (a hit is closer than 1.2 m)
NEAR_ALONG = 10.0  # m: the scale of a distance along it (about one second at green speeds)
GATE_ACROSS = 5.0  # m
CLAMP = 3.0  # features beyond three scales ahead or aside are all "far"
SPEED_MARGIN = 2.0  # m/s: the scale of the margins below the speeds at which a turn makes the skier fall
HARD_TURN_FALLS = FALL_ACCEL / MAX_TURN_RATE  # m/s, 10.7: above this a hard turn falls
GENTLE_TURN_FALLS = FALL_ACCEL / (SOFT_TURN * MAX_TURN_RATE)  # m/s, 21.4


class SkiFeatures(BaseFeaturesExtractor):
    """The ski observation (``Ski-v0``'s 19 numbers) followed by, for each of the three trees: the offset across
    and the distance along the skis' line, and dx, dy; and for the next gate its offset across and distance
    along the line. Each in units of the scales above, clamped to +-3.

    :param fall_margins: also how far the speed is below the speeds at which a hard and a gentle turn make the
        skier fall (10.7 and 21.4 m/s, the heuristic's ``safe_rate``), in units of 2 m/s. On blue, where a
        PPO skier fell in 61% of its runs without them, they raised its clean runs (see
        docs/notes/issue18-learned-skier.md); on green they changed nothing, on black (one seed) the skier did
        worse with them.
    """

    def __init__(self, observation_space: gym.spaces.Box, fall_margins: bool = False) -> None:
        if observation_space.shape != (OBS_SIZE,):
            shape = observation_space.shape
            raise ValueError(f"SkiFeatures reads the ski env's vector observation ({OBS_SIZE},), got {shape}")
        self.fall_margins = fall_margins
        super().__init__(observation_space, features_dim=OBS_SIZE + 4 * N_TREES_SEEN + 2 + 2 * fall_margins)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        sin, cos = observations[:, _SIN : _SIN + 1], observations[:, _COS : _COS + 1]
        trees = observations[:, _TREES : _TREES + 2 * N_TREES_SEEN]
        tree_x, tree_y = trees[:, 0::2] * SENSE_X, trees[:, 1::2] * SENSE_Y
        gate_x, gate_y = observations[:, _GATE : _GATE + 1] * SENSE_X, observations[:, _GATE + 1 : _GATE + 2] * SENSE_Y
        near = (
            (tree_x * cos - tree_y * sin) / NEAR_ACROSS,
            (tree_x * sin + tree_y * cos) / NEAR_ALONG,
            tree_x / NEAR_ACROSS,
            tree_y / NEAR_ALONG,
            (gate_x * cos - gate_y * sin) / GATE_ACROSS,
            (gate_x * sin + gate_y * cos) / NEAR_ALONG,
        )
        if self.fall_margins:
            speed = observations[:, 0:1] * MAX_SPEED
            near += ((HARD_TURN_FALLS - speed) / SPEED_MARGIN, (GENTLE_TURN_FALLS - speed) / SPEED_MARGIN)
        return torch.cat([observations, *(part.clamp(-CLAMP, CLAMP) for part in near)], dim=1)

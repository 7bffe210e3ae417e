"""A hand-written skier, as LunarLander has its ``heuristic``: a baseline to beat and a check that the
courses can be skied. It reads only the observation vector, as an agent would."""

from __future__ import annotations

import math

import numpy as np

from envs.ski.physics import FALL_ACCEL, MAX_SPEED, MAX_TURN_RATE, SENSE_X, SENSE_Y
from envs.ski.ski_env import SOFT_TURN

CRUISE_SPEED = 10.0  # m/s the heuristic skier holds before it brakes
CRUISE_SPEED_DISCRETE = 8.0  # m/s: slow enough for a hard turn (which is all or nothing) not to fall
TREE_LOOKAHEAD = 14.0  # m down the slope within which a tree on the line is avoided
TREE_CLEARANCE = 3.0  # m to keep beside a tree
AIM_INSIDE = 0.5  # share of the half gate width to aim inside the gate centre


def heuristic(obs: np.ndarray, continuous: bool = False) -> int | np.ndarray:
    """Steer for the middle of the next gate, go round trees on the way, brake when too fast.

    Returns a Discrete action for ``Ski-v0`` or ``[turn, brake]`` for ``SkiContinuous-v0``.
    """
    speed = float(obs[0]) * MAX_SPEED
    heading = math.atan2(float(obs[1]), float(obs[2]))
    target_x, target_y = float(obs[9]) * SENSE_X, max(float(obs[10]) * SENSE_Y, 1.0)
    for k in range(3):
        tree_x, tree_y = float(obs[13 + 2 * k]) * SENSE_X, float(obs[14 + 2 * k]) * SENSE_Y
        if 0.0 < tree_y < min(TREE_LOOKAHEAD, target_y):
            line_x = target_x * tree_y / target_y  # where the straight line to the gate passes the tree
            if abs(line_x - tree_x) < TREE_CLEARANCE:
                side = 1.0 if line_x >= tree_x else -1.0
                target_x, target_y = tree_x + side * TREE_CLEARANCE * 1.5, tree_y
                break
    wanted = max(-1.2, min(1.2, math.atan2(target_x, target_y)))
    error = wanted - heading
    safe_rate = FALL_ACCEL / max(speed, 1e-6) / MAX_TURN_RATE * 0.9  # sharpest turn that will not fall
    turn = max(-1.0, min(1.0, error * 3.0))
    turn = max(-safe_rate, min(safe_rate, turn))
    if continuous:
        return np.array([turn, 1.0 if speed > CRUISE_SPEED else -1.0], dtype=np.float32)
    if speed > CRUISE_SPEED_DISCRETE and abs(error) < 0.15:
        return 5
    if abs(turn) < SOFT_TURN / 2:
        return 2
    hard = abs(turn) > (1.0 + SOFT_TURN) / 2 and safe_rate >= 1.0 / 0.9
    if turn < 0:
        return 0 if hard else 1
    return 4 if hard else 3

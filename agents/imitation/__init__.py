"""Imitation learning on the project's envs: GAIL (:mod:`.gail`, with its discriminator in :mod:`.discriminator`)
and behaviour cloning (:mod:`.cloning`), from an expert's demonstrations (:mod:`.demonstrations`)."""

from agents.imitation.cloning import behaviour_cloning
from agents.imitation.demonstrations import Demonstrations, collect_demonstrations
from agents.imitation.discriminator import (
    Discriminator,
    DiscriminatorCallback,
    DiscriminatorStats,
    GailRewardVecEnv,
    gail_reward,
    make_discriminator,
    train_discriminator,
)
from agents.imitation.gail import GailConfig, GailResult, train_gail

__all__ = [
    "Demonstrations",
    "Discriminator",
    "DiscriminatorCallback",
    "DiscriminatorStats",
    "GailConfig",
    "GailResult",
    "GailRewardVecEnv",
    "behaviour_cloning",
    "collect_demonstrations",
    "gail_reward",
    "make_discriminator",
    "train_discriminator",
    "train_gail",
]

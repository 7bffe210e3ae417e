"""Transfer between agents: start a new training from what a trained agent learned, the way a skier who has
mastered the green slope starts on the blue one. The new agent takes the trained policy's weights (``parts="all"``)
or only its body, the hidden layers that turn observations into features (``parts="body"``, the "feature extractor"
transfer: the action and value heads start afresh), and the trained run's observation statistics, without which
its weights would see differently scaled inputs.

Used by ``train.py --init-from RUN`` and the curriculum benchmark (green to blue).
"""

from __future__ import annotations

import copy

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agents.runs import LoadedAgent

TRANSFER_PARTS = ("all", "body")
BODY_PREFIXES = ("features_extractor.", "pi_features_extractor.", "vf_features_extractor.", "mlp_extractor.")


def transfer_policy(source: LoadedAgent, model: BaseAlgorithm, venv: VecEnv | None = None, parts: str = "all") -> int:
    """Copy ``source``'s policy weights (``parts``: ``"all"`` or ``"body"``) into ``model``, and its observation
    statistics into ``venv`` when both normalise observations. Returns the number of tensors copied. ValueError
    (one line) when the two policies are not built alike."""
    if parts not in TRANSFER_PARTS:
        raise ValueError(f"unknown transfer parts {parts!r}; choose one of {', '.join(TRANSFER_PARTS)}")
    if type(source.model.policy) is not type(model.policy):
        raise ValueError(
            f"cannot transfer a {type(source.model.policy).__name__} into a {type(model.policy).__name__}; "
            "train the new agent with the same algorithm"
        )
    theirs, ours = source.model.policy.state_dict(), model.policy.state_dict()
    wanted = [k for k in ours if parts == "all" or k.startswith(BODY_PREFIXES)]
    mismatched = [k for k in wanted if k not in theirs or theirs[k].shape != ours[k].shape]
    if mismatched:
        raise ValueError(
            f"{source.path} has a differently shaped policy ({mismatched[0]} and {len(mismatched) - 1} more "
            "differ): give the new agent the same net_arch and observation space"
        )
    model.policy.load_state_dict({**ours, **{k: theirs[k] for k in wanted}})
    normalizer = _vecnormalize(venv)
    if normalizer is not None and source.vecnormalize is not None:
        normalizer.obs_rms = copy.deepcopy(source.vecnormalize.obs_rms)
    return len(wanted)


def _vecnormalize(venv: VecEnv | None) -> VecNormalize | None:
    while venv is not None and not isinstance(venv, VecNormalize):
        venv = getattr(venv, "venv", None)
    return venv

"""Search spaces of the tuner, one per algorithm, after RL Baselines3 Zoo's ``hyperparams_opt.py``.

A space samples on top of the algorithm's YAML entry for the env (:func:`agents.hyperparams.load_hyperparams`):
the settings of the training (``n_envs``, ``normalize``, ``policy``, ``n_timesteps``...) and any key the space
does not sample are kept, and every key the user fixed on the command line (``--hyperparams key:value``) stays as
the user fixed it. What comes out is a raw entry in the YAML's own notation (``lin_`` schedules, ``policy_kwargs``
as a ``dict(...)`` string), so the best one can be written as a block that ``agents/hyperparams/<algo>.yml``
accepts as it is.

Departures from RL Zoo, each for a reason:

* PPO's mini-batch is sampled as a number of mini-batches per rollout (CleanRL's ``num_minibatches``), not as a
  size that is clipped to the rollout: ``batch_size = n_envs * n_steps / n_minibatches`` always divides the
  rollout, and the gradient steps per update (``n_epochs * n_minibatches``) stay bounded whatever ``n_envs`` is
  (trendgym's ski entry trains 32 envs at once); a mini-batch is never smaller than 64 samples.
* A learning rate keeps the form of the entry it tunes: ``lin_5e-4`` is tuned as ``lin_<sampled>``, a constant as
  a constant, so a tuned block and the hand-tuned one differ in values, not in kind.
* The ranges are RL Zoo's, trimmed where a value could only waste a short trial (learning rates above 1e-2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from agents.hyperparams import FEATURES_EXTRACTORS, SAFE_NAMES, SCHEDULE_PREFIX, parse_kwargs_string

Space = Callable[["Sampler"], dict[str, Any]]

NET_ARCHS = {"tiny": [64], "small": [64, 64], "medium": [256, 256], "big": [400, 300]}
ACTIVATIONS = {"tanh": "nn.Tanh", "relu": "nn.ReLU"}
GAMMAS = [0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999]
GAE_LAMBDAS = [0.8, 0.9, 0.92, 0.95, 0.98, 0.99, 1.0]
MIN_BATCH = 64  # the smallest PPO/TRPO mini-batch sampled


class Sampler:
    """A trial's view of one entry: ``suggest_*`` ask the trial unless the user fixed the key, in which case the
    entry's value is returned and nothing is asked (so the fixed key is not a dimension of the search)."""

    def __init__(self, trial: optuna.Trial, entry: dict[str, Any], fixed: set[str], n_envs: int) -> None:
        self.trial = trial
        self.entry = entry
        self.fixed = fixed
        self.n_envs = n_envs

    def categorical(self, name: str, choices: list[Any]) -> Any:
        if name in self.fixed:
            return self.entry[name]
        return self.trial.suggest_categorical(name, choices)

    def log_float(self, name: str, low: float, high: float) -> float:
        if name in self.fixed:
            return self.entry[name]
        return self.trial.suggest_float(name, low, high, log=True)

    def uniform(self, name: str, low: float, high: float) -> float:
        if name in self.fixed:
            return self.entry[name]
        return self.trial.suggest_float(name, low, high)

    def learning_rate(self, low: float = 1e-5, high: float = 1e-2) -> float | str:
        """The learning rate, in the schedule form of the entry's own (see the module docstring)."""
        current = self.entry.get("learning_rate")
        if "learning_rate" in self.fixed:
            return current  # type: ignore[return-value]
        value = self.trial.suggest_float("learning_rate", low, high, log=True)
        linear = isinstance(current, str) and current.startswith(SCHEDULE_PREFIX)
        return f"{SCHEDULE_PREFIX}{value!r}" if linear else value

    def network(self, archs: tuple[str, ...], activation: bool = True) -> dict[str, Any]:
        """``policy_kwargs`` with a sampled ``net_arch`` (and activation), the entry's other keys kept."""
        if "policy_kwargs" in self.fixed:
            return {}
        policy_kwargs = parse_kwargs_string(self.entry.get("policy_kwargs") or "dict()")
        policy_kwargs["net_arch"] = NET_ARCHS[self.trial.suggest_categorical("net_arch", list(archs))]
        if activation:
            name = self.trial.suggest_categorical("activation_fn", list(ACTIVATIONS))
            policy_kwargs["activation_fn"] = SAFE_NAMES[ACTIVATIONS[name]]
        return {"policy_kwargs": kwargs_string(policy_kwargs)}


def kwargs_string(kwargs: dict[str, Any]) -> str:
    """``{"net_arch": [64], "activation_fn": nn.ReLU}`` -> ``"dict(net_arch=[64], activation_fn=nn.ReLU)"``, the
    notation :func:`agents.hyperparams.parse_kwargs_string` reads back."""
    names = {value: name for name, value in SAFE_NAMES.items() if name.startswith(("nn.", "th.optim."))}
    names.update({value: name for name, value in FEATURES_EXTRACTORS.items()})

    def text(value: Any) -> str:
        if isinstance(value, dict):
            return "dict(" + ", ".join(f"{k}={text(v)}" for k, v in value.items()) + ")"
        if isinstance(value, (list, tuple)):
            items = ", ".join(text(v) for v in value)
            return f"[{items}]" if isinstance(value, list) else f"({items}{',' if len(value) == 1 else ''})"
        if isinstance(value, type):
            if value not in names:
                raise ValueError(f"cannot write {value!r} in policy_kwargs")
            return names[value]
        return repr(value)

    return text(kwargs)


def minibatch_size(rollout: int, n_minibatches: int) -> int:
    """The rollout split in ``n_minibatches``, but never below ``MIN_BATCH`` samples (or the whole rollout): a
    tiny rollout split 32 ways would cost hundreds of gradient steps per update for nothing but noise."""
    return max(rollout // n_minibatches, min(MIN_BATCH, rollout))


# ---- the spaces ------------------------------------------------------------------------------------------------


def ppo_space(s: Sampler) -> dict[str, Any]:
    """PPO (and MaskablePPO, RecurrentPPO): RL Zoo's sample_ppo_params with mini-batches counted per rollout."""
    n_steps = s.categorical("n_steps", [16, 32, 64, 128, 256, 512, 1024, 2048])
    params: dict[str, Any] = {"n_steps": n_steps}
    if "batch_size" not in s.fixed:
        n_minibatches = s.trial.suggest_categorical("n_minibatches", [1, 2, 4, 8, 16, 32])
        params["batch_size"] = minibatch_size(s.n_envs * n_steps, n_minibatches)
    params.update(
        n_epochs=s.categorical("n_epochs", [1, 2, 4, 5, 10, 20]),
        gamma=s.categorical("gamma", GAMMAS),
        gae_lambda=s.categorical("gae_lambda", GAE_LAMBDAS),
        learning_rate=s.learning_rate(),
        ent_coef=s.log_float("ent_coef", 1e-8, 0.1),
        clip_range=s.categorical("clip_range", [0.1, 0.2, 0.3, 0.4]),
    )
    return {**params, **s.network(("tiny", "small", "medium"))}


def a2c_space(s: Sampler) -> dict[str, Any]:
    """A2C: RL Zoo's sample_a2c_params (without its RMSprop and orthogonal-init switches)."""
    return {
        "n_steps": s.categorical("n_steps", [5, 8, 16, 32, 64, 128, 256]),
        "gamma": s.categorical("gamma", GAMMAS),
        "gae_lambda": s.categorical("gae_lambda", GAE_LAMBDAS),
        "learning_rate": s.learning_rate(),
        "ent_coef": s.log_float("ent_coef", 1e-8, 0.1),
        "vf_coef": s.uniform("vf_coef", 0.0, 1.0),
        "max_grad_norm": s.categorical("max_grad_norm", [0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 5.0]),
        **s.network(("tiny", "small", "medium")),
    }


def trpo_space(s: Sampler) -> dict[str, Any]:
    """TRPO: RL Zoo's sample_trpo_params (n_steps, batch, discount, GAE, critic learning rate, target KL)."""
    n_steps = s.categorical("n_steps", [16, 32, 64, 128, 256, 512, 1024])
    params: dict[str, Any] = {"n_steps": n_steps}
    if "batch_size" not in s.fixed:
        n_minibatches = s.trial.suggest_categorical("n_minibatches", [1, 2, 4, 8])
        params["batch_size"] = minibatch_size(s.n_envs * n_steps, n_minibatches)
    params.update(
        gamma=s.categorical("gamma", GAMMAS),
        gae_lambda=s.categorical("gae_lambda", GAE_LAMBDAS),
        learning_rate=s.learning_rate(),
        target_kl=s.categorical("target_kl", [0.1, 0.05, 0.03, 0.02, 0.01, 0.005, 0.001]),
    )
    return {**params, **s.network(("tiny", "small", "medium"))}


def dqn_space(s: Sampler) -> dict[str, Any]:
    """DQN (and QR-DQN): RL Zoo's sample_dqn_params, gradient steps from train_freq and a subsampling factor."""
    train_freq = s.categorical("train_freq", [1, 4, 8, 16, 128])
    params: dict[str, Any] = {
        "gamma": s.categorical("gamma", GAMMAS),
        "learning_rate": s.learning_rate(1e-5, 1e-2),
        "batch_size": s.categorical("batch_size", [16, 32, 64, 128, 256, 512]),
        "buffer_size": s.categorical("buffer_size", [10_000, 50_000, 100_000, 1_000_000]),
        "exploration_final_eps": s.uniform("exploration_final_eps", 0.0, 0.2),
        "exploration_fraction": s.uniform("exploration_fraction", 0.0, 0.5),
        "target_update_interval": s.categorical("target_update_interval", [1, 1000, 5000, 10_000]),
        "learning_starts": s.categorical("learning_starts", [0, 1000, 5000, 10_000]),
        "train_freq": train_freq,
    }
    if "gradient_steps" not in s.fixed:
        subsample = s.trial.suggest_categorical("subsample_steps", [1, 2, 4, 8])
        params["gradient_steps"] = max(train_freq // subsample, 1)
    return {**params, **s.network(("tiny", "small", "medium"), activation=False)}


def sac_space(s: Sampler) -> dict[str, Any]:
    """SAC (and TQC): RL Zoo's sample_sac_params, one gradient step per env step collected."""
    train_freq = s.categorical("train_freq", [1, 4, 8, 16, 32])
    return {
        "gamma": s.categorical("gamma", GAMMAS),
        "learning_rate": s.learning_rate(1e-5, 1e-2),
        "batch_size": s.categorical("batch_size", [32, 64, 128, 256, 512, 1024]),
        "buffer_size": s.categorical("buffer_size", [10_000, 100_000, 1_000_000]),
        "learning_starts": s.categorical("learning_starts", [0, 1000, 10_000]),
        "train_freq": train_freq,
        "gradient_steps": s.entry.get("gradient_steps") if "gradient_steps" in s.fixed else train_freq,
        "tau": s.categorical("tau", [0.001, 0.005, 0.01, 0.02, 0.05, 0.08]),
        **s.network(("small", "medium", "big"), activation=False),
    }


def td3_space(s: Sampler) -> dict[str, Any]:
    """TD3 (and DDPG): RL Zoo's sample_td3_params, the action noise in trendgym's noise_type/noise_std keys."""
    train_freq = s.categorical("train_freq", [1, 4, 8, 16, 32])
    params: dict[str, Any] = {
        "gamma": s.categorical("gamma", GAMMAS),
        "learning_rate": s.learning_rate(1e-5, 1e-2),
        "batch_size": s.categorical("batch_size", [32, 64, 128, 256, 512, 1024]),
        "buffer_size": s.categorical("buffer_size", [10_000, 100_000, 1_000_000]),
        "train_freq": train_freq,
        "gradient_steps": s.entry.get("gradient_steps") if "gradient_steps" in s.fixed else train_freq,
        "noise_type": s.categorical("noise_type", ["normal", "ornstein-uhlenbeck", None]),
    }
    if params["noise_type"] is not None:
        params["noise_std"] = s.uniform("noise_std", 0.0, 1.0)
    return {**params, **s.network(("small", "medium", "big"), activation=False)}


SPACES: dict[str, Space] = {
    "ppo": ppo_space,
    "maskableppo": ppo_space,
    "recurrentppo": ppo_space,
    "a2c": a2c_space,
    "trpo": trpo_space,
    "dqn": dqn_space,
    "qrdqn": dqn_space,
    "sac": sac_space,
    "tqc": sac_space,
    "td3": td3_space,
    "ddpg": td3_space,
}


def sample_entry(
    algo: str, trial: optuna.Trial, entry: dict[str, Any], fixed: set[str] | None = None
) -> dict[str, Any]:
    """A raw hyper-parameter entry for ``algo``: ``entry`` (the YAML's, overrides applied) with the space's keys
    sampled by ``trial``, except those in ``fixed``. A sampled ``None`` (no action noise) removes its key."""
    space = SPACES.get(algo.lower())
    if space is None:
        raise ValueError(f"no search space for {algo!r}; spaces exist for: {', '.join(SPACES)}")
    n_envs = int(entry.get("n_envs", 1))
    sampled = space(Sampler(trial, entry, set(fixed or ()), n_envs))
    raw = {**entry, **sampled}
    for key, value in sampled.items():
        if value is None:
            raw.pop(key)
    if raw.get("noise_type") is None:
        raw.pop("noise_std", None)
    return raw


def rollout_size(raw: dict[str, Any]) -> int | None:
    """``n_envs * n_steps`` for an on-policy entry, else None (tests check batch sizes against it)."""
    if "n_steps" not in raw:
        return None
    return int(raw.get("n_envs", 1)) * int(raw["n_steps"])

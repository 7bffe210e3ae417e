"""Several trained agents acting as one: the course's "two hands are better than one" applied to policies.

A :class:`PolicyEnsemble` asks every member for its action on the same observation and combines the answers:

* ``"vote"`` (``Discrete``): the action with the largest total weight of the members choosing it. A tie goes to
  the tied action chosen by the earliest member in the list, so listing the member trusted most first decides
  ties, with no randomness and without needing the members' probabilities (a heuristic or any other
  ``predict``-only policy can vote).
* ``"soft"`` (``Discrete``, SB3 actor-critic members such as PPO or A2C): the weighted mean of the members'
  action probabilities, then its most likely action (or a draw from it when ``deterministic=False``). A member
  that is nearly indifferent then counts for little, where a vote counts it fully.
* ``"mean"`` (``Box``): the weighted mean of the members' actions, clipped to the action space.

Each member acts on the observation as it was trained to see it: a :class:`agents.runs.LoadedAgent` normalises it
with its own VecNormalize statistics, so members trained with different statistics combine correctly. The
ensemble has the SB3-style ``predict`` every evaluation, viewer and benchmark calls, for one observation or a
batch. Recurrent members are refused: their hidden states would have to be carried for each of them, and a vote
between memories is not what "an ensemble of agents" means here.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy

from agents.evaluation import EvaluationResult, OptionNotApplicable, Policy, env_of_run, env_settings, evaluate
from agents.runs import LoadedAgent, config_dir_of, load_agent
from agents.seeds import test_seeds

RULES = ("auto", "vote", "soft", "mean")
DISCRETE_RULES = ("vote", "soft")
BOX_RULES = ("mean",)


class EnsembleError(ValueError):
    """Members that cannot act as one (different spaces or envs, a recurrent member, a rule that does not fit);
    scripts print it as one line."""


def _wrapped_model(member: Any) -> Any:
    """The SB3 model behind a member, if any: a LoadedAgent's ``model``, a DistilledPolicy's ``student``."""
    if isinstance(member, LoadedAgent):
        return member.model
    if isinstance(member, BaseAlgorithm):
        return member
    return getattr(member, "student", None)


def member_spaces(member: Any) -> tuple[spaces.Space | None, spaces.Space | None]:
    """A member's observation and action spaces: its own, else those of the model it wraps (None if unknown)."""
    holders = [member, _wrapped_model(member)]
    found = []
    for name in ("observation_space", "action_space"):
        found.append(next((getattr(h, name) for h in holders if getattr(h, name, None) is not None), None))
    return found[0], found[1]


def space_text(space: spaces.Space) -> str:
    """A space in a few characters, ``Discrete(6)`` or ``Box(19,)``, for a one-line error (a Box's repr lists
    every bound)."""
    return f"Discrete({space.n})" if isinstance(space, spaces.Discrete) else f"{type(space).__name__}{space.shape}"


def _differ(what: str, space: spaces.Space, first: spaces.Space) -> str:
    other = " with other bounds" if space_text(space) == space_text(first) else ""
    return f"{what} {space_text(space)}{other}, member 0 in {space_text(first)}"


def _member_name(index: int, member: Any) -> str:
    path = getattr(member, "path", None)
    return f"member {index} ({path if path is not None else type(member).__name__})"


def _check_members(members: Sequence[Any]) -> tuple[spaces.Space | None, spaces.Space]:
    """The spaces every member shares, or an EnsembleError naming the first member that differs."""
    if not members:
        raise EnsembleError("an ensemble needs at least one member")
    observation_space, action_space = None, None
    for i, member in enumerate(members):
        model = _wrapped_model(member)
        if model is not None and isinstance(getattr(model, "policy", None), RecurrentActorCriticPolicy):
            raise EnsembleError(f"{_member_name(i, member)} is recurrent; an ensemble combines feed-forward policies")
        obs_space, act_space = member_spaces(member)
        if act_space is None:
            raise EnsembleError(f"{_member_name(i, member)} declares no action_space; give it one to combine it")
        if action_space is None:
            action_space = act_space
        elif act_space != action_space:
            raise EnsembleError(f"{_member_name(i, member)} {_differ('acts in', act_space, action_space)}")
        if obs_space is not None and observation_space is not None and obs_space != observation_space:
            raise EnsembleError(f"{_member_name(i, member)} {_differ('observes', obs_space, observation_space)}")
        observation_space = observation_space or obs_space
    return observation_space, action_space


def _check_weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    """The weights as an array summing to one (equal weights when None)."""
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise EnsembleError(f"got {w.size} weights for {n} members; give one weight per member")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise EnsembleError(f"weights must be non-negative numbers, not all zero, got {w.tolist()}")
    return w / w.sum()


def _choose_rule(rule: str, action_space: spaces.Space, members: Sequence[Any]) -> str:
    if rule not in RULES:
        raise EnsembleError(f"unknown ensemble rule {rule!r}; choose one of {', '.join(RULES)}")
    if isinstance(action_space, spaces.Discrete):
        allowed = DISCRETE_RULES
    elif isinstance(action_space, spaces.Box):
        allowed = BOX_RULES
    else:
        raise EnsembleError(f"an ensemble combines Discrete or Box actions, not {type(action_space).__name__}")
    rule = allowed[0] if rule == "auto" else rule
    if rule not in allowed:
        raise EnsembleError(f"rule {rule!r} does not apply to {space_text(action_space)}; use {' or '.join(allowed)}")
    if rule == "soft":
        for i, member in enumerate(members):
            if not isinstance(getattr(_wrapped_model(member), "policy", None), ActorCriticPolicy):
                raise EnsembleError(
                    f"rule 'soft' needs the action probabilities of SB3 actor-critic members (PPO, A2C); "
                    f"{_member_name(i, member)} has none, use 'vote'"
                )
    return rule


def weighted_vote(actions: np.ndarray, weights: np.ndarray, n_actions: int) -> np.ndarray:
    """Weighted majority vote over ``actions`` (members x batch), ties to the earliest member's tied choice.

    Returns one action per batch entry.
    """
    members, batch = actions.shape
    rows = np.broadcast_to(np.arange(batch), (members, batch))
    scores = np.zeros((batch, n_actions))
    np.add.at(scores, (rows, actions), np.broadcast_to(weights[:, None], (members, batch)))
    # Compare with a tolerance: 1/3 + 1/3 and 2/3 are the same vote, whatever the float rounding says.
    tied = np.isclose(scores, scores.max(axis=1, keepdims=True), rtol=0.0, atol=1e-9)
    chose_tied = tied[rows, actions]  # members x batch: the member's action is among the winners
    first = chose_tied.argmax(axis=0)  # the earliest such member (one always exists: a winner has votes)
    return actions[first, np.arange(batch)]


class PolicyEnsemble:
    """Several policies acting as one agent; see the module docstring for the rules and the tie-break.

    ``members`` are :class:`agents.runs.LoadedAgent` objects or any policies with an SB3-style ``predict`` that
    declare (or wrap a model that declares) their action space. ``weights`` (one per member, non-negative) are
    normalised to sum to one; equal by default. ``rule`` is ``"auto"`` (vote for Discrete, mean for Box),
    ``"vote"``, ``"soft"`` or ``"mean"``.
    """

    def __init__(
        self, members: Sequence[LoadedAgent | Policy], weights: Sequence[float] | None = None, rule: str = "auto"
    ) -> None:
        self.members = list(members)
        self.observation_space, self.action_space = _check_members(self.members)
        self.weights = _check_weights(weights, len(self.members))
        self.rule = _choose_rule(rule, self.action_space, self.members)

    @property
    def config(self) -> dict[str, Any]:
        """The first loaded member's ``config.yml`` (its env is the ensemble's), or {}."""
        return next((m.config for m in self.members if isinstance(m, LoadedAgent)), {})

    @property
    def paths(self) -> list[Path | None]:
        """Each member's model zip (None for a member that was not loaded from one)."""
        return [getattr(m, "path", None) for m in self.members]

    def describe(self) -> str:
        """One line a person reads: how many members, the rule and the weights if they are not equal."""
        text = f"ensemble of {len(self.members)} by {self.rule}"
        if not np.allclose(self.weights, self.weights[0]):
            text += ", weights " + " ".join(f"{w:.3g}" for w in self.weights)
        return text

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """The ensemble's action for one observation or a batch (as SB3 accepts them). ``state`` and
        ``episode_start`` are accepted for the SB3 signature and ignored: no member is recurrent.

        ``deterministic=False`` lets each member sample its own action before the vote or the mean; under
        ``"soft"`` the action is drawn from the averaged probabilities (torch's global generator, so
        :func:`agents.evaluation.run_episode`'s seeding makes it repeatable).
        """
        if self.rule == "soft":
            return self._soft(observation, deterministic), None
        actions, batched = self.member_actions(observation, deterministic)
        combined = self.combine(actions)
        return (combined if batched else combined[0]), None

    def member_actions(self, observation: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, bool]:
        """Every member's action on ``observation``, stacked as members x batch x action shape (batch 1 for a
        single observation), and whether ``observation`` was a batch. A benchmark uses it to see how often the
        members agree."""
        answers = [np.asarray(m.predict(observation, deterministic=deterministic)[0]) for m in self.members]
        single_shape = self.action_space.shape
        batched = answers[0].ndim > len(single_shape)
        return np.stack([a.reshape((-1, *single_shape)) for a in answers]), batched

    def combine(self, actions: np.ndarray) -> np.ndarray:
        """The vote or the clipped weighted mean of :meth:`member_actions`' output, one action per batch entry."""
        if self.rule == "vote":
            start = int(self.action_space.start)  # Discrete(n, start=s) acts in s..s+n-1
            return weighted_vote(actions.astype(np.int64) - start, self.weights, int(self.action_space.n)) + start
        if self.rule == "mean":
            mean = np.tensordot(self.weights, actions.astype(np.float64), axes=1)
            return np.clip(mean, self.action_space.low, self.action_space.high).astype(self.action_space.dtype)
        raise EnsembleError("rule 'soft' combines probabilities, not actions; call predict")

    def _soft(self, observation: np.ndarray, deterministic: bool) -> np.ndarray:
        probabilities, vectorized = None, False
        for weight, member in zip(self.weights, self.members, strict=True):
            p, vectorized = action_probabilities(member, observation)
            probabilities = weight * p if probabilities is None else probabilities + weight * p
        if deterministic:
            actions = probabilities.argmax(axis=1)
        else:
            actions = torch.distributions.Categorical(probs=torch.as_tensor(probabilities)).sample().numpy()
        actions = actions + int(self.action_space.start)
        return actions if vectorized else actions[0]


def action_probabilities(member: Any, observation: np.ndarray) -> tuple[np.ndarray, bool]:
    """An SB3 actor-critic member's action probabilities (batch x actions) on ``observation`` as it sees it
    (normalised with its own statistics), and whether ``observation`` was a batch."""
    model = _wrapped_model(member)
    vecnormalize = getattr(member, "vecnormalize", None)
    if vecnormalize is not None:
        observation = vecnormalize.normalize_obs(observation)
    obs_tensor, vectorized = model.policy.obs_to_tensor(observation)
    with torch.no_grad():
        probs = model.policy.get_distribution(obs_tensor).distribution.probs
    return probs.cpu().numpy().astype(np.float64), vectorized


def _env_name(env_id: str) -> str:
    """``"envs:trendgym/Ski-v0"`` and ``"trendgym/Ski-v0"`` name the same env."""
    return env_id.split(":")[-1]


def load_ensemble(
    runs: Sequence[str | Path],
    weights: Sequence[float] | None = None,
    rule: str = "auto",
    prefer_best: bool = True,
    device: str = "cpu",
) -> PolicyEnsemble:
    """Load every run (folder or model zip, as :func:`agents.runs.load_agent` takes them) as one ensemble.

    The ensemble acts in the env of the first run (``ensemble.config``); every run whose ``config.yml`` names an
    env must name the same id (their ``env_kwargs``, a slope for instance, may differ: an ensemble of a green
    and a blue skier is a fair thing to try). ``device`` is the CPU by default: small MLPs act faster there.
    """
    if not runs:
        raise EnsembleError("an ensemble needs at least one run")
    agents = [load_agent(run, prefer_best=prefer_best, device=device) for run in runs]
    first = agents[0].config.get("env")
    for agent in agents[1:]:
        env_id = agent.config.get("env")
        if first and env_id and _env_name(env_id) != _env_name(first):
            raise EnsembleError(
                f"{agent.path} was trained on {env_id}, {agents[0].path} on {first}; an ensemble's runs share one env"
            )
    return PolicyEnsemble(agents, weights, rule)


def members_trained_elsewhere(ensemble: PolicyEnsemble, env_id: str, env_kwargs: dict[str, Any]) -> list[str]:
    """A phrase for each member whose run trained in another env than the one it is judged in (``run 2
    (Ski-v0_2) trained with slope=blue, judged with slope=green``), numbered as ``evaluate.py --members``' rows.

    The ensemble is judged in its first run's env, so a blue skier among green ones is scored on green: a fair thing
    to try, but one the person reading the table must know about. Arguments are compared as the env is built with
    them (:func:`agents.evaluation.env_settings`), so ``{}`` and the default slope are the same."""
    evaluated = env_settings(env_id, env_kwargs)
    found = []
    for i, member in enumerate(ensemble.members):
        config = member.config if isinstance(member, LoadedAgent) else {}
        trained_on = config.get("env")
        if not trained_on:
            continue  # a bare zip or a baseline: what it trained on is not known
        name = f"run {i + 1} ({config_dir_of(member.path).name})" if member.path is not None else f"run {i + 1}"
        if _env_name(trained_on) != _env_name(env_id):
            found.append(f"{name} trained on {trained_on}, judged on {env_id}")
            continue
        trained = env_settings(trained_on, config.get("env_kwargs") or {})
        changed = [key for key in sorted({*trained, *evaluated}) if trained.get(key) != evaluated.get(key)]
        if changed:
            was = ", ".join(f"{key}={trained.get(key)}" for key in changed)
            now = ", ".join(f"{key}={evaluated.get(key)}" for key in changed)
            found.append(f"{name} trained with {was}, judged with {now}")
    return found


def load_policy(
    runs: Sequence[str | Path],
    weights: Sequence[float] | None = None,
    rule: str = "auto",
    prefer_best: bool = True,
) -> LoadedAgent | PolicyEnsemble:
    """What ``watch.py`` and ``evaluate.py`` act with: no run -> the latest run, one -> that agent, several -> their
    ensemble. ``weights`` and a rule other than ``"auto"`` make sense for several runs only."""
    if len(runs) > 1:
        return load_ensemble(runs, weights, rule, prefer_best)
    if weights is not None or rule != "auto":
        raise OptionNotApplicable("--weights and --ensemble-rule apply to two or more runs acting as one ensemble")
    return load_agent(runs[0] if runs else None, prefer_best=prefer_best)


def evaluate_members(
    runs: Sequence[str | Path],
    weights: Sequence[float] | None = None,
    rule: str = "auto",
    episodes: int = 50,
    slope: str | None = None,
) -> list[EvaluationResult]:
    """Each run alone, then all of them as one ensemble, on the same ``episodes`` unseen courses of their env (of
    ``slope`` instead of the one they trained on, when given): the comparison ``ensemble.py agents`` prints."""
    ensemble = load_ensemble(runs, weights, rule)
    env_id, env_kwargs = env_of_run(ensemble.config, None, slope)
    seeds = test_seeds(episodes)
    results = [
        evaluate(member, env_id, env_kwargs, seeds, name=f"run {i} ({config_dir_of(member.path).name})")
        for i, member in enumerate(ensemble.members, start=1)
    ]
    return [*results, evaluate(ensemble, env_id, env_kwargs, seeds, name=f"ensemble of {len(runs)} ({ensemble.rule})")]


def describe_models(policy: LoadedAgent | PolicyEnsemble) -> str:
    """The model zip a script acts with, or the ensemble and each member's zip, for its "model:" line."""
    if isinstance(policy, PolicyEnsemble):
        return f"{policy.describe()}: " + ", ".join(map(str, policy.paths))
    return str(policy.path)


def add_ensemble_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``watch.py`` and ``evaluate.py`` share for several runs acting as one agent."""
    parser.add_argument(
        "--ensemble-rule",
        choices=RULES[1:],
        default="auto",
        help="how several runs combine: vote (Discrete, default), soft (mean probabilities), mean (Box, default)",
    )
    parser.add_argument("--weights", type=float, nargs="+", metavar="W", help="one weight per run (default: equal)")

"""A NAS controller trained with PPO's clipped surrogate on a replay of every configuration it has evaluated,
sampling without repeats.

Zoph & Le 2017 (arXiv:1611.01578) trained their controller with REINFORCE; its later version (Zoph, Vasudevan,
Shlens & Le 2018, "Learning Transferable Architectures for Scalable Image Recognition", arXiv:1707.07012,
section 3) used PPO (Schulman, Wolski, Dhariwal, Radford & Klimov 2017, "Proximal Policy Optimization
Algorithms", arXiv:1707.06347). The policy here is the autoregressive LSTM of :mod:`trends.automl.reinforce`
(:class:`~trends.automl.reinforce.Controller`); what changes is how a budget of 50-200 evaluations is spent and
learnt from:

- **no repeats**: a configuration is sampled from the policy restricted to the configurations not evaluated yet
  (sampling without replacement). The restriction is made at the decision level: an option all of whose
  completions have been evaluated is masked, so a sample is still one pass through the decisions. A repeat
  costs a unit of budget and teaches nothing (REINFORCE spent 42 of its first 100 evaluations on repeats);
- **a replay**: every episode (configuration, reward) is kept, and after each batch of ``batch_size`` new ones the
  policy takes ``epochs`` gradient steps of PPO's clipped surrogate on all of them::

      L(theta) = 1/K sum_k min(r_k(theta) A_k, clip(r_k(theta), 1 - eps, 1 + eps) A_k) + c_H H[pi_theta]
      r_k(theta) = pi_theta(a_k) / pi_theta_old(a_k)

  with theta_old the policy before this update: each update moves the probability of a replayed configuration
  by at most a factor 1 +- eps, however often the replay is reused;
- **rank-based advantages**: A_k is the centred rank of R_k among the K rewards of the replay, in [-0.5, 0.5]
  (the fitness shaping of Salimans, Ho, Chen, Sidor & Sutskever 2017, arXiv:1703.03864). Validation accuracies on
  the table spread from 0.35 (a one-layer CNN) to 0.93: with raw rewards the first lesson (conv layers, several
  of them) dwarfs every later distinction (0.90 against 0.93); ranks weigh both alike;
- H is the mean entropy of the policy's distributions at the replay's decisions (as the entropy bonus of ENAS,
  Pham et al. 2018);
- **a random start**: the first ``random_start`` episodes are drawn uniformly over the space's (unevaluated)
  configurations, as DQN fills its replay with random actions before learning (``learning_starts``) and as
  regularized evolution starts from a random population. The untrained policy samples uniformly *per decision*,
  so a third of its first draws are one- or two-layer networks; on the table one-layer CNNs score 0.35-0.38, below
  MLPs (0.45-0.55), and an early ranking of those few taught seed 100 to propose all 42 MLPs first (sampling
  without repeats exhausts a preferred subtree before leaving it). Uniform configurations are mostly three-layer
  networks (480 of 542), whose ranking is the one that matters. After the start every configuration comes from
  the policy, which learns from all the episodes, the random ones included.

The log-probabilities learnt from are those of the policy over all valid configurations (the repeat mask is a
way of sampling, not part of the policy), so every replayed configuration keeps a non-zero probability. Everything
random comes from one ``torch.Generator`` seeded by the caller, so a run is deterministic given its seed and the
search's answers, and a resumed search retraces the interrupted run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trends.automl.reinforce import Controller
from trends.automl.search import BudgetExhausted, Search
from trends.automl.space import Config, SearchSpace

MAX_ENUMERATED = 100_000  # a larger space is sampled without the repeat mask (a repeat is then possible)


@dataclass(frozen=True)
class PPOControllerConfig:
    """Hyper-parameters of the PPO controller, chosen for budgets of 50-200 evaluations (how:
    :func:`run_ppo_controller`)."""

    hidden_size: int = 32  # LSTM units, and the size of the choice and decision embeddings
    learning_rate: float = 0.01  # Adam's step size
    batch_size: int = 2  # configurations sampled (without repeats) between two updates
    epochs: int = 2  # gradient steps on the whole replay at each update
    clip: float = 0.2  # eps of the clipped surrogate
    entropy_coef: float = 0.05  # c_H, weight of the policy's mean entropy over the replay's decisions
    no_repeats: bool = True  # sample only configurations not evaluated yet (False: the policy as it is)
    init_range: float = 0.08  # weights are initialised uniformly in [-init_range, init_range] (Zoph & Le's 0.08)
    random_start: int = 20  # first episodes drawn uniformly over the unevaluated configurations (exploration)

    def __post_init__(self) -> None:
        if min(self.hidden_size, self.batch_size, self.epochs) < 1:
            raise ValueError(
                f"hidden_size, batch_size and epochs must be at least 1, got "
                f"{self.hidden_size}, {self.batch_size}, {self.epochs}"
            )
        if not self.learning_rate > 0 or not self.clip > 0:
            raise ValueError(f"learning_rate and clip must be positive, got {self.learning_rate}, {self.clip}")
        if self.entropy_coef < 0 or self.init_range < 0 or self.random_start < 0:
            raise ValueError(f"entropy_coef and init_range must be non-negative, got {self.entropy_coef}")


def actions_of(space: SearchSpace, config: Config) -> tuple[int, ...]:
    """The option indices of ``config``'s decisions, in the order the space asks them."""
    partial: Config = {}
    actions = []
    while (i := space.next_decision(partial)) is not None:
        a = space.decisions[i].index(config[space.decisions[i].name])
        actions.append(a)
        partial = space.choose(partial, a)
    return tuple(actions)


class Unseen:
    """How many configurations not evaluated yet complete each prefix of decisions (a tuple of option indices):
    the decision-level mask of sampling without repeats. When every configuration has been evaluated a new round
    starts (the budget exceeds the space)."""

    def __init__(self, space: SearchSpace) -> None:
        self.counts: dict[tuple[int, ...], int] | None = None
        if space.size <= MAX_ENUMERATED:
            self.counts = {}
            for config in space.enumerate():
                actions = actions_of(space, config)
                for n in range(len(actions) + 1):
                    self.counts[actions[:n]] = self.counts.get(actions[:n], 0) + 1
        self._full = dict(self.counts or {})

    def allowed(self, prefix: tuple[int, ...], valid: np.ndarray) -> np.ndarray:
        """Of the ``valid`` options after ``prefix``, those with an unevaluated completion."""
        if self.counts is None:
            return valid
        return valid & np.array([self.counts.get((*prefix, a), 0) > 0 for a in range(len(valid))])

    def remove(self, actions: tuple[int, ...]) -> None:
        if self.counts is None or self.counts.get(actions, 0) == 0:
            return
        for n in range(len(actions) + 1):
            self.counts[actions[:n]] -= 1
        if self.counts[()] == 0:
            self.counts = dict(self._full)


class Replay:
    """Every episode so far, as the controller's teacher-forced inputs: per configuration its input tokens, the
    decisions taken, the chosen rows of the stacked heads, and each step's mask of allowed rows."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.episodes: list[tuple[list[int], list[int], list[int], np.ndarray]] = []
        self.rewards: list[float] = []

    def add(self, config: Config, reward: float) -> None:
        ctl, space = self.controller, self.controller.space
        tokens, decisions, rows, masks = [0], [], [], []
        partial: Config = {}
        while (i := space.next_decision(partial)) is not None:
            a = space.decisions[i].index(config[space.decisions[i].name])
            mask = np.zeros(ctl.heads.out_features, dtype=bool)
            mask[ctl.rows[i]] = space.valid_options(partial)
            decisions.append(i)
            rows.append(ctl.offsets[i] - 1 + a)
            masks.append(mask)
            tokens.append(ctl.offsets[i] + a)
            partial = space.choose(partial, a)
        self.episodes.append((tokens[:-1], decisions, rows, np.stack(masks)))
        self.rewards.append(reward)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """(tokens, decisions, rows, masks, steps), padded to the longest configuration; ``steps`` marks the real
        steps (a padding step allows every row, so its softmax stays finite, and is ignored)."""
        n, t_max = len(self.episodes), max(len(e[2]) for e in self.episodes)
        tokens, decisions, rows = (torch.zeros(n, t_max, dtype=torch.long) for _ in range(3))
        masks = torch.ones(n, t_max, self.controller.heads.out_features, dtype=torch.bool)
        steps = torch.zeros(n, t_max, dtype=torch.bool)
        for k, (tok, dec, row, mask) in enumerate(self.episodes):
            t = len(row)
            tokens[k, :t], decisions[k, :t], rows[k, :t] = torch.tensor(tok), torch.tensor(dec), torch.tensor(row)
            masks[k, :t] = torch.from_numpy(mask)
            steps[k, :t] = True
        return tokens, decisions, rows, masks, steps


def log_probs(controller: Controller, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(config) of each replayed configuration (all at once, teacher-forced), and the mean entropy of the
    distributions of its decisions."""
    tokens, decisions, rows, masks, steps = batch
    n, t_max = rows.shape
    h = c = torch.zeros(n, controller.lstm.hidden_size)
    log_prob = entropy = torch.zeros(n)
    for t in range(t_max):
        x = controller.choice_embedding(tokens[:, t]) + controller.decision_embedding(decisions[:, t])
        h, c = controller.lstm(x, (h, c))
        allowed = masks[:, t]  # the allowed options of this step's own decision: its rows of the stacked heads
        log_p = torch.log_softmax(controller.heads(h).masked_fill(~allowed, float("-inf")), dim=1)
        chosen = log_p.gather(1, rows[:, t : t + 1]).squeeze(1)
        step_entropy = -(log_p.exp() * log_p.masked_fill(~allowed, 0.0)).sum(1)
        log_prob = log_prob + torch.where(steps[:, t], chosen, 0.0)
        entropy = entropy + torch.where(steps[:, t], step_entropy, 0.0)
    return log_prob, entropy / steps.sum(1)


def sample(controller: Controller, unseen: Unseen | None, generator: torch.Generator) -> Config:
    """One configuration from the policy, restricted to those ``unseen`` counts as unevaluated (None: any)."""
    space = controller.space
    config: Config = {}
    prefix: tuple[int, ...] = ()
    h = c = torch.zeros(1, controller.lstm.hidden_size)
    token = torch.zeros(1, dtype=torch.long)  # the start token
    with torch.no_grad():
        while (i := space.next_decision(config)) is not None:
            x = controller.choice_embedding(token) + controller.decision_embedding.weight[i]
            h, c = controller.lstm(x, (h, c))
            valid = space.valid_options(config)
            allowed = torch.from_numpy(unseen.allowed(prefix, valid) if unseen is not None else valid)
            logits = controller.heads(h)[0, controller.rows[i]].masked_fill(~allowed, float("-inf"))
            a_t = int(torch.multinomial(torch.softmax(logits, 0), 1, generator=generator))
            config = space.choose(config, a_t)
            prefix = (*prefix, a_t)
            token = torch.tensor([controller.offsets[i] + a_t])
    return config


def random_configuration(space: SearchSpace, unseen: Unseen | None, rng: np.random.Generator) -> Config:
    """A configuration drawn uniformly over the space's configurations, among the unevaluated ones when ``unseen``
    knows them (by rejection: at most a few draws while most of the space is unevaluated)."""
    while True:
        config = space.sample_uniform(rng)
        if unseen is None or unseen.counts is None or unseen.counts.get(actions_of(space, config), 0) > 0:
            return config


def centred_ranks(rewards: list[float]) -> torch.Tensor:
    """A_k: the rank of each reward among all, scaled to [-0.5, 0.5]; equal rewards share their mean rank."""
    r = np.asarray(rewards, dtype=float)
    _, inverse, counts = np.unique(r, return_inverse=True, return_counts=True)
    below = np.concatenate([[0], np.cumsum(counts)[:-1]])  # how many rewards are lower than each distinct value
    ranks = below[inverse] + (counts[inverse] - 1) / 2
    return torch.as_tensor(ranks / max(len(r) - 1, 1) - 0.5, dtype=torch.float32)


def run_ppo_controller(search: Search, seed: int, config: PPOControllerConfig = PPOControllerConfig()) -> None:
    """Propose configurations to ``search`` from the PPO-trained controller until its budget is spent.

    Defaults: chosen on the mnist1d-arch table over seeds 100-109 (not the comparison's 0-9), budget 200, one
    change at a time from (batch 1, 4 epochs, no entropy bonus, no random start); every variant and its numbers
    are in docs/notes/issue20-nas-controller.md. Sampling without repeats is what everything rests on
    (without it the replayed PPO collapses: 184 of 200 proposals repeats, median best 81.9); batches of two
    rather than one halved the cost and lifted the worst seed; an entropy bonus of 0.05 lifted the median at 50
    evaluations (0.01 too little, 0.1-0.3 no better); 2 epochs were as good as 4 and faster; centred ranks beat
    z-scores, NES utilities, and raw rewards less a moving baseline at 50 evaluations or on the worst seed. Until
    the random start the controller sat on the table's third best (92.625) at 100 evaluations on half the
    seeds; 20 random episodes (10 gave the same medians, a lower upper quartile at 100) brought the
    median at 100 to 92.75.
    """
    generator = torch.Generator().manual_seed(seed)
    controller = Controller(search.space, config.hidden_size, config.init_range, generator)
    optimizer = torch.optim.Adam(controller.parameters(), lr=config.learning_rate)
    unseen = Unseen(search.space) if config.no_repeats else None
    replay = Replay(controller)
    rng = np.random.default_rng(seed)
    try:
        while True:
            for _ in range(config.batch_size):
                if len(replay.rewards) < config.random_start:
                    sampled = random_configuration(search.space, unseen, rng)
                else:
                    sampled = sample(controller, unseen, generator)
                R = search.evaluate(sampled).val_accuracy
                if unseen is not None:
                    unseen.remove(actions_of(search.space, sampled))
                replay.add(sampled, R)
            if len(replay.rewards) < 2:  # one reward has no rank
                continue
            batch, A = replay.tensors(), centred_ranks(replay.rewards)
            with torch.no_grad():
                log_prob_old, _ = log_probs(controller, batch)
            for _ in range(config.epochs):
                log_prob, entropy = log_probs(controller, batch)
                ratio = (log_prob - log_prob_old).exp()
                surrogate = torch.min(ratio * A, ratio.clamp(1 - config.clip, 1 + config.clip) * A)
                loss = -surrogate.mean() - config.entropy_coef * entropy.mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    except BudgetExhausted:
        return

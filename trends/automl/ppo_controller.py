"""A NAS controller trained with PPO's clipped surrogate on a replay of every configuration it has evaluated,
sampling without repeats.

Zoph & Le 2017 (arXiv:1611.01578) trained their controller with REINFORCE, and its later version (Zoph, Vasudevan,
Shlens & Le 2018, "Learning Transferable Architectures", arXiv:1707.07012, section 3) with PPO (Schulman, Wolski,
Dhariwal, Radford & Klimov 2017, "Proximal Policy Optimization Algorithms", arXiv:1707.06347). The policy is the
same autoregressive LSTM as :mod:`trends.automl.reinforce`; what changes is how a budget of 50-200 evaluations is
spent and learned from:

- **no repeats**: a configuration is sampled from the policy restricted to configurations not evaluated yet
  (sampling without replacement). The restriction is made at the decision level: an option whose every completion
  has been evaluated is masked, so the sample is still one pass through the decisions. A repeat would cost a unit
  of budget and teach nothing;
- **a replay**: every episode (configuration, reward) is kept, and after each new one the policy takes ``epochs``
  gradient steps of PPO's clipped surrogate on all of them::

      L^CLIP(theta) = E_k[ min(r_k(theta) A_k, clip(r_k(theta), 1 - eps, 1 + eps) A_k) ] + c_H H[pi_theta]
      r_k(theta) = pi_theta(a_k) / pi_theta_old(a_k)

  with theta_old the policy before this update, so each update moves the probability of a replayed configuration
  by at most a factor 1 +- eps however often the replay is reused;
- **rank-based advantages**: A_k is the centred rank of R_k among the replay's rewards, in [-0.5, 0.5] (as
  Salimans et al. 2017, "Evolution Strategies as a Scalable Alternative to RL", arXiv:1703.03864, shape their
  fitnesses). The raw accuracies spread from 0.45 (an MLP) to 0.93 (the best CNN): with them the first thing learnt
  (conv, not dense) dwarfs every later distinction (0.90 against 0.93); ranks weigh both alike.

The log-probabilities learnt from are those of the policy over all valid configurations (the repeat mask is a
sampling procedure, not part of the policy), so every replayed configuration keeps a non-zero probability.
Everything random comes from one ``torch.Generator`` seeded by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trends.automl.reinforce import Controller
from trends.automl.search import BudgetExhausted, Search
from trends.automl.space import Config, SearchSpace
from trends.automl.table import config_json

MAX_ENUMERATED = 100_000  # larger spaces are sampled without the repeat mask (a repeat is then possible)


@dataclass(frozen=True)
class PPOControllerConfig:
    """Hyper-parameters of the PPO controller, for budgets of 50-200 evaluations."""

    hidden_size: int = 32  # LSTM units, and the size of the choice and decision embeddings
    learning_rate: float = 0.01  # Adam's step size
    batch_size: int = 1  # configurations sampled (without repeats) between two updates
    epochs: int = 4  # gradient steps on the replay at each update
    clip: float = 0.2  # eps of the clipped surrogate
    entropy_coef: float = 0.0  # weight of the policy's entropy (mean over the replay's decisions)
    advantage: str = "rank"  # "rank": centred ranks; "zscore": standardised rewards; "ema": R - moving average
    no_repeats: bool = True  # sample only configurations not evaluated yet
    init_range: float = 0.08  # weights are initialised uniformly in [-init_range, init_range]
    warmup: int = 0  # configurations sampled before the first update

    def __post_init__(self) -> None:
        if self.hidden_size < 1 or self.epochs < 1:
            raise ValueError(f"hidden_size and epochs must be at least 1, got {self.hidden_size}, {self.epochs}")
        if not self.learning_rate > 0 or not self.clip > 0:
            raise ValueError(f"learning_rate and clip must be positive, got {self.learning_rate}, {self.clip}")
        if self.entropy_coef < 0 or self.init_range < 0 or self.warmup < 0:
            raise ValueError("entropy_coef, init_range and warmup must be non-negative")
        if self.advantage not in ("rank", "nes", "zscore", "ema"):
            raise ValueError(f"advantage must be rank, zscore or ema, got {self.advantage!r}")


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
    the decision-level mask of sampling without repeats."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.counts: dict[tuple[int, ...], int] | None = None
        if space.size <= MAX_ENUMERATED:
            self.counts = {}
            for config in space.enumerate():
                actions = actions_of(space, config)
                for n in range(len(actions) + 1):
                    self.counts[actions[:n]] = self.counts.get(actions[:n], 0) + 1
        self.full = dict(self.counts or {})

    def allowed(self, prefix: tuple[int, ...], valid: np.ndarray) -> np.ndarray:
        if self.counts is None:
            return valid
        return valid & np.array([self.counts.get((*prefix, a), 0) > 0 for a in range(len(valid))])

    def remove(self, actions: tuple[int, ...]) -> None:
        if self.counts is None or self.counts.get(actions, 0) == 0:
            return
        for n in range(len(actions) + 1):
            self.counts[actions[:n]] -= 1
        if self.counts[()] == 0:  # every configuration evaluated: a new round
            self.counts = dict(self.full)


class Episodes:
    """The replay as padded tensors: for each configuration its input tokens, decisions, chosen head rows, and the
    validity mask of each step over the stacked heads."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.tokens: list[list[int]] = []
        self.decisions: list[list[int]] = []
        self.rows: list[list[int]] = []
        self.masks: list[np.ndarray] = []
        self.rewards: list[float] = []

    def add(self, config: Config, reward: float) -> None:
        ctl, space = self.controller, self.controller.space
        total = ctl.heads.out_features
        tokens, decisions, rows, masks = [0], [], [], []
        partial: Config = {}
        while (i := space.next_decision(partial)) is not None:
            a = space.decisions[i].index(config[space.decisions[i].name])
            mask = np.zeros(total, dtype=bool)
            mask[ctl.rows[i]] = space.valid_options(partial)
            decisions.append(i)
            rows.append(ctl.offsets[i] - 1 + a)
            masks.append(mask)
            tokens.append(ctl.offsets[i] + a)
            partial = space.choose(partial, a)
        self.tokens.append(tokens[:-1])
        self.decisions.append(decisions)
        self.rows.append(rows)
        self.masks.append(np.stack(masks))
        self.rewards.append(reward)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        n, t_max = len(self.rows), max(len(r) for r in self.rows)
        total = self.controller.heads.out_features
        tokens = torch.zeros(n, t_max, dtype=torch.long)
        decisions = torch.zeros(n, t_max, dtype=torch.long)
        rows = torch.zeros(n, t_max, dtype=torch.long)
        masks = torch.ones(n, t_max, total, dtype=torch.bool)  # padding steps: every row, a finite softmax
        steps = torch.zeros(n, t_max, dtype=torch.bool)
        for k in range(n):
            t = len(self.rows[k])
            tokens[k, :t] = torch.tensor(self.tokens[k])
            decisions[k, :t] = torch.tensor(self.decisions[k])
            rows[k, :t] = torch.tensor(self.rows[k])
            masks[k, :t] = torch.from_numpy(self.masks[k])
            steps[k, :t] = True
        return tokens, decisions, rows, masks, steps


def log_probs(controller: Controller, tokens, decisions, rows, masks, steps) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(config) of each replayed configuration (teacher-forced, batched), and the mean entropy of the
    distributions of its decisions."""
    n, t_max = rows.shape
    h = c = torch.zeros(n, controller.lstm.hidden_size)
    log_prob = torch.zeros(n)
    entropy = torch.zeros(n)
    for t in range(t_max):
        x = controller.choice_embedding(tokens[:, t]) + controller.decision_embedding(decisions[:, t])
        h, c = controller.lstm(x, (h, c))
        logits = controller.heads(h)
        allowed = masks[:, t]  # the allowed options of the step's own decision (padding: all, ignored below)
        log_p = torch.log_softmax(logits.masked_fill(~allowed, float("-inf")), dim=1)
        chosen = log_p.gather(1, rows[:, t : t + 1]).squeeze(1)
        log_prob = log_prob + torch.where(steps[:, t], chosen, torch.zeros(()))
        ent = -(log_p.exp() * log_p.masked_fill(~allowed, 0.0)).sum(1)
        entropy = entropy + torch.where(steps[:, t], ent, torch.zeros(()))
    return log_prob, entropy / steps.sum(1)


def sample(controller: Controller, unseen: Unseen, generator: torch.Generator, no_repeats: bool) -> Config:
    space = controller.space
    config: Config = {}
    prefix: tuple[int, ...] = ()
    h = c = torch.zeros(1, controller.lstm.hidden_size)
    token = torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        while (i := space.next_decision(config)) is not None:
            x = controller.choice_embedding(token) + controller.decision_embedding.weight[i]
            h, c = controller.lstm(x, (h, c))
            valid = space.valid_options(config)
            allowed = torch.from_numpy(unseen.allowed(prefix, valid) if no_repeats else valid)
            logits = controller.heads(h)[0, controller.rows[i]].masked_fill(~allowed, float("-inf"))
            a_t = int(torch.multinomial(torch.softmax(logits, 0), 1, generator=generator))
            config = space.choose(config, a_t)
            prefix = (*prefix, a_t)
            token = torch.tensor([controller.offsets[i] + a_t])
    return config


def advantages(rewards: list[float], kind: str, baseline: float) -> torch.Tensor:
    r = np.asarray(rewards, dtype=float)
    if kind == "rank":
        ranks = np.argsort(np.argsort(r, kind="stable"), kind="stable").astype(float)
        # ties share their mean rank
        for v in np.unique(r):
            ranks[r == v] = ranks[r == v].mean()
        a = ranks / max(len(r) - 1, 1) - 0.5
    elif kind == "nes":  # Wierstra et al. 2014's utilities: only the better half counts, the best most
        n = len(r)
        order = np.argsort(-r, kind="stable")
        u = np.empty(n)
        u[order] = np.maximum(0.0, np.log(n / 2 + 1) - np.log(np.arange(1, n + 1)))
        u = u / u.sum() - 1 / n
        a = u / (u.std() + 1e-12) * 0.2887  # the spread of centred ranks, so entropy weights compare
    elif kind == "zscore":
        a = (r - r.mean()) / (r.std() + 1e-8)
    else:
        a = r - baseline
    return torch.as_tensor(a, dtype=torch.float32)


def run_ppo_controller(search: Search, seed: int, config: PPOControllerConfig = PPOControllerConfig()) -> None:
    """Propose configurations to ``search`` from the PPO-trained controller until its budget is spent."""
    generator = torch.Generator().manual_seed(seed)
    controller = Controller(search.space, config.hidden_size, config.init_range, generator)
    optimizer = torch.optim.Adam(controller.parameters(), lr=config.learning_rate)
    unseen = Unseen(search.space)
    episodes = Episodes(controller)
    ema = None
    try:
        while True:
            sampled = sample(controller, unseen, generator, config.no_repeats)
            R = search.evaluate(sampled).val_accuracy
            unseen.remove(actions_of(search.space, sampled))
            episodes.add(sampled, R)
            ema = R if ema is None else 0.95 * ema + 0.05 * R
            if len(episodes.rewards) <= max(config.warmup, 1) or len(episodes.rewards) % config.batch_size:
                continue
            batch = episodes.tensors()
            A = advantages(episodes.rewards, config.advantage, ema)
            with torch.no_grad():
                old, _ = log_probs(controller, *batch)
            for _ in range(config.epochs):
                new, entropy = log_probs(controller, *batch)
                ratio = (new - old).exp()
                surrogate = torch.min(ratio * A, ratio.clamp(1 - config.clip, 1 + config.clip) * A)
                loss = -surrogate.mean() - config.entropy_coef * entropy.mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    except BudgetExhausted:
        return

"""A REINFORCE-trained LSTM controller over a :class:`~trends.automl.space.SearchSpace`.

Zoph & Le 2017, "Neural Architecture Search with Reinforcement Learning", ICLR (arXiv:1611.01578). The controller
is an autoregressive recurrent network that emits a configuration one decision at a time, each choice fed back
as the next step's input; it is trained with REINFORCE (Williams 1992) to maximise the expected validation
accuracy R of the configurations it samples, with the paper's estimate of the policy gradient (section 3.2)::

    grad J(theta_c) ~= 1/m sum_{k=1..m} sum_{t=1..T} grad log P(a_t | a_(t-1):1; theta_c) (R_k - b)

where m is the number of configurations per update, T the number of decisions of configuration k, and b an
exponential moving average of the previous configurations' rewards, which lowers the variance of the estimate
without biasing it.

How it meets this project's spaces:

- the decisions are conditional, so the controller runs for exactly the decisions that apply
  (:meth:`SearchSpace.next_decision`), and its input at a step is the embedding of the previous choice plus an
  embedding of the decision being taken (the step's position is not enough: which decision comes third depends
  on the first two choices);
- each decision has its own softmax head (the paper's per-token classifiers), whose logits of options the
  space forbids (:meth:`SearchSpace.valid_options`) are set to -inf: the controller only ever samples valid
  configurations, and spends no probability on invalid ones;
- every configuration sampled is a proposal charged to the search's budget; one sampled again is answered from
  the search's history without training, and is still a sample of the policy, so it still makes an update;
- an entropy bonus (as in ENAS, Pham et al. 2018) keeps the controller from collapsing onto one configuration
  within the budget: a collapsed controller spends what is left of it re-proposing what it already has. On the
  mnist1d-arch table at budget 100, without it the controller (at the default step size) evaluated a median of
  32 distinct configurations, with it 58.

Everything random comes from one ``torch.Generator`` seeded by the caller (weight initialisation, uniform in
[-0.08, 0.08] as in the paper, and sampling), so a run is deterministic given its seed and the search's answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import skip_init

from trends.automl.search import BudgetExhausted, Search
from trends.automl.space import Config, SearchSpace


@dataclass(frozen=True)
class ReinforceConfig:
    """Hyper-parameters of the REINFORCE controller, chosen for budgets of 50-200 evaluations (the paper trained
    for 12800 architectures, with batches of m=8 per worker; see :func:`run_reinforce`)."""

    hidden_size: int = 32  # LSTM units, and the size of the choice and decision embeddings (the paper: 35)
    learning_rate: float = 0.01  # Adam's step size (the paper: 0.0006, over 100 times more updates)
    batch_size: int = 1  # m: configurations sampled per policy-gradient update
    baseline_decay: float = 0.95  # of the exponential moving average b of earlier rewards
    entropy_coef: float = 0.03  # weight in the loss of the policy's entropy, summed over a configuration's decisions
    init_range: float = 0.08  # weights are initialised uniformly in [-init_range, init_range] (the paper's 0.08)

    def __post_init__(self) -> None:
        if self.hidden_size < 1 or self.batch_size < 1:
            raise ValueError(
                f"hidden_size and batch_size must be at least 1, got {self.hidden_size}, {self.batch_size}"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0 <= self.baseline_decay < 1:
            raise ValueError(f"baseline_decay must be in [0, 1), got {self.baseline_decay}")
        if self.entropy_coef < 0 or self.init_range < 0:
            raise ValueError(f"entropy_coef and init_range must be non-negative, got {self.entropy_coef}")


class Controller(nn.Module):
    """The autoregressive LSTM policy over the decisions of ``space``.

    Inputs are tokens: 0 starts a configuration, and option ``a`` of decision ``i`` is token ``1 + offset[i] + a``,
    so the embedding of a choice knows which decision it answered.
    """

    def __init__(self, space: SearchSpace, hidden_size: int, init_range: float, generator: torch.Generator) -> None:
        super().__init__()
        self.space = space
        n_options = [space.n_options(i) for i in range(len(space.decisions))]
        self.offsets = [1 + sum(n_options[:i]) for i in range(len(n_options))]
        # skip_init: torch's default initialisation would draw from the global RNG; every weight is drawn below
        self.choice_embedding = skip_init(nn.Embedding, 1 + sum(n_options), hidden_size)
        self.decision_embedding = skip_init(nn.Embedding, len(n_options), hidden_size)
        self.lstm = skip_init(nn.LSTMCell, hidden_size, hidden_size)
        # the per-decision softmax classifiers, stacked into one layer (decision i owns its rows
        # offset[i]-1 .. offset[i]-1+n_i): the same model with 2 parameter tensors instead of 2 per decision
        self.heads = skip_init(nn.Linear, hidden_size, sum(n_options))
        self.rows = [slice(o - 1, o - 1 + n) for o, n in zip(self.offsets, n_options, strict=True)]
        with torch.no_grad():  # the paper's initialisation: uniform in [-init_range, init_range]
            for parameter in self.parameters():
                parameter.uniform_(-init_range, init_range, generator=generator)

    def sample(self, generator: torch.Generator) -> tuple[Config, torch.Tensor, torch.Tensor]:
        """One configuration, the sum over its decisions of log P(a_t | a_(t-1):1), and the sum of the entropies
        of the (masked) distributions it was drawn from."""
        config: Config = {}
        h = c = torch.zeros(1, self.lstm.hidden_size)
        token = torch.zeros(1, dtype=torch.long)  # the start token
        log_prob = entropy = torch.zeros(())
        while (i := self.space.next_decision(config)) is not None:
            x = self.choice_embedding(token) + self.decision_embedding.weight[i]
            h, c = self.lstm(x, (h, c))
            allowed = torch.from_numpy(self.space.valid_options(config))
            log_p = torch.log_softmax(self.heads(h)[0, self.rows[i]].masked_fill(~allowed, float("-inf")), dim=0)
            a_t = int(torch.multinomial(log_p.exp(), 1, generator=generator))
            log_prob = log_prob + log_p[a_t]
            entropy = entropy - (log_p.exp() * log_p.masked_fill(~allowed, 0.0)).sum()
            config = self.space.choose(config, a_t)
            token = torch.tensor([self.offsets[i] + a_t])
        return config, log_prob, entropy


def run_reinforce(search: Search, seed: int, config: ReinforceConfig = ReinforceConfig()) -> None:
    """Propose configurations to ``search`` from a REINFORCE-trained controller until its budget is spent.

    Deterministic given ``seed`` and the search's answers, so a resumed search (whose earlier configurations are
    answered from its history) retraces the interrupted run and carries on from where it stopped.

    Defaults: one configuration per update (m=1) because at 50-200 evaluations every update counts, a large step
    size (Adam, 0.01) because the controller must move within a hundred updates rather than the paper's
    thousands, and an entropy bonus of 0.03 so that it does not settle on one configuration while budget is left.
    Chosen over step sizes 0.003, 0.01, 0.03 and entropy weights 0, 0.01, 0.03, 0.1, 10 seeds each, on the
    mnist1d-arch table at budgets 50, 100, 200 (the finalists also on the synthetic objective of the tests):
    0.03 collapsed onto a few configurations unless the bonus was 0.1, and was then no better; 0.003 learned too
    slowly for budget 50 (median best 0.881 against 0.908 on the table) and was no better at 100 and 200;
    (0.01, 0.03) was best or within noise of the best everywhere. The baseline's decay of 0.95 averages roughly
    the last 20 rewards: a stable reference that still follows a controller improving within the budget (0.99
    was worse on the table, 0.9 within noise).
    """
    generator = torch.Generator().manual_seed(seed)
    controller = Controller(search.space, config.hidden_size, config.init_range, generator)
    optimizer = torch.optim.Adam(controller.parameters(), lr=config.learning_rate)
    ema_sum = ema_weight = 0.0  # b = ema_sum / ema_weight: the bias-corrected moving average of earlier rewards
    try:
        while True:
            losses = []
            for _ in range(config.batch_size):
                sampled, log_prob, entropy = controller.sample(generator)
                R = search.evaluate(sampled).val_accuracy
                b = ema_sum / ema_weight if ema_weight else R  # no earlier reward: this sample teaches nothing yet
                losses.append(-(R - b) * log_prob - config.entropy_coef * entropy)
                ema_sum = config.baseline_decay * ema_sum + (1 - config.baseline_decay) * R
                ema_weight = config.baseline_decay * ema_weight + (1 - config.baseline_decay)
            loss = torch.stack(losses).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    except BudgetExhausted:
        return

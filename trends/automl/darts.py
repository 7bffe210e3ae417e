"""DARTS, first order, over the ``mnist1d-arch`` space.

Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019 (arXiv:1806.09055). DARTS replaces
each discrete choice by a softmax over its options, weighted by architecture parameters alpha, trains one
super-network holding every option, and reads the architecture off as the argmax of alpha. The bilevel problem
(eq. 3-4 of the paper)

    min_alpha L_val(w*(alpha), alpha)   s.t.   w*(alpha) = argmin_w L_train(w, alpha)

is solved by alternating one step on alpha and one on w (Algorithm 1). This is the paper's "DARTS (first order)":
the alpha gradient is taken at the current w (xi = 0 in eq. 7), which the paper found 4x cheaper for a small loss
of accuracy. As in the paper, the *training* split is cut in two halves, one for w and one for alpha; the
validation and test splits are never touched, they score the final architecture through the tabular benchmark.

The relaxation. ``mnist1d-arch`` is a chain, not DARTS's cell DAG: up to three slots, each a conv or dense layer
or ``stop``, with conditional decisions (a kernel only for a conv, ``stop`` ends the network, no conv after a
dense layer). One alpha vector per decision of the space (``layer2_type``, ``layer2_width``...), one shared by the
conv and the dense branch where the space has one decision for both (width, skip). The super-network is the
expectation of the network over the distribution those alphas define, the one a masked controller samples from:
each decision's option drawn from the softmax of its alphas over the options the space still allows.

- Width, kernel, skip: DARTS's mixed operation, o(x) = sum_o softmax(alpha)_o o(x), each option with its own
  weights. Width w of a slot is computed by its own layers (``Conv1d(W, w, k)`` or ``Linear(W, w)``, W the widest
  option) and zero-padded to W before the mix, so the next slot reads one W-wide tensor and its weights are shared
  by the previous slot's widths (a narrower input uses the first channels of the same kernel). A skip adds the
  identity when the input's width equals w and a bias-free projection otherwise (trends.models' residual); since
  the input's width is itself mixed, the identity is weighted by P(previous width = w) and the projection by
  the rest.
- Layer type: the types are not mixed slot by slot (a conv would then read a map a dense layer had already left,
  and a slot after ``stop`` would still compute), but through the two *phases* a network can be in: after slot k
  it is still convolving (all of slots 1..k are convs; probability pi_conv, feature map M_k), or is in its dense
  part (pi_dense, vector D_k), or has stopped. From the conv phase slot k+1 goes conv / dense / stop with
  softmax(alpha_type); from the dense phase conv is masked, so dense / stop with the softmax of those two alphas;
  stopping is absorbing. A conv slot reads only M (so only the all-conv prefix feeds it), a dense slot reads the
  phase-weighted mean of its two possible inputs, the pooled conv map P_k = mean_L M_k (the flattened signal for
  slot 1) and D_k; the classifier reads F = sum over stopping points of P(stop there) * the vector there. Every
  weight in this sum is the probability of a set of valid architectures of the space, they sum to one, and a
  one-hot alpha makes the super-network exactly that one architecture, with its weights slices of the
  super-network's (tests/test_darts.py checks this against trends.models.build_network).
- Decoding walks the space with its own masks (``valid_options``, ``choose``), taking the highest alpha among the
  allowed options: the same masked softmax the relaxation uses, and always a valid canonical configuration.

Optimisers. w: Adam at ARCH_RECIPE's learning rate (the paper uses SGD with momentum on CIFAR-10; Adam is what
every architecture of the table is trained with, and a few hundred steps must suffice here). alpha: Adam with the
paper's betas (0.5, 0.999) and weight decay 1e-3, but a learning rate of 1e-2, not 3e-4: Adam moves a parameter by
about its learning rate per step, and the paper's 50 epochs of CIFAR-10 are ~19,500 alpha steps (up to ~6 in
logit), where 20 epochs here are 500 (3e-4 would allow 0.15, leaving every softmax within a few hundredths of
uniform; 1e-2 allows 5). Measured on the table over seeds 0-9, 20 epochs: arch_lr 1e-2 picks architectures of
validation accuracy median 0.887 / mean 0.841, 3e-4 median 0.886 / mean 0.803 (table median 0.738, best 0.930).

Known failure, DARTS's bias to what learns fastest: early on, the dense branch on the raw signal fits faster than
the convolutions, and alpha reads that head start as a preference. With 10 epochs most seeds pick an MLP (the
worst family of the table, <= 0.585); with 20, one seed in ten does (seed 7). Freezing alpha for the first
10 of 25 epochs (PC-DARTS's warm-up) did not help: it favoured shallow networks (4 seeds: mean 0.66-0.69).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trends.automl.space import ARCH_KERNELS, ARCH_MAX_LAYERS, ARCH_WIDTHS, Config, SearchSpace, get_space
from trends.data import load_dataset
from trends.training import TORCH_THREADS, resolve_device

SPACE = "mnist1d-arch"  # the one space this relaxation mirrors
MAX_WIDTH = max(ARCH_WIDTHS)  # channels / features every mixed tensor is zero-padded to
ALPHA_INIT_SCALE = 1e-3  # alphas start as 1e-3 * N(0, 1), as in the paper's code: nearly uniform choices
ARCH_BETAS = (0.5, 0.999)  # Adam's betas for alpha, the paper's


@dataclass(frozen=True)
class DartsConfig:
    """Hyper-parameters of a DARTS search. The defaults take ~11 s on one free core of the 2-core machine that built
    the table, about 7.5 ARCH_RECIPE trainings of architectures drawn uniformly from the space (1.5 s mean)."""

    epochs: int = 20  # passes over the weight half of the training split (fewer: alpha tends to pick an MLP)
    batch_size: int = 64  # samples per weight step and per architecture step
    weight_lr: float = 3e-3  # Adam's step size for the super-network's weights w (ARCH_RECIPE's)
    arch_lr: float = 1e-2  # Adam's step size for alpha (the paper's 3e-4 scaled to ~40x fewer steps: module doc)
    arch_weight_decay: float = 1e-3  # L2 penalty on alpha (the paper's)
    seed: int = 0  # initial weights and alphas, the halving of the training split, the batch order

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("weight_lr", "arch_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.arch_weight_decay < 0:
            raise ValueError(f"arch_weight_decay must be non-negative, got {self.arch_weight_decay}")


@dataclass(frozen=True)
class DartsResult:
    """What a search found and what it cost."""

    config: Config  # the decoded architecture: canonical, valid in the space
    alphas: dict[str, list[float]]  # softmax(alpha) of every decision, over all its options in the space's order
    seconds: float  # wall time of the super-network's search (data loading excluded)
    epochs: int
    history: list[tuple[float, float, float]] = field(default_factory=list)  # per epoch: (train loss, alpha-split
    # loss, alpha-split accuracy), means over the epoch's batches, each measured before its step


# -- the super-network ------------------------------------------------------------------------------------------


def pad_width(x: torch.Tensor) -> torch.Tensor:
    """Zero-pad dimension 1 (channels or features) to MAX_WIDTH."""
    return F.pad(x, (0, 0) * (x.dim() - 2) + (0, MAX_WIDTH - x.shape[1]))


class MixedLayer(nn.Module):
    """One slot's conv or dense branch: a layer per (width, kernel) option and, from slot 2 on, a bias-free
    projection per width for the skip. Its output is the alpha-weighted mix of the options, zero-padded to MAX_WIDTH."""

    def __init__(self, kind: str, in_width: int, skip: bool) -> None:
        super().__init__()
        self.kernels: tuple[int, ...] = ARCH_KERNELS if kind == "conv" else (1,)

        def layer(width: int, kernel: int, bias: bool = True) -> nn.Module:
            if kind == "conv":
                return nn.Conv1d(in_width, width, kernel, padding=kernel // 2, bias=bias)
            return nn.Linear(in_width, width, bias=bias)

        self.ops = nn.ModuleDict({f"w{w}k{k}": layer(w, k) for w in ARCH_WIDTHS for k in self.kernels})
        self.projections = nn.ModuleDict({f"w{w}": layer(w, 1, bias=False) for w in ARCH_WIDTHS}) if skip else None

    def forward(
        self,
        x: torch.Tensor,
        p_width: torch.Tensor,
        p_kernel: torch.Tensor | None,
        p_skip: torch.Tensor | None,
        p_in_width: torch.Tensor | None,
    ) -> torch.Tensor:
        """``x`` mixed over the options: ``p_width``, ``p_kernel`` (conv only) and ``p_skip`` (False, True) are
        softmax(alpha) of the slot's decisions, ``p_in_width`` is P(x's width = each option), the previous slot's."""
        out = x.new_zeros(())
        for i, width in enumerate(ARCH_WIDTHS):
            y = sum(
                (1.0 if p_kernel is None else p_kernel[j]) * F.relu(self.ops[f"w{width}k{kernel}"](x))
                for j, kernel in enumerate(self.kernels)
            )
            if self.projections is not None:
                assert p_skip is not None and p_in_width is not None
                shortcut = p_in_width[i] * x[:, :width] + (1 - p_in_width[i]) * self.projections[f"w{width}"](x)
                y = y + p_skip[1] * shortcut
            out = out + p_width[i] * pad_width(y)
        return out


class SuperNet(nn.Module):
    """The relaxation of ``mnist1d-arch`` (module docstring) for signals of ``in_channels x length``.

    :attr:`alphas` holds one architecture vector per decision of the space, named like it; every other parameter
    is a weight w (:meth:`weights`).
    """

    def __init__(self, space: SearchSpace, in_channels: int, length: int, n_classes: int) -> None:
        super().__init__()
        self.alphas = nn.ParameterDict(
            {d.name: nn.Parameter(ALPHA_INIT_SCALE * torch.randn(len(d.options))) for d in space.decisions}
        )
        slots = range(1, ARCH_MAX_LAYERS + 1)
        self.convs = nn.ModuleList(MixedLayer("conv", in_channels if k == 1 else MAX_WIDTH, k > 1) for k in slots)
        self.denses = nn.ModuleList(
            MixedLayer("dense", in_channels * length if k == 1 else MAX_WIDTH, k > 1) for k in slots
        )
        self.head = nn.Linear(MAX_WIDTH, n_classes)

    def weights(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("alphas.")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = {name: alpha.softmax(0) for name, alpha in self.alphas.items()}
        conv_map = x  # M_0: the conv phase's feature map
        conv_vector = x.flatten(1)  # P_0: what a dense layer reads from the conv phase (flattened, before any conv)
        dense_vector = x.new_zeros(())  # D_0: there is no dense phase before slot 1
        pi_conv, pi_dense = x.new_ones(()), x.new_zeros(())  # P(conv phase), P(dense phase) after the slot before
        final = x.new_zeros(())  # F: the classifier's input, summed over the points where the network stops
        for k in range(1, ARCH_MAX_LAYERS + 1):
            alpha_type = self.alphas[f"layer{k}_type"]  # (conv, dense) for k = 1, else (conv, dense, stop)
            p_type = p[f"layer{k}_type"]
            p_from_dense = alpha_type[1:].softmax(0) if k > 1 else x.new_ones(1)  # conv masked: (dense, stop)
            if k > 1:  # stop here: the classifier reads the vector of the phase the network is in
                final = final + pi_conv * p_type[2] * conv_vector + pi_dense * p_from_dense[1] * dense_vector
            to_dense_from_conv, to_dense_from_dense = pi_conv * p_type[1], pi_dense * p_from_dense[0]
            next_pi_dense = to_dense_from_conv + to_dense_from_dense
            dense_input = (to_dense_from_conv * conv_vector + to_dense_from_dense * dense_vector) / next_pi_dense.clamp(
                min=torch.finfo(x.dtype).tiny
            )
            p_width, p_skip = p[f"layer{k}_width"], p.get(f"layer{k}_skip")
            p_in_width = p[f"layer{k - 1}_width"] if k > 1 else None
            dense_vector = self.denses[k - 1](dense_input, p_width, None, p_skip, p_in_width)
            conv_map = self.convs[k - 1](conv_map, p_width, p[f"layer{k}_kernel"], p_skip, p_in_width)
            conv_vector = conv_map.mean(dim=2)  # the global average pool
            pi_conv, pi_dense = pi_conv * p_type[0], next_pi_dense
        final = final + pi_conv * conv_vector + pi_dense * dense_vector  # the deepest networks end after the last slot
        return self.head(final)


def decode(space: SearchSpace, alphas: Mapping[str, Sequence[float] | torch.Tensor]) -> Config:
    """The architecture ``alphas`` choose: decision by decision, the option with the highest alpha among those the
    space allows after the choices made so far (a valid canonical configuration whatever the alphas)."""
    config: Config = {}
    while (i := space.next_decision(config)) is not None:
        name = space.decisions[i].name
        scores = np.asarray(torch.as_tensor(alphas[name], dtype=torch.float64).detach().cpu())
        config = space.choose(config, int(np.argmax(np.where(space.valid_options(config), scores, -np.inf))))
    return space.canonical(config)


# -- the search -------------------------------------------------------------------------------------------------


def search_darts(
    space: SearchSpace | None = None,
    config: DartsConfig = DartsConfig(),
    device: str = "cpu",
    log: Callable[[int, dict[str, float]], None] | None = None,
) -> DartsResult:
    """Search ``space`` (``mnist1d-arch``, the default; ValueError for any other) with first-order DARTS.

    :param log: called after every epoch with the epoch number and ``losses/``, ``charts/`` and ``alphas/`` values
    """
    space = get_space(SPACE) if space is None else space
    if space.name != SPACE:
        raise ValueError(f"DARTS relaxes only the {SPACE!r} space, got {space.name!r}")
    torch.set_num_threads(TORCH_THREADS)
    device_ = resolve_device(device)
    data = load_dataset(space.dataset)
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):  # the caller's random numbers stay as they were
        torch.manual_seed(config.seed)
        model = SuperNet(space, data.sample_shape[0], data.sample_shape[1], data.n_classes).to(device_)
    x = torch.tensor(data.x_train, device=device_)
    y = torch.tensor(data.y_train, device=device_)
    order = torch.randperm(len(y), generator=generator).to(device_)
    train_half, alpha_half = order[: len(y) // 2], order[len(y) // 2 :]  # w learns on one half, alpha on the other
    weights, alphas = model.weights(), list(model.alphas.values())
    weight_optimizer = torch.optim.Adam(weights, lr=config.weight_lr)
    arch_optimizer = torch.optim.Adam(
        alphas, lr=config.arch_lr, betas=ARCH_BETAS, weight_decay=config.arch_weight_decay
    )

    history: list[tuple[float, float, float]] = []
    for epoch in range(1, config.epochs + 1):
        train_batches = train_half[torch.randperm(len(train_half), generator=generator).to(device_)]
        alpha_batches = alpha_half[torch.randperm(len(alpha_half), generator=generator).to(device_)]
        train_loss = val_loss = 0.0
        train_seen = val_seen = val_correct = 0
        for train_batch, alpha_batch in zip(
            train_batches.split(config.batch_size), alpha_batches.split(config.batch_size), strict=False
        ):
            # Algorithm 1, step 1: alpha descends grad_alpha L_val(w, alpha), at the current w (first order)
            logits = model(x[alpha_batch])
            loss_val = F.cross_entropy(logits, y[alpha_batch])
            arch_optimizer.zero_grad(set_to_none=True)
            loss_val.backward(inputs=alphas)
            arch_optimizer.step()
            val_loss += loss_val.item() * len(alpha_batch)
            val_seen += len(alpha_batch)
            val_correct += int((logits.argmax(dim=1) == y[alpha_batch]).sum())
            # Algorithm 1, step 2: w descends grad_w L_train(w, alpha)
            loss_train = F.cross_entropy(model(x[train_batch]), y[train_batch])
            weight_optimizer.zero_grad(set_to_none=True)
            loss_train.backward(inputs=weights)
            weight_optimizer.step()
            train_loss += loss_train.item() * len(train_batch)
            train_seen += len(train_batch)
        history.append((train_loss / train_seen, val_loss / val_seen, val_correct / val_seen))
        if log is not None:
            log(epoch, _log_values(space, model, history[-1]))

    chosen = decode(space, model.alphas)
    seconds = time.perf_counter() - start
    probabilities = {name: model.alphas[name].detach().softmax(0).tolist() for name in space.names}
    return DartsResult(chosen, probabilities, seconds, config.epochs, history)


def _log_values(space: SearchSpace, model: SuperNet, stats: tuple[float, float, float]) -> dict[str, float]:
    train_loss, val_loss, val_accuracy = stats
    values = {"losses/train_loss": train_loss, "losses/alpha_loss": val_loss, "charts/alpha_accuracy": val_accuracy}
    for decision in space.decisions:
        probabilities = model.alphas[decision.name].detach().softmax(0)
        entropy = -float((probabilities * probabilities.log()).sum()) / math.log(len(decision.options))
        values[f"charts/{decision.name}_entropy"] = entropy  # 1 while undecided, 0 once one-hot
        for option, probability in zip(decision.options, probabilities.tolist(), strict=True):
            values[f"alphas/{decision.name}={option}"] = probability
    return values

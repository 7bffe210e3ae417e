"""What a model costs: parameters, multiply-accumulates, bytes on disk and CPU latency, measured the same way for
a float32 network, its float16 and int8 copies, a pruned network and a Stable-Baselines3 policy.

The compression environments reward a smaller or faster model, so the four costs are measured here once, the
same way for every model, rather than guessed from a configuration:

- ``parameters`` counts every parameter element; ``nonzero_parameters`` only those that are not zero, which is
  what unstructured pruning lowers (the tensor keeps its shape, so the plain count does not move).
- ``flops`` are multiply-accumulates of one sample, counted by forward hooks on the layers that do the work
  (linear and convolution layers, int8 dynamic linears included), so they follow the path the model takes.
- ``size_bytes`` is the length of ``torch.save(model.state_dict())``: what a checkpoint takes, whatever the
  weights' type (a quantized state dict stores packed int8 weights and their scales).
- ``latency_ms`` is the wall-clock time of one forward call per batch size, in the conditions of a deployed
  small model: one torch thread, eval mode, no autograd.

To measure a Stable-Baselines3 agent, measure the network that maps an observation to the action's
parameters: ``measure(policy_module(ppo), ppo.observation_space.shape)`` (see :func:`policy_module`).
"""

from __future__ import annotations

import copy
import io
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.ao.nn.quantized import dynamic as quantized_dynamic

from trends.models import count_flops

TORCH_THREADS = 1  # small models run fastest on one thread; more threads only add contention on a shared CPU
WARMUP_CALLS = 3  # untimed calls first: the first calls allocate buffers and pick kernels
DEFAULT_REPEATS = 30
DEFAULT_BATCH_SIZES = (1, 256)  # a single decision (an agent acting) and a throughput batch (evaluation)
MAX_TIMED_SECONDS = 2.0  # stop timing one batch size early past this, so a large model cannot stall a search


@dataclass(frozen=True)
class Latency:
    """Wall-clock milliseconds of one forward call on ``batch_size`` samples."""

    batch_size: int
    median_ms: float  # the reported figure: unlike the mean, one call delayed by the OS does not move it
    min_ms: float  # the best the machine did: closest to the model's own cost
    max_ms: float  # the worst: how noisy the measurement was
    calls: int  # timed calls the figures come from

    @property
    def per_sample_ms(self) -> float:
        return self.median_ms / self.batch_size


@dataclass(frozen=True)
class ModelMeasure:
    """The costs of one model (see the module docstring for how each is measured)."""

    parameters: int  # parameter elements, all of them
    nonzero_parameters: int  # parameter elements that are not zero (lower than ``parameters`` after pruning)
    flops: int  # multiply-accumulates of one forward pass of one sample
    size_bytes: int  # length of the saved state dict
    latency: tuple[Latency, ...]  # one per batch size, in the order asked for

    def latency_at(self, batch_size: int) -> Latency:
        for latency in self.latency:
            if latency.batch_size == batch_size:
                return latency
        raise KeyError(
            f"no latency measured at batch size {batch_size}; measured {[m.batch_size for m in self.latency]}"
        )


def measure(
    model: nn.Module,
    sample_shape: tuple[int, ...],
    repeats: int = DEFAULT_REPEATS,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
) -> ModelMeasure:
    """Parameters, FLOPs, bytes on disk and latency of ``model`` on float32 samples shaped ``sample_shape``
    (without the batch dimension; a model that wants another input type casts it itself, as
    :func:`trends.compression.quantize.to_float16` does). The model's training mode and torch's thread count are
    restored afterwards.

    :param repeats: timed calls per batch size; the median is reported, with the minimum and maximum beside it
    :param batch_sizes: the batch sizes to time; per-sample cost usually falls sharply with the batch size on a
        CPU, so a single-decision figure and a batch figure answer different questions
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if any(b < 1 for b in batch_sizes):
        raise ValueError(f"batch sizes must be positive, got {tuple(batch_sizes)}")
    sample_shape = tuple(sample_shape)
    parameters = [*model.parameters(), *_packed_weights(model)]
    was_training, threads = model.training, torch.get_num_threads()
    try:
        model.eval()
        torch.set_num_threads(TORCH_THREADS)
        with torch.no_grad():
            flops = count_flops(model, sample_shape)
            latency = tuple(_time_forward(model, sample_shape, b, repeats) for b in batch_sizes)
    finally:
        model.train(was_training)
        torch.set_num_threads(threads)
    return ModelMeasure(
        parameters=sum(p.numel() for p in parameters),
        nonzero_parameters=sum(int(torch.count_nonzero(p.dequantize() if p.is_quantized else p)) for p in parameters),
        flops=flops,
        size_bytes=state_dict_bytes(model),
        latency=latency,
    )


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: the checkpoint a deployed model ships as."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def _time_forward(model: nn.Module, sample_shape: tuple[int, ...], batch_size: int, repeats: int) -> Latency:
    """Median, min and max of ``repeats`` timed calls after ``WARMUP_CALLS`` untimed ones, on a fixed random
    batch (random rather than zeros: some kernels take shortcuts on zeros). ``time.perf_counter`` is the
    highest-resolution monotonic clock Python has."""
    x = torch.randn((batch_size, *sample_shape), generator=torch.Generator().manual_seed(0)).to(_device(model))
    for _ in range(WARMUP_CALLS):
        model(x)
    times: list[float] = []
    budget_end = time.perf_counter() + MAX_TIMED_SECONDS
    while len(times) < repeats:
        start = time.perf_counter()
        model(x)
        end = time.perf_counter()
        times.append((end - start) * 1e3)
        if end > budget_end:
            break
    return Latency(batch_size, statistics.median(times), min(times), max(times), len(times))


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _packed_weights(model: nn.Module) -> list[torch.Tensor]:
    """The weights and biases of int8 dynamic linear layers, which hold them packed rather than as parameters."""
    tensors = []
    for module in model.modules():
        if isinstance(module, quantized_dynamic.Linear):
            bias = module.bias()
            tensors += [module.weight()] + ([bias] if bias is not None else [])
    return tensors


class PolicyNetwork(nn.Module):
    """The actor of a Stable-Baselines3 actor-critic policy (PPO, A2C...) as a plain module: observation batch in,
    action logits (discrete actions) or action means (continuous actions) out. It is what runs when the agent
    acts, so it is what compression should measure and shrink; the critic is only needed to train.

    It holds the policy's feature extractor, actor MLP and action head as its own submodules, so a quantized or
    pruned copy of it is the compressed actor, and keeps a reference to the policy, unregistered, only for
    SB3's observation preprocessing (float cast, image scaling, one-hot encoding of discrete observations).
    """

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        if not getattr(policy, "share_features_extractor", True):
            raise ValueError("policy_module supports a policy whose actor and critic share the feature extractor")
        self.features_extractor = policy.features_extractor
        self.policy_net = policy.mlp_extractor.policy_net
        self.action_net = policy.action_net
        self._policy = (policy,)  # a tuple so that nn.Module does not register the critic's parameters

    def __deepcopy__(self, memo: dict[int, Any]) -> PolicyNetwork:
        """A copy of the actor that shares the policy reference: the quantizers copy the actor, and copying the
        policy too would copy the critic and the optimizer, and fail on a model trained in this process (its last
        action distribution is part of an autograd graph, which refuses to be deep-copied)."""
        memo[id(self._policy)] = self._policy
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        clone.__dict__.update({key: copy.deepcopy(value, memo) for key, value in self.__dict__.items()})
        return clone

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        features = self._policy[0].extract_features(observation, self.features_extractor)
        return self.action_net(self.policy_net(features))


def policy_module(agent: object) -> nn.Module:
    """The network a Stable-Baselines3 agent (or its ``.policy``) acts with, as a module from an observation
    batch to the action's parameters: the actor of an actor-critic policy (:class:`PolicyNetwork`), or the
    Q-network of a DQN (its greedy action is the argmax). Duck-typed, so that ``trends`` does not import
    Stable-Baselines3. Measure it on observation-shaped samples::

        measure(policy_module(ppo), ppo.observation_space.shape)
    """
    policy = getattr(agent, "policy", agent)
    if hasattr(policy, "q_net"):
        return policy.q_net
    if hasattr(policy, "mlp_extractor") and hasattr(policy, "action_net"):
        return PolicyNetwork(policy)
    raise TypeError(
        f"cannot find an actor in {type(policy).__name__}; pass an SB3 actor-critic (PPO, A2C) or DQN agent or policy"
    )

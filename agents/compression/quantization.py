"""Quantize a trained network of the compression zoo: a mixed-precision policy found by HAQ's RL agent under a size
budget, a uniform bit width, or one of torch's real formats; :func:`quantize_model`.

=============  ==================================================================================================
``rl``         HAQ (Wang et al. 2019): an SB3 agent chooses each layer's bits in ``trendgym/Quantization-v0`` under
               ``size_budget``; the policy of best validation accuracy found during the search is kept
``uniform``    the same bits in every layer, the most the size budget allows: HAQ's baseline for its agent
``random``     random search under the same budget: every layer's action uniform (Optuna's RandomSampler)
``tpe``        Optuna's TPE over one action per layer, one trial per episode
``uniform8``   8 bits in every layer, whatever the budget (0.25 of float32)
``fp16``       float16 weights (:func:`~trends.compression.quantize.to_float16`): a real format, half the bytes
``int8``       torch's dynamic int8 quantization of the linear layers: real int8 kernels
=============  ==================================================================================================

The k-bit methods (all but ``fp16`` and ``int8``) are simulated, as in HAQ's accuracy search: the weights are
quantized and stored back as float32 (:func:`~trends.compression.quantize.fake_quantize`), so their reported size
is the packed size the bits stand for, while their latency is the float32 network's.

Why TD3 on the continuous action by default, not PPO on the ``Discrete(8)`` one: HAQ's agent is DDPG on a
continuous action mapped to bits, and an off-policy agent fits a search of a few hundred episodes (each
transition is replayed many times, where PPO would spend a rollout per update); TD3 is DDPG with its
over-estimation fixed. It is the same agent, code path and hyper-parameter format as the pruning search's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.compression.pruning import DEFAULT_EPISODES
from agents.compression.report import Report, Row, measured_row
from agents.compression.search import (
    ALGOS,
    TORCH_THREADS,
    Progress,
    best_episode,
    check_choice,
    check_episodes,
    log_search,
    open_run,
    record_run,
    say,
    search,
)
from envs.compression.quantization_env import DEFAULT_BUDGET, QuantizationEnv
from trends.compression.distill import accuracy
from trends.compression.quantize import (
    MAX_BITS,
    MIN_BITS,
    fake_quantize,
    quantized_size_bytes,
    to_float16,
    to_int8_dynamic,
)
from trends.compression.zoo import DEFAULT_CACHE, ZOO

ENV_ID = "trendgym/Quantization-v0"
SEARCH_METHODS = ("rl", "uniform", "random", "tpe")  # played in the env, under the size budget
FIXED_METHODS = ("uniform8", "fp16", "int8")  # a fixed rule; no budget, no search
METHODS = SEARCH_METHODS + FIXED_METHODS
SIMULATED_NOTE = "simulated {}: weights stored as float32 at run time"


@dataclass
class QuantizationOutcome:
    """A quantization: the report, the bits chosen (None for fp16 and int8) and what the network scores."""

    report: Report  # the float32 original, then the quantized network
    bits: tuple[int, ...] | None  # one width per quantizable layer; None for fp16 and int8
    model: nn.Module
    val_accuracy: float
    test_accuracy: float
    size_bytes: int  # packed bits for the simulated methods, the saved state dict for fp16 and int8
    size_ratio: float  # k-bit: of the float32 weights' bytes (the budget's measure); fp16, int8: of the saved original
    episodes: list[Any] = field(default_factory=list)  # the search's episodes (EpisodeResult), in order
    run_dir: Path | None = None


def uniform_bits_action(env: QuantizationEnv) -> Any:
    """The action that gives every layer the most bits the size budget allows (HAQ's uniform baseline), in the
    env's action space: the middle of that width's interval for the continuous action."""
    env = getattr(env, "unwrapped", env)
    n = len(env.layers)
    bits = max((b for b in range(MIN_BITS, MAX_BITS + 1) if env.size_bytes([b] * n) <= env.budget_bytes), default=1)
    if env.continuous:
        return np.array([(bits - MIN_BITS + 0.5) / MAX_BITS], dtype=np.float32)
    return bits - MIN_BITS


def quantize_model(
    model: str = "mnist1d-cnn",
    method: str = "rl",
    size_budget: float = DEFAULT_BUDGET,
    algo: str = "td3",
    episodes: int = DEFAULT_EPISODES,
    seed: int = 0,
    tensorboard_log: Path | None = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> QuantizationOutcome:
    """Quantize the zoo network ``model`` with ``method`` (see the module docstring). The search methods keep the
    weights within ``size_budget`` of the float32 size and play ``episodes`` episodes (``uniform`` one), the
    policy of best validation accuracy kept; ``algo`` is the RL agent's (``rl`` only). With ``tensorboard_log``,
    a run folder ``<tensorboard_log>/<algo or method>/Quantization-v0_<n>`` gets ``config.yml`` and the episodes'
    ``compress/val_accuracy`` and ``compress/size_ratio`` (the fixed methods search nothing and log nothing).
    ValueError (one line) for a bad argument."""
    check_choice(method, METHODS, "quantization method")
    check_choice(algo, ALGOS, "algorithm")
    check_choice(model, tuple(ZOO), "model")
    episodes = check_episodes(episodes)
    torch.set_num_threads(TORCH_THREADS)
    env = QuantizationEnv(model=model, size_budget=size_budget, continuous=True, cache_dir=cache_dir or DEFAULT_CACHE)
    say(
        progress,
        f"quantizing {model}: {method}" + (f" under {size_budget:g} of float32" if method in SEARCH_METHODS else ""),
    )
    if method in FIXED_METHODS:
        return _fixed(env, method)
    run_dir = open_run(tensorboard_log, method, algo, ENV_ID)
    config = {"env": ENV_ID, "env_kwargs": {"continuous": True}, "model": model, "size_budget": size_budget}
    config.update(method=method, algo=algo if method == "rl" else None, episodes=episodes, seed=seed)
    record_run(run_dir, config, {})  # first, so that an interrupted search still says what it was
    settings = search(env, ENV_ID, method, algo, len(env.free), episodes, seed, run_dir, uniform_bits_action)
    best = best_episode(env.history)
    quantized = fake_quantize(env.network, best.bits)
    outcome = _outcome(env, method, quantized, best.bits, best.val_accuracy, best.test_accuracy)
    outcome.episodes, outcome.run_dir = list(env.history), run_dir
    final = {"final_val_accuracy": best.val_accuracy, "final_test_accuracy": best.test_accuracy}
    log_search(run_dir, env.history, ("val_accuracy", "size_ratio"), {**final, "final_size_ratio": best.size_ratio})
    record_run(run_dir, {**config, "settings": settings}, {"bits": list(best.bits), **final})
    say(progress, f"{method}: bits {best.bits}, val {best.val_accuracy:.3f}, test {best.test_accuracy:.3f}")
    return outcome


def _fixed(env: QuantizationEnv, method: str) -> QuantizationOutcome:
    """uniform8, fp16 or int8: no search."""
    network = env.network
    if method == "uniform8":
        bits = (MAX_BITS,) * len(env.layers)
        quantized = fake_quantize(network, bits)
    else:
        bits = None
        quantized = to_float16(network) if method == "fp16" else to_int8_dynamic(network)
    data = env.dataset
    val, test = accuracy(quantized, data.x_val, data.y_val), accuracy(quantized, data.x_test, data.y_test)
    return _outcome(env, method, quantized, bits, val, test)


def _outcome(
    env: QuantizationEnv, method: str, quantized: nn.Module, bits: Sequence[int] | None, val: float, test: float
) -> QuantizationOutcome:
    """The report (float32 original, then ``quantized``) and the outcome of a quantization."""
    shape = env.dataset.sample_shape
    original = measured_row("original fp32", env.network, shape, env.original_test_accuracy)
    row = _row(method, quantized, shape, bits, test)
    title = f"Quantizing {env.model_name} ({method})"
    report = Report(title, "test accuracy", [original, row])
    return QuantizationOutcome(
        report=report,
        bits=tuple(int(b) for b in bits) if bits is not None else None,
        model=quantized,
        val_accuracy=val,
        test_accuracy=test,
        size_bytes=row.size_bytes,
        size_ratio=row.size_bytes / (env.float_bytes if bits is not None else original.size_bytes),
        run_dir=None,
    )


def _row(method: str, quantized: nn.Module, shape: tuple[int, ...], bits: Sequence[int] | None, test: float) -> Row:
    if bits is None:
        note = "real float16 weights" if method == "fp16" else "real int8 linear layers, convolutions float32"
        return measured_row(method, quantized, shape, test, note=note)
    widths = sorted(set(bits))
    described = f"{widths[0]}-bit" if len(widths) == 1 else f"{'/'.join(map(str, bits))} bits"
    size = quantized_size_bytes(quantized, list(bits))
    return measured_row(method, quantized, shape, test, note=SIMULATED_NOTE.format(described), size_bytes=size)

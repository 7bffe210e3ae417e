"""A trained agent's policy stored in fewer bits, acting as the agent did: float16 and int8 copies of the actor,
the table that weighs what they save against what they lose, and an ONNX file of the actor for deployment.

Only the actor is compressed (:func:`trends.compression.measure.policy_module`): it is what runs when an agent
acts; the critic is needed only to train. A :class:`CompressedPolicy` has the SB3-style ``predict`` every
evaluation, viewer and benchmark here calls, and acts exactly as ``model.predict(deterministic=True)`` would on the
same observation (bit for bit in ``fp32``): observations normalised with the run's frozen VecNormalize statistics,
SB3's preprocessing, the argmax of the logits for ``Discrete`` actions, the Gaussian mean clipped to the ``Box``.

It acts deterministically only. A stochastic action needs the action distribution's spread (the state-independent
``log_std`` of a Box policy), which is not part of the actor module and so not of the compressed model; sampling
would also make the fp32 / fp16 / int8 comparison a comparison of random draws. Evaluation is deterministic by
default everywhere in trendgym, so ``deterministic=False`` is refused rather than silently ignored.

ONNX: :func:`export_onnx` writes the actor with the observation normalisation baked in as constants, so the ONNX
model maps a raw observation to logits (``Discrete``) or the action mean (``Box``). It uses torch's TorchScript
exporter (``dynamo=False``), which needs the ``onnx`` package only, where the default ``torch.export`` exporter
also needs ``onnxscript``; a policy network is a straight line of linear layers, exactly what tracing handles.
``onnx`` and ``onnxruntime`` are an optional extra (``export`` in setup.cfg); :func:`check_onnx_export` refuses an
export they are missing for before anything is computed, with the install command that brings them.
"""

from __future__ import annotations

import copy
import importlib
import io
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn

from agents.cli import command
from agents.compression.report import Report, Row, measured_row
from agents.evaluation import EvaluationResult, Policy, env_of_run, evaluate
from agents.runs import LoadedAgent, load_agent
from agents.seeds import TEST_SEED, test_seeds
from trends.compression.measure import PolicyNetwork, policy_module
from trends.compression.quantize import to_float16, to_int8_dynamic
from trends.files import atomic_write

POLICY_FORMATS = ("fp32", "fp16", "int8")
FORMAT_NOTES = {
    "fp32": "original",
    "fp16": "float16 weights, float32 compute",
    "int8": "int8 dynamic linear layers",
}
QUANTIZERS = {"fp16": to_float16, "int8": to_int8_dynamic}
ONNX_FORMATS = ("fp32", "int8")  # see export_onnx: int8 through onnxruntime's quantizer; no float16 storage
ONNX_OPSET = 17  # supported by every onnxruntime since 1.15
# What an ONNX export of each format imports: torch's exporter serialises the graph with onnx; int8 is quantized by
# onnxruntime. Both are setup.cfg's extra "export".
ONNX_PACKAGES = {"fp32": ("onnx",), "int8": ("onnx", "onnxruntime")}
BOX_AGREEMENT_TOLERANCE = 0.05  # Box actions "agree" when within 5% of the action range on every dimension

AgentLike = LoadedAgent | BaseAlgorithm


@dataclass
class CompressedPolicy:
    """An agent's actor in one of :data:`POLICY_FORMATS`, acting as the agent does (deterministically).

    An int8 actor quantizes its activations with a scale computed from each call's batch, so its action on an
    observation can differ between a call on that observation alone and a call on a batch holding it; fp32 and fp16
    actions do not depend on the batch (beyond float rounding).
    """

    actor: nn.Module  # observation batch -> logits (Discrete) or action mean (Box), in ``format``
    format: str  # "fp32" (the agent's own actor, shared, not copied, unless on a GPU), "fp16" or "int8"
    policy: Any  # the agent's SB3 policy: its observation parsing (shape checks, batching) and spaces
    vecnormalize: VecNormalize | None  # the run's frozen observation statistics, or None

    @property
    def observation_space(self) -> spaces.Space:
        return self.policy.observation_space

    @property
    def action_space(self) -> spaces.Space:
        return self.policy.action_space

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """The action ``model.predict(observation, deterministic=True)`` would take, computed by the compressed
        actor; one observation or a batch, as SB3 accepts them. ``state`` and ``episode_start`` are accepted for
        the SB3 signature and ignored (the actor is not recurrent)."""
        if not deterministic:
            raise ValueError(
                "a CompressedPolicy acts deterministically only: the action distribution's spread is not part of "
                "the compressed actor"
            )
        if self.vecnormalize is not None:
            observation = self.vecnormalize.normalize_obs(observation)
        obs_tensor, vectorized = self.policy.obs_to_tensor(observation)
        with torch.no_grad():
            outputs = self.actor(obs_tensor.cpu())
        actions = self._actions(outputs).reshape((-1, *self.action_space.shape))
        return (actions if vectorized else actions.squeeze(axis=0)), None

    def _actions(self, outputs: torch.Tensor) -> np.ndarray:
        """SB3's deterministic action from the actor's outputs: ``CategoricalDistribution.mode`` (the argmax of the
        probabilities, computed as SB3 does so that near-ties break the same way) or the mean clipped to the Box
        (``BasePolicy.predict``)."""
        if isinstance(self.action_space, spaces.Discrete):
            return torch.distributions.Categorical(logits=outputs).probs.argmax(dim=1).numpy()
        return np.clip(outputs.numpy(), self.action_space.low, self.action_space.high)


def _model_and_statistics(agent: AgentLike, vecnormalize: VecNormalize | None) -> tuple[BaseAlgorithm, Any]:
    if isinstance(agent, LoadedAgent):
        return agent.model, agent.vecnormalize if vecnormalize is None else vecnormalize
    return agent, vecnormalize


def _check_supported(model: BaseAlgorithm, actor: nn.Module) -> None:
    """Refuse, in one line, what :class:`CompressedPolicy` cannot reproduce exactly."""
    if not isinstance(actor, PolicyNetwork):
        raise TypeError(f"compress_policy supports actor-critic agents (PPO, A2C), not {type(model).__name__}")
    if not isinstance(model.action_space, spaces.Discrete | spaces.Box):
        raise TypeError(f"compress_policy supports Discrete and Box actions, not {type(model.action_space).__name__}")
    if getattr(model.policy, "squash_output", False):
        raise TypeError("compress_policy does not support squashed (tanh) actions; train without use_sde squashing")


def compress_policy(agent: AgentLike, fmt: str, vecnormalize: VecNormalize | None = None) -> CompressedPolicy:
    """The actor of ``agent`` (a :class:`~agents.runs.LoadedAgent`, which brings its VecNormalize statistics, or
    an SB3 actor-critic model with ``vecnormalize`` given when it was trained on normalised observations) in
    format ``fmt``: ``"fp32"`` the actor itself, ``"fp16"`` :func:`~trends.compression.quantize.to_float16`,
    ``"int8"`` :func:`~trends.compression.quantize.to_int8_dynamic`."""
    if fmt not in POLICY_FORMATS:
        raise ValueError(f"unknown policy format {fmt!r}; choose one of {', '.join(POLICY_FORMATS)}")
    model, obs_statistics = _model_and_statistics(agent, vecnormalize)
    actor = policy_module(model)
    _check_supported(model, actor)
    if any(p.device.type != "cpu" for p in actor.parameters()):
        actor = copy.deepcopy(actor).cpu()  # compressed policies run on the CPU; the agent stays where it is
    if fmt != "fp32":
        actor = QUANTIZERS[fmt](actor)
    return CompressedPolicy(actor=actor.eval(), format=fmt, policy=model.policy, vecnormalize=obs_statistics)


def action_agreement(first: np.ndarray, second: np.ndarray, action_space: spaces.Space) -> float:
    """Share of observations on which two policies' actions agree: identical for ``Discrete`` actions, within
    :data:`BOX_AGREEMENT_TOLERANCE` of the action range on every dimension for ``Box`` (fewer bits move a mean
    by a little, which only a tolerance can call agreement)."""
    first, second = np.asarray(first), np.asarray(second)
    if isinstance(action_space, spaces.Box):
        tolerance = BOX_AGREEMENT_TOLERANCE * (action_space.high - action_space.low)
        same = np.all(np.abs(first - second) <= tolerance, axis=tuple(range(1, first.ndim)))
    else:
        same = (first == second).reshape(len(first), -1).all(axis=1)
    return float(np.mean(same))


class RecordingPolicy:
    """A policy that remembers every observation it acted on and the action it took: the states a policy visits,
    on which another policy's actions can then be compared with the ones it took there."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.observations: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        action, state = self.policy.predict(
            observation, state=state, episode_start=episode_start, deterministic=deterministic
        )
        self.observations.append(np.array(observation, copy=True))
        self.actions.append(np.array(action, copy=True))
        return action, state


def evaluate_with_agreement(
    policy: CompressedPolicy,
    original: CompressedPolicy,
    env_id: str,
    env_kwargs: dict[str, Any],
    seeds: list[int],
) -> tuple[EvaluationResult, float]:
    """``evaluate`` ``policy`` (deterministic, one episode per seed) and the share of the states it visited on which
    it took the action ``original`` takes there (:func:`action_agreement`).

    The actions compared are the ones ``policy`` took, one observation at a time, rather than recomputed on the
    whole batch of visited states: int8 dynamic quantization scales the activations per call, so an int8 actor's
    action on a state can depend on the batch it is computed in.
    """
    recorder = RecordingPolicy(policy)
    result = evaluate(recorder, env_id, env_kwargs, seeds, deterministic=True, name=policy.format)
    expected, _ = original.predict(np.stack(recorder.observations))
    return result, action_agreement(np.stack(recorder.actions), expected, policy.action_space)


def clean_note(result: EvaluationResult) -> str:
    """``"clean 83%"`` for a ski evaluation (its clean-run rate), ``""`` for an env without that metric."""
    clean = result.metric_means().get("clean")
    return "" if clean is None else f"clean {clean:.0%}"


def _row(policy: CompressedPolicy, result: EvaluationResult, note: str, repeats: int) -> Row:
    notes = ", ".join(part for part in (FORMAT_NOTES[policy.format], note) if part)
    return measured_row(
        policy.format,
        policy.actor,
        policy.observation_space.shape,
        score=result.mean_return,
        score_std=result.std_return,
        note=notes,
        repeats=repeats,
    )


def policy_report(
    run: str | Path | LoadedAgent,
    formats: tuple[str, ...] = ("fp16", "int8"),
    episodes: int = 50,
    seed: int = TEST_SEED,
    repeats: int = 30,
) -> Report:
    """The run's agent in fp32 (the first row, the original) and each of ``formats``: mean return ± standard
    deviation over ``episodes`` courses of the run's env it never saw (seeds ``seed``, ``seed + 1``...; the same
    for every format), the clean-run rate for ski and the share of the fp32 actions the format repeats on the
    states it visited (in the note), and the actor's costs."""
    agent = run if isinstance(run, LoadedAgent) else load_agent(run, device="cpu")
    env_id, env_kwargs = env_of_run(agent.config)
    seeds = test_seeds(episodes, start=seed)
    original = compress_policy(agent, "fp32")
    base_result = evaluate(original, env_id, env_kwargs, seeds, name="fp32")
    rows = [_row(original, base_result, clean_note(base_result), repeats)]
    for fmt in (f for f in formats if f != "fp32"):
        policy = compress_policy(agent, fmt)
        result, agreement = evaluate_with_agreement(policy, original, env_id, env_kwargs, seeds)
        note = ", ".join(filter(None, [clean_note(result), f"agrees {agreement:.1%}"]))
        rows.append(_row(policy, result, note, repeats))
    title = f"Policy compression: {agent.path} on {env_id}, {episodes} unseen courses"
    return Report(title=title, score_name="return", rows=rows)


# ---- ONNX --------------------------------------------------------------------------------------------------------


class NormalizedActor(nn.Module):
    """An actor that takes raw observations: VecNormalize's ``clip((obs - mean) / sqrt(var + eps))`` in float64,
    as numpy computes it (so the normalised observation is the one the agent sees, to the bit), then the actor.
    The statistics are buffers, so an exported graph holds them as constants."""

    def __init__(self, actor: nn.Module, vecnormalize: VecNormalize | None) -> None:
        super().__init__()
        self.actor = actor
        normalise = vecnormalize is not None and vecnormalize.norm_obs
        if normalise and not hasattr(vecnormalize.obs_rms, "mean"):
            raise TypeError("export_onnx supports VecNormalize statistics of array observations, not dict ones")
        rms = vecnormalize.obs_rms if normalise else None
        self.register_buffer("mean", None if rms is None else torch.as_tensor(rms.mean, dtype=torch.float64))
        scale = None if rms is None else np.sqrt(rms.var + vecnormalize.epsilon)
        self.register_buffer("scale", None if scale is None else torch.as_tensor(scale, dtype=torch.float64))
        self.clip = float(vecnormalize.clip_obs) if normalise else None

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        if self.mean is not None:
            normalised = (observation.double() - self.mean) / self.scale
            observation = normalised.clamp(-self.clip, self.clip).float()
        return self.actor(observation)


def _as_policy(policy: CompressedPolicy | AgentLike) -> CompressedPolicy:
    return policy if isinstance(policy, CompressedPolicy) else compress_policy(policy, "fp32")


class ExportUnavailable(RuntimeError):
    """An ONNX export this Python cannot do: a package it needs is not installed. The message says how to
    install it, as a command that runs from a plain shell."""


def missing_packages(names: tuple[str, ...]) -> list[str]:
    """Those of ``names`` this interpreter cannot import."""
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def check_onnx_export(policy_format: str) -> None:
    """Refuse an ONNX export of ``policy_format`` that would fail, before the work it would follow (scoring a
    policy takes 15 s, distilling one minutes): ValueError for a format ONNX cannot hold, :class:`ExportUnavailable`
    naming the missing packages and the pip command, for this interpreter, that installs them.

    The packages are named rather than the extra: ``pip install -e '.[export]'`` works only from the project's
    folder of a checkout, the package names from anywhere.
    """
    if policy_format not in ONNX_FORMATS:
        raise ValueError(
            f"cannot export the {policy_format} policy to ONNX, only {' or '.join(ONNX_FORMATS)}; convert the fp32 "
            "file with onnxconverter_common.float16 for fp16"
        )
    missing = missing_packages(ONNX_PACKAGES[policy_format])
    if missing:
        them = "it" if len(missing) == 1 else "them"
        raise ExportUnavailable(
            f"an ONNX export of the {policy_format} policy needs {' and '.join(missing)}, not installed here; "
            f"install {them} with: {command('python')} -m pip install {' '.join(missing)}"
        )


def export_onnx(policy: CompressedPolicy | AgentLike, path: str | Path) -> Path:
    """Write ``policy``'s actor (an agent's is taken in fp32) to ``path`` as an ONNX model from a batch of raw
    float32 observations (input ``observation``, any batch size) to logits or action means (output ``action``):
    take the argmax of the logits (``Discrete``), or clip the mean to the action space (``Box``), to act.

    fp32 is torch's export of the actor; int8 is that file quantized by ONNX Runtime's own dynamic quantizer
    (``onnxruntime.quantization.quantize_dynamic``, int8 weights of the matrix products, activations quantized at
    run time: the scheme torch's int8 policy uses), since torch's exporters have no translation for its int8
    dynamic layers. fp16 is refused: torch folds float16 weights cast up to float32 into float32 constants, so the
    file would be an fp32 one (``onnxconverter_common.float16`` converts an fp32 file).
    """
    policy = _as_policy(policy)
    check_onnx_export(policy.format)
    model = _torch_export(policy if policy.format == "fp32" else _fp32_of(policy))
    if policy.format == "int8":
        model = _quantize_int8(model)
    path = Path(path)
    atomic_write(path, lambda f: f.write(model))
    return path


def _fp32_of(policy: CompressedPolicy) -> CompressedPolicy:
    """The float32 actor a compressed policy was made from (the agent's own, shared)."""
    return CompressedPolicy(policy_module(policy.policy).eval(), "fp32", policy.policy, policy.vecnormalize)


def _torch_export(policy: CompressedPolicy) -> bytes:
    network = NormalizedActor(policy.actor, policy.vecnormalize).eval()
    sample = torch.zeros((1, *policy.observation_space.shape), dtype=torch.float32)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which would need onnxscript too.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            network,
            (sample,),
            buffer,
            dynamo=False,
            input_names=["observation"],
            output_names=["action"],
            dynamic_axes={"observation": {0: "batch"}, "action": {0: "batch"}},
            opset_version=ONNX_OPSET,
        )
    return buffer.getvalue()


def _quantize_int8(model: bytes) -> bytes:
    """``model`` with its matrix products' weights in int8, by ONNX Runtime's dynamic quantizer (which reads and
    writes files)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # there: check_onnx_export("int8") passed

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(model)
        logging.disable(logging.WARNING)  # its advice to "run pre-processing" is for image models, not an MLP
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        return target.read_bytes()

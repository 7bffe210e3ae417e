"""Per-env hyper-parameters in RL Baselines3 Zoo's YAML format, command-line overrides, and their resolution.

``agents/hyperparams/<algo>.yml`` maps env ids to settings, with a ``default`` entry for any other env::

    trendgym/Ski-v0:
      n_envs: 16                 # how many envs train at once        } settings of the training,
      n_timesteps: !!float 1e6   # the budget                          } not of the algorithm
      normalize: true            # VecNormalize (or "dict(norm_obs=True, norm_reward=False)")
      policy: MlpPolicy
      learning_rate: lin_3e-4    # decays linearly to 0 over the run
      policy_kwargs: "dict(net_arch=[64, 64], activation_fn=nn.Tanh)"
      train_env_kwargs: "dict(trees_per_gate=1.5)"   # the training envs' own arguments (validation: the run's)
    trendgym/Ski-v0 slope:blue:  # the entry of `train.py --env-kwargs slope:blue` (see load_hyperparams)
      ...

The raw form (strings as written) is what a run's ``config.yml`` records, so a run can be repeated from its
config; :func:`resolve` turns it into constructor keywords (schedules as callables, ``policy_kwargs`` as a
dict) only when the agent is built. ``policy_kwargs`` strings are read by a small evaluator that accepts
literals, ``dict(...)`` and a whitelist of torch names, never arbitrary code.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from stable_baselines3.common.utils import LinearSchedule

from agents.algorithms import ALGOS, algorithm_class
from agents.features import SkiFeatures

HYPERPARAMS_DIR = Path(__file__).with_name("hyperparams")
DEFAULT_KEY = "default"
# Keys of the YAML that are not constructor keywords (the noise is built once the action space is known).
TRAIN_SETTINGS = ("n_envs", "n_timesteps", "normalize", "noise_type", "noise_std", "train_env_kwargs")
NOISE_TYPES = ("normal", "ornstein-uhlenbeck")
UNSUPPORTED = ("env_wrapper", "frame_stack", "callback", "vec_env_wrapper", "normalize_kwargs")
SCHEDULE_PREFIX = "lin_"

# Names a policy_kwargs string may use, as RL Zoo's files do (nn.ReLU, th.optim.Adam...).
_ACTIVATIONS = ("ReLU", "Tanh", "ELU", "LeakyReLU", "SiLU", "GELU", "Sigmoid", "Softplus", "Identity", "Mish")
_OPTIMIZERS = ("Adam", "AdamW", "RMSprop", "SGD")
SAFE_NAMES: dict[str, Any] = {"dict": dict, "list": list, "tuple": tuple, "True": True, "False": False, "None": None}
for _prefix in ("nn", "th.nn", "torch.nn"):
    SAFE_NAMES.update({f"{_prefix}.{name}": getattr(torch.nn, name) for name in _ACTIVATIONS})
for _prefix in ("th.optim", "torch.optim", "optim"):
    SAFE_NAMES.update({f"{_prefix}.{name}": getattr(torch.optim, name) for name in _OPTIMIZERS})
FEATURES_EXTRACTORS = {"SkiFeatures": SkiFeatures}  # features_extractor_class=SkiFeatures (agents.features)
SAFE_NAMES.update(FEATURES_EXTRACTORS)


class HyperparamsError(ValueError):
    """A hyper-parameter file, entry or override that cannot be used; the message says which and why."""


@dataclass
class TrainSettings:
    """What the YAML says about the training rather than the algorithm."""

    n_envs: int = 1
    n_timesteps: int = 100_000
    normalize: dict[str, Any] | None = None  # VecNormalize keywords, or None for no normalisation
    noise_type: str | None = None  # action noise of off-policy algorithms: "normal" or "ornstein-uhlenbeck"
    noise_std: float = 0.1  # its standard deviation, in units of the action range's half width
    # env arguments of the training envs only, on top of the run's: the training distribution (more trees than
    # the slope has, say) while validation and judgement stay on the task the run was asked for
    train_env_kwargs: dict[str, Any] = field(default_factory=dict)


def hyperparams_file(algo: str) -> Path:
    return HYPERPARAMS_DIR / f"{algo.lower()}.yml"


def load_hyperparams(
    algo: str, env_id: str, path: str | Path | None = None, env_kwargs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The raw entry for ``env_id`` in ``<algo>.yml`` (its ``default`` entry for an env it does not list), or in
    the file ``path`` of the same format (a block ``train.py --optimize`` wrote, say).

    An entry may be for some env arguments only: ``trendgym/Ski-v0 slope:blue`` (the ``--env-kwargs`` of
    ``train.py``, space-separated) serves ``env_kwargs`` that hold ``slope="blue"``. The entry naming the most
    of the given arguments wins, then the env's plain entry, then ``default``; entries are whole, as in RL Zoo
    (an argument's entry inherits nothing from the plain one), so that what a file says is what trains."""
    algorithm_class(algo)  # an unknown algorithm fails here, with the valid names
    path = hyperparams_file(algo) if path is None else Path(path)
    try:
        table = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise HyperparamsError(f"no hyper-parameter file {path} for {algo}") from None
    except OSError as e:  # a folder, an unreadable file
        raise HyperparamsError(f"cannot read the hyper-parameter file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise HyperparamsError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(table, dict):
        raise HyperparamsError(f"{path} must map env ids to hyper-parameters")
    entry = _entry_for(table, env_id.split(":")[-1], env_kwargs or {}, path)
    if entry is None:
        raise HyperparamsError(f"{path} has no entry for {env_id} and no {DEFAULT_KEY!r} entry")
    return dict(entry)


def _entry_for(table: dict[Any, Any], env_id: str, env_kwargs: dict[str, Any], path: Path) -> Any:
    """The entry of ``table`` for ``env_id`` made with ``env_kwargs`` (see :func:`load_hyperparams`)."""
    best, best_size = table.get(env_id, table.get(DEFAULT_KEY)), 0
    for key, entry in table.items():
        name, *pairs = str(key).split()
        if name != env_id or not pairs:
            continue
        wanted = parse_key_values(pairs, f"env argument of the entry {key!r} in {path}:")
        if all(k in env_kwargs and env_kwargs[k] == v for k, v in wanted.items()) and len(wanted) > best_size:
            best, best_size = entry, len(wanted)
    return best


def parse_value(text: str) -> Any:
    """A command-line value as RL Zoo reads it: ``3e-4`` a float, ``256`` an int, ``true`` a bool, ``[64, 64]``
    a list, anything else (``green``, ``lin_3e-4``, ``dict(net_arch=[32])``) the string itself."""
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    if text[:1] in "[({'\"" and text:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise HyperparamsError(f"cannot read the value {text!r}") from None
    return text


def parse_key_values(items: list[str] | None, what: str = "hyperparameter") -> dict[str, Any]:
    """``["key:value", ...]`` -> ``{key: parse_value(value)}``; ``what`` names them in the error."""
    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition(":")
        key = key.strip()
        if not sep or not key.isidentifier() or not value.strip():
            raise HyperparamsError(f"malformed {what} {item!r}: write key:value, e.g. learning_rate:3e-4")
        result[key] = parse_value(value)
    return result


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """A copy of ``raw`` with ``key:value`` overrides from the command line applied (later ones win)."""
    return {**raw, **parse_key_values(overrides)}


def _safe_eval(node: ast.AST, source: str) -> Any:
    """Evaluate literals, ``dict(...)``/``list(...)`` calls and whitelisted names; refuse anything else."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_safe_eval(e, source) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_safe_eval(k, source): _safe_eval(v, source) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _safe_eval(node.operand, source)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = ast.unparse(node)
        if name in SAFE_NAMES:
            return SAFE_NAMES[name]
        raise HyperparamsError(
            f"{name!r} is not allowed in {source!r}; allowed names: nn.ReLU, nn.Tanh, th.optim.Adam..."
        )
    if isinstance(node, ast.Call) and ast.unparse(node.func) in ("dict", "list", "tuple"):
        func = SAFE_NAMES[ast.unparse(node.func)]
        args = [_safe_eval(a, source) for a in node.args]
        if any(k.arg is None for k in node.keywords):
            raise HyperparamsError(f"** is not allowed in {source!r}")
        return func(*args, **{k.arg: _safe_eval(k.value, source) for k in node.keywords})
    raise HyperparamsError(f"cannot read {ast.unparse(node)!r} in {source!r}: only literals and dict(...) are allowed")


def parse_kwargs_string(text: str | dict[str, Any]) -> dict[str, Any]:
    """``"dict(net_arch=[64, 64], activation_fn=nn.Tanh)"`` -> a dict, safely (see :data:`SAFE_NAMES`)."""
    if isinstance(text, dict):
        return text
    try:
        tree = ast.parse(str(text).strip(), mode="eval")
    except SyntaxError:
        raise HyperparamsError(f"{text!r} is not a valid expression, e.g. dict(net_arch=[64, 64])") from None
    value = _safe_eval(tree.body, str(text))
    if not isinstance(value, dict):
        raise HyperparamsError(f"{text!r} must be a dict, e.g. dict(net_arch=[64, 64])")
    return value


def parse_schedule(value: Any, key: str) -> Any:
    """``"lin_3e-4"`` -> a linear schedule from 3e-4 at the start to 0 at the end (RL Zoo's notation)."""
    if not (isinstance(value, str) and value.startswith(SCHEDULE_PREFIX)):
        return value
    try:
        start = float(value[len(SCHEDULE_PREFIX) :])
    except ValueError:
        raise HyperparamsError(f"{key}: {value!r} is not a schedule; write lin_<number>, e.g. lin_3e-4") from None
    if not 0 <= start < float("inf"):
        raise HyperparamsError(f"{key}: the schedule {value!r} must start at a number >= 0")
    return LinearSchedule(start, 0.0, 1.0)


def _normalize_kwargs(value: Any) -> dict[str, Any] | None:
    if value is None or value is False:
        return None
    if value is True:
        return {}
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return {} if value.lower() == "true" else None
    return parse_kwargs_string(value)


def normalizes_observations(value: Any) -> bool:
    """Whether a ``normalize`` setting (as a YAML entry or a run's ``config.yml`` records it) trained the agent on
    normalised observations: ``true``, or VecNormalize keywords that do not say ``norm_obs=False`` (pixel
    entries normalise the rewards only, so their agents act on raw frames)."""
    kwargs = _normalize_kwargs(value)
    return kwargs is not None and bool(kwargs.get("norm_obs", True))


def _check_keys(algo: str, kwargs: dict[str, Any]) -> None:
    """Refuse a key the algorithm's constructor does not take, naming the ones it does."""
    params = inspect.signature(ALGOS[algo.lower()].__init__).parameters
    valid = sorted(set(params) - {"self", "env", "_init_setup_model"})
    for key in kwargs:
        if key not in params or key in ("self", "env", "_init_setup_model"):
            raise HyperparamsError(f"{algo} has no hyperparameter {key!r}; it takes: {', '.join(valid)}")


# Ranges of the constructor keywords SB3 and sb3-contrib take, checked before anything is built: out of them SB3
# fails with a bare AssertionError deep inside, or (gamma 2, a negative entropy bonus) trains on in silence.
# (low, high, whole number); None is no bound. A key not listed here is left to the algorithm.
_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "n_steps": (1, None, True),
    "batch_size": (1, None, True),
    "n_epochs": (1, None, True),
    "buffer_size": (1, None, True),
    "learning_starts": (0, None, True),
    "target_update_interval": (1, None, True),
    "policy_delay": (1, None, True),
    "n_critic_updates": (1, None, True),
    "cg_max_steps": (1, None, True),
    "line_search_max_iter": (1, None, True),
    "stats_window_size": (1, None, True),
    "top_quantiles_to_drop_per_net": (0, None, True),
    "gamma": (0, 1, False),
    "gae_lambda": (0, 1, False),
    "tau": (0, 1, False),
    "exploration_fraction": (0, 1, False),
    "exploration_initial_eps": (0, 1, False),
    "exploration_final_eps": (0, 1, False),
    "line_search_shrinking_factor": (0, 1, False),
    "vf_coef": (0, None, False),
    "learning_rate": (0, None, False),  # 0 is a frozen policy, which tests of transfer use
    "target_policy_noise": (0, None, False),
    "target_noise_clip": (0, None, False),
}
_POSITIVE = ("clip_range", "clip_range_vf", "max_grad_norm", "target_kl", "cg_damping", "rms_prop_eps")


def _number(value: Any, key: str, what: str) -> float:
    """``value`` as a real number, or an error that says what ``key`` takes (a bool is no number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HyperparamsError(f"{key} must be {what}, got {value!r}")
    if value != value:  # nan
        raise HyperparamsError(f"{key} must be {what}, got nan")
    return float(value)


def _check_range(key: str, value: Any) -> None:
    low, high, whole = _RANGES[key]
    bounds = f"{'a whole number' if whole else 'a number'}" + (f" >= {low:g}" if low is not None else "")
    bounds += f" and <= {high:g}" if high is not None else ""
    number = _number(value, key, bounds)
    if (
        (whole and not number.is_integer())
        or (low is not None and number < low)
        or (high is not None and number > high)
    ):
        raise HyperparamsError(f"{key} must be {bounds}, got {value!r}")


def _check_positive(key: str, value: Any) -> None:
    """A positive number, or for the keys that take one a ``lin_`` schedule (already a callable here)."""
    if callable(value) or (value is None and key in ("clip_range_vf", "target_kl")):
        return
    if value is None or _number(value, key, "a positive number or lin_<number>") <= 0:
        raise HyperparamsError(f"{key} must be a positive number or lin_<number>, got {value!r}")


def _check_net_arch(net_arch: Any) -> None:
    """``[64, 64]`` or ``dict(pi=[64], vf=[64])``: layer widths are positive whole numbers."""
    layers = [w for part in net_arch.values() for w in part] if isinstance(net_arch, dict) else net_arch
    if not isinstance(layers, (list, tuple)) or not all(
        isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in layers
    ):
        raise HyperparamsError(f"policy_kwargs net_arch must list positive layer widths, got {net_arch!r}")


def check_values(kwargs: dict[str, Any]) -> None:
    """Refuse a constructor keyword out of its range, in one line naming the key, before any env or agent is built."""
    for key, value in kwargs.items():
        if key in _RANGES and not callable(value):  # a lin_ schedule was checked as a number when it was read
            _check_range(key, value)
        elif key in _POSITIVE:
            _check_positive(key, value)
        elif key == "ent_coef" and not (isinstance(value, str) and value.startswith("auto")):
            _number(value, key, "a number >= 0 (or auto, auto_<start> for SAC)")
            if value < 0:
                raise HyperparamsError(f"ent_coef must be a number >= 0 (or auto for SAC), got {value!r}")
    if "net_arch" in kwargs.get("policy_kwargs", {}):
        _check_net_arch(kwargs["policy_kwargs"]["net_arch"])


def _as_int(value: Any, key: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HyperparamsError(f"{key} must be a number, got {value!r}") from None
    if number < 1 or number != int(number):
        raise HyperparamsError(f"{key} must be a positive whole number, got {value!r}")
    return int(number)


def resolve(raw: dict[str, Any], algo: str | None = None) -> tuple[dict[str, Any], TrainSettings]:
    """Split ``raw`` into constructor keywords for :func:`agents.algorithms.make_agent` and training settings,
    turning ``lin_`` strings into schedules and ``policy_kwargs`` strings into dicts. With ``algo``, a key
    the algorithm does not take is an error rather than a TypeError deep inside SB3."""
    kwargs = dict(raw)
    for key in UNSUPPORTED:
        if key in kwargs:
            raise HyperparamsError(f"{key!r} (an RL Zoo setting) is not supported by trendgym's train.py")
    settings = TrainSettings(
        n_envs=_as_int(kwargs.pop("n_envs", 1), "n_envs"),
        n_timesteps=_as_int(kwargs.pop("n_timesteps", TrainSettings.n_timesteps), "n_timesteps"),
        normalize=_normalize_kwargs(kwargs.pop("normalize", False)),
        noise_type=kwargs.pop("noise_type", None),
        noise_std=float(kwargs.pop("noise_std", TrainSettings.noise_std)),
        train_env_kwargs=parse_kwargs_string(kwargs.pop("train_env_kwargs", None) or {}),
    )
    if settings.noise_type not in (None, *NOISE_TYPES):
        raise HyperparamsError(f"noise_type must be one of {', '.join(NOISE_TYPES)}, got {settings.noise_type!r}")
    if "policy_kwargs" in kwargs:
        kwargs["policy_kwargs"] = parse_kwargs_string(kwargs["policy_kwargs"])
    for key, value in kwargs.items():
        if key != "policy":
            kwargs[key] = parse_schedule(value, key)
    if algo is not None:
        _check_keys(algo, kwargs)
    check_values(kwargs)
    return kwargs, settings


def serialisable(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` as plain YAML values for ``config.yml``: anything that is not a plain value becomes its string."""
    plain = (str, int, float, bool, type(None))

    def convert(value: Any) -> Any:
        if isinstance(value, plain):
            return value
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {str(k): convert(v) for k, v in value.items()}
        return str(value)

    return {key: convert(value) for key, value in raw.items()}

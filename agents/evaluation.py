"""Judge a policy on courses it never saw, and put it beside the baselines on the very same courses.

Evaluation here is deliberately plain: one single env, one episode per seed, each episode reset with its own
seed. Vectorised evaluation would be faster, but a vector env autoresets with seeds of its own choosing, so
"episode ``i`` ran on course ``seeds[i]``" would no longer hold, and that is what makes two policies (or two
runs of ``evaluate.py``) comparable course by course.

The decision envs whose episodes make one search (``metadata["search_across_episodes"]``: the AutoML, feature,
compression and ensemble envs) are the exception: there a seeded reset starts a new search, so only the first
episode is reset with its seed and the others continue the search, as they do in training. Their evaluation is
one search of ``len(seeds)`` episodes, judged against the baselines' searches of as many.

Any object with an SB3-style ``predict(obs, state=None, episode_start=None, deterministic=True)`` is a
policy: a :class:`agents.runs.LoadedAgent`, an SB3 model, :class:`agents.baselines.RandomPolicy`,
:class:`agents.baselines.HeuristicSkier`. A ``predict(obs, deterministic=...)`` without the recurrent
arguments works too.
"""

from __future__ import annotations

import inspect
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

import envs  # noqa: F401  registers the trendgym/ ids
from agents.baselines import HeuristicSkier, RandomPolicy

SKI_ENTRY_POINT_PREFIX = "envs.ski."
# Metrics a results table shows when the env reports them, in this order; other envs show all of theirs.
TABLE_METRICS = ("clean", "gates_passed", "falls", "tree_hits", "time")
TABLE_LABELS = {"clean": "clean runs", "gates_passed": "gates", "tree_hits": "trees", "time": "time (s)"}
SMALL_RETURN = 10.0  # returns within +-10 (a decision env's accuracies and gains) show three decimals, others one

# Called after reset and after every step with the env; returning False stops the episode there.
StepHook = Callable[[gym.Env], "bool | None"]


class Policy(Protocol):
    def predict(self, observation: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]: ...


class EnvConfigError(ValueError):
    """The env named by a run's config (or the command line) cannot be made: unknown id or bad arguments."""


class OptionNotApplicable(EnvConfigError):
    """A command-line option that makes no sense for this run's env (``--slope`` for a non-ski env): a usage
    mistake, which scripts report with exit code 2 rather than 1."""


@dataclass
class EpisodeResult:
    """One episode: its seed, return, length and the env's episode metrics from the last ``info``."""

    seed: int
    episode_return: float
    length: int
    metrics: dict[str, float | int | bool] = field(default_factory=dict)
    interrupted: bool = False  # stopped by a hook (the viewer's window was closed) before the episode ended

    def describe(self, n_gates: int | None = None) -> str:
        """One line a person reads: return, and for the ski env gates, falls and time; for any other env its
        episode metrics (a search's accuracy, best so far and evaluations so far)."""
        m = self.metrics
        if not any(k in m for k in TABLE_METRICS):
            parts = [f"seed {self.seed}", f"return {self.episode_return:.3f}", f"{self.length} steps"]
            for k, v in m.items():
                kind = _metric_kind([v])
                if kind != "flag":
                    parts.append(f"{k} {_format_metric(k, float(v), None, kind)}")
                elif v:
                    parts.append(k)  # a flag by its name, when it is set ("diverged")
            return ", ".join(parts + (["(stopped)"] if self.interrupted else []))
        parts = [f"seed {self.seed}", f"return {self.episode_return:8.2f}", f"{self.length} steps"]
        if "gates_passed" in m:
            parts.append(f"gates {m['gates_passed']}/{n_gates}" if n_gates else f"gates {m['gates_passed']}")
        parts += [f"{label} {m[k]}" for k, label in (("falls", "falls"), ("tree_hits", "trees")) if k in m]
        if "time" in m:
            parts.append(f"time {m['time']:.1f} s")
        if m.get("clean"):
            parts.append("clean")
        elif "finished" in m and not m["finished"]:
            parts.append("did not finish")
        if self.interrupted:
            parts.append("(stopped)")
        return ", ".join(parts)


@dataclass
class EvaluationResult:
    """Every episode of one policy on one env, and the summary a table or a JSON file reports."""

    name: str
    env_id: str
    env_kwargs: dict[str, Any]
    deterministic: bool
    episodes: list[EpisodeResult]
    n_gates: int | None = None  # gates per course, for "gates 7/8"; None for envs without gates
    one_search: bool = False  # the episodes made one search (see the module docstring), not one course each
    search_metrics: tuple[str, ...] = ()  # metrics of the search so far (best, evaluations): read at its end

    @property
    def returns(self) -> list[float]:
        return [e.episode_return for e in self.episodes]

    @property
    def lengths(self) -> list[int]:
        return [e.length for e in self.episodes]

    @property
    def seeds(self) -> list[int]:
        return [e.seed for e in self.episodes]

    @property
    def mean_return(self) -> float:
        return statistics.fmean(self.returns)

    @property
    def std_return(self) -> float:
        """Population standard deviation (SB3's ``evaluate_policy`` and RL Zoo report the same)."""
        return statistics.pstdev(self.returns)

    def metric_means(self) -> dict[str, float]:
        """Mean of each episode metric; a flag's mean is its rate (``clean`` -> the clean-run rate)."""
        names = [k for k in self.episodes[0].metrics] if self.episodes else []
        return {k: statistics.fmean(float(e.metrics[k]) for e in self.episodes if k in e.metrics) for k in names}

    def metric_summary(self) -> dict[str, float]:
        """What a table shows of each metric: its mean over the episodes, except that when the episodes made one
        search, a search metric (the best accuracy so far, the evaluations so far) is its value at the search's
        end; averaged, "evaluations" would read 10.5 after a search of 20."""
        summary = self.metric_means()
        if self.one_search and self.episodes:
            last = self.episodes[-1].metrics
            summary.update({k: float(last[k]) for k in self.search_metrics if k in last})
        return summary

    def metric_kinds(self) -> dict[str, str]:
        """``"flag"``, ``"count"`` or ``"number"`` for each metric, from its values: how a table shows it."""
        names = [k for k in self.episodes[0].metrics] if self.episodes else []
        return {k: _metric_kind([e.metrics[k] for e in self.episodes if k in e.metrics]) for k in names}

    def summary(self) -> dict[str, Any]:
        """The numbers a person compares, JSON-serialisable."""
        summary = {
            "episodes": len(self.episodes),
            "return_mean": self.mean_return,
            "return_std": self.std_return,
            "length_mean": statistics.fmean(self.lengths),
            "n_gates": self.n_gates,
            "metrics_mean": self.metric_means(),
        }
        if self.one_search:
            summary["one_search"] = True
            summary["metrics_at_search_end"] = dict(self.episodes[-1].metrics) if self.episodes else {}
        return summary

    def to_dict(self) -> dict[str, Any]:
        """Summary and every episode, for ``evaluate.py --json``."""
        return {"name": self.name, **self.summary(), "episode_results": [asdict(e) for e in self.episodes]}


# ---- making envs -----------------------------------------------------------------------------------------------


def is_ski_env(env_id: str) -> bool:
    """Whether ``env_id`` is one of the ski envs (the ones that take ``slope`` and have a heuristic skier)."""
    try:
        entry_point = gym.spec(env_id).entry_point
    except gym.error.Error:
        return False
    return isinstance(entry_point, str) and entry_point.startswith(SKI_ENTRY_POINT_PREFIX)


def check_env_id(env_id: str) -> None:
    """Refuse an env id that is not registered, with gymnasium's hint ("Did you mean ...")."""
    try:
        gym.spec(env_id)
    except gym.error.Error as e:
        raise EnvConfigError(f"unknown env {env_id!r}: {e}") from None


def env_id_argument(text: str) -> str:
    """An argparse ``type`` for ``--env``: a registered env id, or a one-line usage error."""
    import argparse

    try:
        check_env_id(text)
    except EnvConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None, render_mode: str | None = None) -> gym.Env:
    """``gym.make`` with a one-line :class:`EnvConfigError` for an unknown id or arguments the env refuses."""
    try:
        return gym.make(env_id, render_mode=render_mode, **(env_kwargs or {}))
    except gym.error.Error as e:  # NameNotFound, VersionNotFound, NamespaceNotFound, ...
        raise EnvConfigError(f"unknown env {env_id!r}: {e}") from None
    except (ValueError, TypeError) as e:  # the env's own argument checks (e.g. an unknown slope)
        raise EnvConfigError(f"cannot make {env_id} with {env_kwargs or {}}: {str(e).splitlines()[0]}") from None


def env_settings(env_id: str, env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every argument ``gym.make(env_id, **env_kwargs)`` builds the env with: the constructor's defaults, then the
    registration's kwargs, then ``env_kwargs``. Two runs' ``env_kwargs`` of ``{}`` and ``{"slope": "green"}`` are
    the same env; comparing these settings, not the dicts as written, says so. {} for an id that is not
    registered (the caller's ``make_env`` says what is wrong with it)."""
    try:
        spec = gym.spec(env_id)
    except gym.error.Error:
        return {}
    defaults: dict[str, Any] = {}
    try:
        creator = gym.envs.registration.load_env_creator(spec.entry_point) if spec.entry_point else None
        parameters = inspect.signature(creator).parameters.values() if creator is not None else []
        defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    except (ImportError, AttributeError, TypeError, ValueError):  # an entry point without an inspectable signature
        pass
    defaults.pop("render_mode", None)
    return {**defaults, **(spec.kwargs or {}), **(env_kwargs or {})}


def env_of_run(config: dict[str, Any], env_id: str | None = None, slope: str | None = None) -> tuple[str, dict]:
    """The env id and arguments to judge a run's agent in: the run's own (``config.yml``'s ``env`` and
    ``env_kwargs``), with ``env_id`` replacing the id and ``slope`` the ski slope when given.

    ``slope`` lets an agent trained on green be tried on blue; it is refused for an env that has no slopes.
    """
    env_id = env_id or config.get("env")
    if not env_id:
        raise EnvConfigError("the model has no config.yml naming its env; pass --env, e.g. --env trendgym/Ski-v0")
    env_kwargs = dict(config.get("env_kwargs") or {}) if env_id == config.get("env") else {}
    if slope is not None:
        if not is_ski_env(env_id):
            raise OptionNotApplicable(f"--slope applies to the ski envs only, not to {env_id}")
        env_kwargs["slope"] = slope
    return env_id, env_kwargs


def _space_name(space: gym.spaces.Space) -> str:
    """A space in a few characters, ``Box(19,)`` or ``Discrete(6)``: its repr lists every bound, over lines."""
    if isinstance(space, gym.spaces.Discrete):
        return f"Discrete({space.n})"
    return f"{type(space).__name__}{space.shape}"


def _fits(expected: gym.spaces.Space, got: gym.spaces.Space) -> bool:
    if _space_name(expected) == _space_name(got):
        return True
    # SB3 trains a CNN on channel-first images (VecTransposeImage) and transposes an (H, W, C) frame in predict.
    shape = getattr(got, "shape", None) or ()
    return isinstance(got, gym.spaces.Box) and len(shape) == 3 and expected.shape == (shape[2], shape[0], shape[1])


def check_policy_fits(model: Any, env: gym.Env) -> None:
    """Refuse, in one line, a model whose observation or action space is not the env's (SB3 would fail with a
    shape error deep inside ``predict``)."""
    for what in ("observation_space", "action_space"):
        expected, got = getattr(model, what, None), getattr(env, what)
        if expected is not None and not _fits(expected, got):
            env_name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
            kind = what.replace("_", " ")
            raise EnvConfigError(
                f"the model was trained for a different {kind} ({_space_name(expected)}) than {env_name}'s "
                f"({_space_name(got)}); is it the right env?"
            )


def gates_per_course(env: gym.Env) -> int | None:
    """How many gates a course of this env has, or None for an env without gates."""
    slope = getattr(env.unwrapped, "slope", None)
    return getattr(slope, "n_gates", None)


def episode_metric_names(env: gym.Env) -> tuple[str, ...] | None:
    """The ``info`` keys the env declares as its episode metrics (``metadata["episode_metrics"]``), if any."""
    names = env.unwrapped.metadata.get("episode_metrics")
    return tuple(names) if names is not None else None


def plays_one_search(env: gym.Env) -> bool:
    """Whether the env's episodes make one search (``metadata["search_across_episodes"]``): its history outlives
    ``reset()`` and a seeded reset starts a new search, so a series of episodes seeds only the first."""
    return bool(env.unwrapped.metadata.get("search_across_episodes", False))


def search_metric_names(env: gym.Env) -> tuple[str, ...]:
    """The episode metrics that describe the whole search so far (``metadata["search_metrics"]``), if any."""
    return tuple(env.unwrapped.metadata.get("search_metrics", ()))


def resets_with_seed(env: gym.Env, index: int) -> bool:
    """Whether episode ``index`` of a series resets with its own seed: every episode of an env whose episodes are
    independent (a ski course each), only the first of an env whose episodes make one search (the others
    continue it, as in training, where only the first reset is seeded)."""
    return index == 0 or not plays_one_search(env)


def _metric_kind(values: Sequence[Any]) -> str:
    """``"flag"`` if every value is a bool, ``"count"`` if every one is an integer, else ``"number"``."""
    plain = [v.item() if isinstance(v, np.generic) else v for v in values]
    if plain and all(isinstance(v, bool) for v in plain):
        return "flag"
    if plain and all(isinstance(v, int) and not isinstance(v, bool) for v in plain):
        return "count"
    return "number"


def _final_metrics(info: dict[str, Any], names: tuple[str, ...] | None) -> dict[str, float | int | bool]:
    """The episode metrics from the last ``info``, as plain Python numbers (JSON needs them plain).

    An env that does not declare its metrics gets every scalar number or flag of its last ``info``.
    """
    keys = names if names is not None else tuple(info)
    metrics: dict[str, float | int | bool] = {}
    for key in keys:
        value = info.get(key)
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (bool, int, float)):
            metrics[key] = value
    return metrics


# ---- running episodes ------------------------------------------------------------------------------------------


def _takes_recurrent_state(policy: Policy) -> bool:
    """Whether ``predict`` accepts ``state`` and ``episode_start`` (SB3 models do; a minimal policy may not)."""
    try:
        params = inspect.signature(policy.predict).parameters
    except (TypeError, ValueError):
        return True
    return "state" in params and "episode_start" in params


def run_episode(
    policy: Policy,
    env: gym.Env,
    seed: int,
    deterministic: bool = True,
    hook: StepHook | None = None,
    reset_seed: bool = True,
) -> EpisodeResult:
    """Play one episode on the course of ``seed`` and return what happened.

    A stochastic policy's sampling is seeded from ``seed`` too (``torch.manual_seed``), so that
    ``--stochastic`` evaluations are repeatable like deterministic ones. ``reset_seed=False`` resets without the
    seed, so that an env whose episodes make one search continues it (see :func:`resets_with_seed`).
    """
    if not deterministic:
        torch.manual_seed(seed)
    recurrent = _takes_recurrent_state(policy)
    obs, info = env.reset(seed=seed if reset_seed else None)
    state, episode_start = None, np.ones((1,), dtype=bool)
    names = episode_metric_names(env)
    episode_return, length, interrupted = 0.0, 0, hook is not None and hook(env) is False
    done = interrupted
    while not done:
        if recurrent:
            action, state = policy.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic)
        else:
            action, _ = policy.predict(obs, deterministic=deterministic)
        obs, reward, terminated, truncated, info = env.step(action)
        episode_return += float(reward)
        length += 1
        episode_start = np.zeros((1,), dtype=bool)
        done = terminated or truncated
        if hook is not None and hook(env) is False:
            interrupted = not done
            done = True
    return EpisodeResult(seed, episode_return, length, _final_metrics(info, names), interrupted)


def evaluate(
    policy: Policy,
    env_id: str,
    env_kwargs: dict[str, Any] | None,
    seeds: Sequence[int],
    deterministic: bool = True,
    name: str = "agent",
) -> EvaluationResult:
    """Play one episode per seed on a single ``env_id`` env, each reset with its own seed.

    Use :func:`agents.seeds.test_seeds` for ``seeds``: those courses are never used in training. An env whose
    episodes make one search plays one search of ``len(seeds)`` episodes, started by the first seed.
    """
    if not seeds:
        raise ValueError("evaluate() needs at least one seed")
    env = make_env(env_id, env_kwargs)
    try:
        episodes = [
            run_episode(policy, env, int(seed), deterministic, reset_seed=resets_with_seed(env, i))
            for i, seed in enumerate(seeds)
        ]
        n_gates = gates_per_course(env)
        one_search, search_metrics = plays_one_search(env), search_metric_names(env)
    finally:
        env.close()
    return EvaluationResult(
        name, env_id, dict(env_kwargs or {}), deterministic, episodes, n_gates, one_search, search_metrics
    )


# ---- comparison with the baselines -----------------------------------------------------------------------------


def baseline_policies(env_id: str, env_kwargs: dict[str, Any] | None, seed: int = 0) -> dict[str, Policy]:
    """The non-learning policies an agent should beat: random always, the heuristic skier where it can ski
    (a ski env with vector observations: it reads the observation vector)."""
    env = make_env(env_id, env_kwargs)
    try:
        policies: dict[str, Policy] = {
            "random": RandomPolicy(env.action_space, seed=seed, observation_space=env.observation_space)
        }
        if is_ski_env(env_id) and getattr(env.unwrapped, "obs_type", None) == "vector":
            policies["heuristic"] = HeuristicSkier(env.action_space)
    finally:
        env.close()
    return policies


def compare_with_baselines(
    policy: Policy | None,
    env_id: str,
    env_kwargs: dict[str, Any] | None,
    seeds: Sequence[int],
    deterministic: bool = True,
    name: str = "agent",
    baselines: bool = True,
) -> list[EvaluationResult]:
    """Evaluate ``policy`` (if given) and the baselines on the same seeds, the agent first.

    The random baseline's own generator is seeded from the first seed, so a comparison is repeatable.
    """
    results = []
    if policy is not None:
        results.append(evaluate(policy, env_id, env_kwargs, seeds, deterministic, name))
    if baselines:
        for baseline_name, baseline in baseline_policies(env_id, env_kwargs, seed=int(seeds[0])).items():
            results.append(evaluate(baseline, env_id, env_kwargs, seeds, deterministic, baseline_name))
    return results


def _table_metrics(results: Sequence[EvaluationResult]) -> list[str]:
    available = [k for k in results[0].metric_means()] if results and results[0].episodes else []
    shown = [k for k in TABLE_METRICS if k in available]
    return shown or available


def _format_metric(name: str, value: float, n_gates: int | None, kind: str = "number") -> str:
    """A metric's cell: the ski metrics as ever (means of gates, falls, seconds to one decimal); any other env's
    flags as a rate, counts as integers (a mean of a few, such as 9.4 features, keeps its decimal) and other
    numbers, accuracies, scores and ratios in [0, 1] mostly, to three decimals."""
    if math.isnan(value):
        return "-"
    if name == "clean" or (kind == "flag" and name not in TABLE_METRICS):
        return f"{100 * value:.0f}%"
    if name == "gates_passed" and n_gates:
        return f"{value:.1f}/{n_gates}"
    if name in TABLE_METRICS:
        return f"{value:.1f}"
    if kind == "count":
        return f"{value:.0f}" if value.is_integer() or abs(value) >= 100 else f"{value:.1f}"
    return f"{value:.3f}"


def return_decimals(returns: Sequence[float]) -> int:
    """Decimals to show returns with: three for small ones (a decision env's accuracies and gains), one for a ski
    run's hundreds."""
    return 3 if returns and max(abs(x) for x in returns) <= SMALL_RETURN else 1


def comparison_rows(results: Sequence[EvaluationResult]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table: policy, return mean ± std, then the table metrics' means (a
    search's best and evaluations at its end, see :meth:`EvaluationResult.metric_summary`)."""
    metrics = _table_metrics(results)
    header = ["policy", "return", *(TABLE_LABELS.get(k, k) for k in metrics)]
    d = return_decimals([x for r in results for x in r.returns])
    rows = []
    for r in results:
        summary, kinds = r.metric_summary(), r.metric_kinds()
        cells = [_format_metric(k, summary.get(k, math.nan), r.n_gates, kinds.get(k, "number")) for k in metrics]
        rows.append([r.name, f"{r.mean_return:.{d}f} ± {r.std_return:.{d}f}", *cells])
    return header, rows


def format_table(results: Sequence[EvaluationResult], style: str = "plain") -> str:
    """The comparison as a markdown table (``style="markdown"``) or aligned plain text for a terminal."""
    header, rows = comparison_rows(results)
    if style == "markdown":
        lines = [header, ["---"] * len(header), *rows]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    if style != "plain":
        raise ValueError(f"style must be 'plain' or 'markdown', got {style!r}")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    align = [str.ljust] + [str.rjust] * (len(header) - 1)
    return "\n".join(
        "  ".join(fn(cell, w) for fn, cell, w in zip(align, row, widths, strict=True)) for row in [header, *rows]
    )


def comparison_dict(results: Sequence[EvaluationResult], **context: Any) -> dict[str, Any]:
    """A JSON-serialisable record of a comparison: where and how it ran, then each policy's results.

    ``context`` adds keys such as the model path or the run's config.
    """
    first = results[0]
    return {
        "env": first.env_id,
        "env_kwargs": first.env_kwargs,
        "deterministic": first.deterministic,
        "seeds": first.seeds,
        **context,
        "results": {r.name: r.to_dict() for r in results},
    }

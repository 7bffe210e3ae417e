"""Search spaces of the AutoML trend: typed, conditional choices that every search method shares.

A :class:`SearchSpace` is an ordered sequence of :class:`Categorical` decisions, one per step of an RL
controller (Zoph & Le 2017: the controller emits one token per step). A decision may apply only when earlier
choices make it meaningful (a layer's kernel only when the layer is a convolution; the next layer only when the
controller did not choose ``stop``), and an option may be forbidden by earlier choices (no convolution after a
dense layer). Because of this one description:

- an environment asks :meth:`SearchSpace.next_decision` and :meth:`SearchSpace.valid_options` (an action mask for
  MaskablePPO that forbids exactly the invalid options);
- random search calls :meth:`SearchSpace.sample`, Optuna's samplers call :meth:`SearchSpace.suggest`
  (define-by-run), evolution mutates configurations and checks them with :meth:`SearchSpace.canonical`;
- the tabular benchmark walks :meth:`SearchSpace.enumerate`, and every cache is keyed by :meth:`SearchSpace.key`;
- the evaluator trains what :meth:`SearchSpace.build` returns.

Choices are discrete grids, not continuous ranges: a controller picks one option per step, a table can only hold
finitely many entries, and a grid makes two searches' configurations comparable. Each grid is documented below.

The spaces, registered in :data:`SPACES` (look them up with :func:`get_space`):

``mnist1d-arch`` -- the architecture space of the tabular benchmark, on MNIST-1D (1 x 40 signals, 10 classes).
    One to three hidden layers, each chosen as four decisions, in this order:

    ====================  =====================  ===========================================================
    decision              options                applies when
    ====================  =====================  ===========================================================
    ``layer{k}_type``     conv, dense, stop      k = 1 (no ``stop``: a network has at least one layer), or
                                                 layer k-1 is a layer; ``conv`` is forbidden after a dense
                                                 layer (convolutions come first)
    ``layer{k}_width``    16, 32                 layer k is a layer (units, or output channels)
    ``layer{k}_kernel``   3, 5                   layer k is a conv
    ``layer{k}_skip``     False, True            layer k is a layer and k > 1 (a residual connection; a
                                                 1x1 / linear projection when the widths differ)
    ====================  =====================  ===========================================================

    for k = 1, 2, 3 (eleven decisions: the first layer has no skip; an architecture uses three to eleven).
    Activations are ReLU, there is no dropout; convolutions are followed by a global average pool, then the
    dense layers, then the linear classifier (:func:`trends.models.build_network`). 542 distinct architectures:
    6 of one layer, 56 of two, 480 of three; 500 have a convolution, 42 are MLPs. Every one is trained with
    the fixed recipe :data:`ARCH_RECIPE`.

``mnist1d-hparams`` and ``digits-hparams`` -- the hyper-parameter space the course names (learning rate,
    mini-batch size, number of hidden layers and units, layer type, filter size, dropout rate) over one small
    model family: ``hidden_layers`` identical hidden layers of ``units`` units (dense) or channels (conv, with
    ``kernel``), ReLU, each followed by dropout, then the classifier. Decisions in order:

    =================  =====================================  ==========================================
    decision           options                                applies when
    =================  =====================================  ==========================================
    ``learning_rate``  1e-4, 3e-4, 1e-3, 3e-3, 1e-2 (Adam)    always
    ``batch_size``     16, 32, 64, 128, 256                   always
    ``hidden_layers``  0, 1, 2, 3                             always (0 is the linear model)
    ``layer_type``     dense, conv                            hidden_layers > 0
    ``units``          16, 32, 64, 128                        hidden_layers > 0
    ``kernel``         3, 5, 7, 9 (MNIST-1D); 3, 5 (digits)   layer_type is conv (the filter size)
    ``dropout``        0.0, 0.1, 0.2, 0.3                     hidden_layers > 0
    =================  =====================================  ==========================================

    Trained with :data:`HPARAM_RECIPE` apart from the chosen learning rate and batch size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from trends.models import LayerSpec, NetworkSpec
from trends.training import TrainRecipe

if TYPE_CHECKING:
    import optuna

Option = None | bool | int | float | str  # JSON scalars: they key caches and Optuna accepts them as choices
Config = dict[str, Option]
Condition = Callable[[Mapping[str, Option]], bool]
OptionFilter = Callable[[Mapping[str, Option], Option], bool]

_SCALARS = (type(None), bool, int, float, str)


def _always(choices: Mapping[str, Option]) -> bool:
    return True


def _every_option(choices: Mapping[str, Option], option: Option) -> bool:
    return True


@dataclass(frozen=True)
class Categorical:
    """One decision: choose one of ``options`` (ordered, so an action index means the same option everywhere).

    :param name: the key of the choice in a configuration, and Optuna's parameter name
    :param options: the grid; JSON scalars (None, bool, int, float, str) because a configuration's key is JSON
        and Optuna's categorical distribution accepts nothing else
    :param applies: whether the decision is meaningful given the earlier choices (it sees only those, and only
        the ones that applied); when it is not, the decision is skipped and its value is not part of the config
    :param allows: whether an option may be chosen given the earlier choices; every applicable decision must
        allow at least one option whatever came before, so that any allowed choice can be completed
    :param doc: what the decision means, for people and for a renderer's legend
    """

    name: str
    options: tuple[Option, ...]
    applies: Condition = _always
    allows: OptionFilter = _every_option
    doc: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        if not self.options:
            raise ValueError(f"decision {self.name!r} has no options")
        bad = [
            o for o in self.options if not isinstance(o, _SCALARS) or (isinstance(o, float) and not math.isfinite(o))
        ]
        if bad:
            raise ValueError(f"decision {self.name!r}: options must be finite JSON scalars, got {bad!r}")
        if len({(type(o) is bool, o) for o in self.options}) != len(self.options):
            raise ValueError(f"decision {self.name!r} repeats an option: {self.options!r}")

    def index(self, value: Any) -> int:
        """The position of ``value`` among the options; ValueError naming the options when it is not one."""
        for i, option in enumerate(self.options):
            if _same(option, value):
                return i
        raise ValueError(f"{value!r} is not an option of {self.name!r}; choose one of {list(self.options)}")

    def mask(self, choices: Mapping[str, Option]) -> np.ndarray:
        """Which options the earlier ``choices`` allow."""
        return np.fromiter((self.allows(choices, o) for o in self.options), dtype=bool, count=len(self.options))


def _same(option: Option, value: Any) -> bool:
    """Equality that keeps booleans apart from 0 and 1 (``True == 1`` in Python), so ``skip=1`` is rejected rather
    than silently read as ``True``; numpy scalars compare like the Python numbers they hold."""
    if isinstance(option, bool) or isinstance(value, (bool, np.bool_)):
        return isinstance(value, (bool, np.bool_)) and isinstance(option, bool) and bool(value) == option
    if isinstance(option, str) or isinstance(value, str):
        return option == value
    try:
        return option == value
    except (TypeError, ValueError):  # e.g. an array compared with a number
        return False


@dataclass(frozen=True)
class SearchSpace:
    """An ordered sequence of conditional decisions, and how a complete configuration becomes a network and a
    training recipe.

    A *partial* configuration is a dict of the choices made so far, in decision order, holding only decisions
    that applied; a *complete* one has a choice for every decision that applies. Both are plain dicts of names to
    JSON scalars, so they travel through Optuna, YAML, JSON and table files unchanged.

    :param name: the registry name (:data:`SPACES`); caches of different spaces must not mix, so an evaluator
        scopes its keys by it
    :param dataset: the :mod:`trends.data` dataset every configuration of this space is trained on
    :param decisions: the decisions in the order a controller takes them
    :param builder: a complete canonical configuration -> the network and recipe to train
    :param doc: one line on what the space is for
    """

    name: str
    dataset: str
    decisions: tuple[Categorical, ...]
    builder: Callable[[Config], tuple[NetworkSpec, TrainRecipe]]
    doc: str = ""
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decisions", tuple(self.decisions))
        names = [d.name for d in self.decisions]
        if len(set(names)) != len(names):
            raise ValueError(f"space {self.name!r} repeats a decision name: {names}")
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(names)})

    # -- the sequence of decisions ------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.decisions)

    def n_options(self, i: int) -> int:
        """How many options decision ``i`` has (allowed or not): an action index is always in ``range`` of it."""
        return len(self.decisions[i].options)

    @property
    def max_options(self) -> int:
        """The largest option count: the size of one Discrete action space that serves every decision."""
        return max(len(d.options) for d in self.decisions)

    def next_decision(self, partial: Mapping[str, Any]) -> int | None:
        """The index of the decision that comes after the choices ``partial`` made; None when it is complete."""
        return self._walk(partial, complete=False)[1]

    def is_complete(self, partial: Mapping[str, Any]) -> bool:
        """Whether every decision that applies has been made."""
        return self.next_decision(partial) is None

    def valid_options(self, partial: Mapping[str, Any]) -> np.ndarray:
        """The action mask of the next decision: True exactly for the options that can still make a valid
        configuration. ValueError when ``partial`` is complete or not a valid prefix."""
        choices, i = self._walk(partial, complete=False)
        if i is None:
            raise ValueError(f"the configuration is complete; space {self.name!r} has no next decision")
        return self.decisions[i].mask(choices)

    def choose(self, partial: Mapping[str, Any], action: int) -> Config:
        """``partial`` extended by option number ``action`` of the next decision (an env's step); ValueError when
        the option is masked."""
        choices, i = self._walk(partial, complete=False)
        if i is None:
            raise ValueError(f"the configuration is complete; space {self.name!r} has no next decision")
        decision = self.decisions[i]
        if not 0 <= action < len(decision.options):
            raise ValueError(f"action {action} is out of range for {decision.name!r} ({len(decision.options)} options)")
        option = decision.options[action]
        if not decision.allows(choices, option):
            raise ValueError(f"{decision.name}={option!r} is not allowed after {choices}")
        return {**choices, decision.name: option}

    # -- complete configurations --------------------------------------------------------------------------------

    def canonical(self, config: Mapping[str, Any]) -> Config:
        """The configuration as the space sees it: the choices of the decisions that apply, in decision order, with
        each value the option itself; choices of decisions that do not apply are dropped, so two configurations
        that build the same network are equal. ValueError with the reason when it is not complete and valid."""
        choices, i = self._walk(config, complete=True)
        if i is not None:
            raise ValueError(f"incomplete configuration for {self.name!r}: no choice for {self.decisions[i].name!r}")
        return choices

    def is_valid(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` is complete and valid (:meth:`canonical` would accept it)."""
        return self._accepts(config, complete=True)

    def is_valid_prefix(self, partial: Mapping[str, Any]) -> bool:
        """Whether ``partial`` is a sequence of allowed choices a controller could have made so far."""
        return self._accepts(partial, complete=False)

    def _accepts(self, config: Mapping[str, Any], complete: bool) -> bool:
        try:
            _, missing = self._walk(config, complete)
        except ValueError:
            return False
        return missing is None or not complete

    def key(self, config: Mapping[str, Any]) -> str:
        """Canonical JSON of the configuration: the one string a cache or a table keys it by."""
        return json.dumps(self.canonical(config), sort_keys=True, separators=(",", ":"))

    def build(self, config: Mapping[str, Any]) -> tuple[NetworkSpec, TrainRecipe]:
        """The network and the training recipe of a complete configuration, for the evaluator to train."""
        return self.builder(self.canonical(config))

    def _walk(self, config: Mapping[str, Any], complete: bool) -> tuple[Config, int | None]:
        """Check ``config`` decision by decision; return its applicable choices (canonical values, in order) up to
        the first applicable decision without a choice, and that decision's index (None when there is none).

        Choices of decisions that do not apply are dropped. A choice after the first missing one is an error for a
        partial configuration (the controller cannot have made it yet); for a complete one the missing choice is.
        """
        unknown = [n for n in config if n not in self._index]
        if unknown:
            raise ValueError(f"unknown decision(s) {unknown} for space {self.name!r}; its decisions are {self.names}")
        choices: Config = {}
        for i, decision in enumerate(self.decisions):
            if not decision.applies(choices):
                continue
            if decision.name not in config:
                later = [n for n in config if self._index[n] > i] if not complete else []
                if later:
                    raise ValueError(f"choice(s) {later} made before {decision.name!r}")
                return choices, i
            option = decision.options[decision.index(config[decision.name])]
            if not decision.allows(choices, option):
                raise ValueError(f"{decision.name}={option!r} is not allowed after {choices}")
            choices[decision.name] = option
        return choices, None

    # -- search --------------------------------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> Config:
        """A configuration drawn by choosing uniformly among the allowed options at every step, as an untrained
        controller would (so deep architectures are rarer than under a uniform draw over :meth:`enumerate`)."""
        choices: Config = {}
        while not self.is_complete(choices):
            allowed = np.flatnonzero(self.valid_options(choices))
            choices = self.choose(choices, int(rng.choice(allowed)))
        return choices

    def sample_uniform(self, rng: np.random.Generator) -> Config:
        """A configuration drawn uniformly from all of the space's configurations (NAS-Bench-201's random search),
        unlike :meth:`sample`, which favours configurations with few decisions."""
        return dict(self._all[int(rng.integers(len(self._all)))])

    @cached_property  # works on a frozen dataclass: it writes the instance's __dict__, not through __setattr__
    def _all(self) -> list[Config]:
        return list(self.enumerate())

    def suggest(self, trial: optuna.Trial) -> Config:
        """A configuration asked of an Optuna trial, decision by decision (define-by-run), so Optuna's samplers
        search exactly this space.

        Optuna fixes a parameter's choices by its name, so a decision whose allowed options depend on earlier
        choices is asked under a name that lists the allowed subset (``layer2_type[dense,stop]``) whenever that
        subset is not all options; :meth:`from_params` reads such trial parameters back as a configuration.
        """
        choices: Config = {}
        while (i := self.next_decision(choices)) is not None:
            decision = self.decisions[i]
            allowed = [o for o, ok in zip(decision.options, self.valid_options(choices), strict=True) if ok]
            name = decision.name if len(allowed) == len(decision.options) else _subset_name(decision.name, allowed)
            choices[decision.name] = trial.suggest_categorical(name, allowed)
        return choices

    def from_params(self, params: Mapping[str, Any]) -> Config:
        """The canonical configuration of an Optuna trial's ``params`` (as :meth:`suggest` named them)."""
        return self.canonical({name.split("[", 1)[0]: value for name, value in params.items()})

    def enumerate(self) -> Iterator[Config]:
        """Every distinct canonical configuration, depth first in option order (the order of a tabular benchmark)."""
        yield from self._extend({})

    def _extend(self, choices: Config) -> Iterator[Config]:
        i = self.next_decision(choices)
        if i is None:
            yield choices
            return
        for action, ok in enumerate(self.valid_options(choices)):
            if ok:
                yield from self._extend(self.choose(choices, action))

    @property
    def size(self) -> int:
        """How many distinct configurations the space holds (counted once, by enumeration)."""
        return len(self._all)


def _subset_name(name: str, allowed: Sequence[Option]) -> str:
    return f"{name}[{','.join(json.dumps(o) if not isinstance(o, str) else o for o in allowed)}]"


# -- mnist1d-arch: the tabular benchmark's architecture space ---------------------------------------------------

ARCH_MAX_LAYERS = 3
ARCH_WIDTHS = (16, 32)  # with 64 as well the space had 1755 architectures: a table build of about an hour
ARCH_KERNELS = (3, 5)
ARCH_RECIPE = TrainRecipe(learning_rate=3e-3, batch_size=64, max_epochs=20, patience=4, optimizer="adam", seed=0)
"""The one recipe every architecture of the table is trained with: a fixed budget, as NAS-Bench tables use, so the
table ranks architectures by what they learn in 20 epochs. Measured on a 2-core CPU over 16 architectures drawn
uniformly from the space when it also had width 64: 2.0 s mean, 1.6 s median, 0.24 s (small MLP) to 4.3 s (three
32-64 channel convs); most CNNs were still improving slightly at epoch 20 (best epoch 18-20), MLPs stop early
(patience 4). Validation accuracy in that sample: MLPs 0.48-0.49, CNNs 0.72-0.95. The table's own file records
what its 542 trainings cost."""

LAYER_KINDS = ("conv", "dense")
STOP = "stop"


def _is_layer(choices: Mapping[str, Option], k: int) -> bool:
    return choices.get(f"layer{k}_type") in LAYER_KINDS


def _arch_layer_decisions(k: int) -> list[Categorical]:
    """The four decisions of hidden layer ``k`` (1-based)."""
    type_options: tuple[Option, ...] = (*LAYER_KINDS, STOP) if k > 1 else LAYER_KINDS

    def type_applies(c: Mapping[str, Option]) -> bool:
        return k == 1 or _is_layer(c, k - 1)

    def type_allows(c: Mapping[str, Option], option: Option) -> bool:
        return not (option == "conv" and c.get(f"layer{k - 1}_type") == "dense")

    return [
        Categorical(f"layer{k}_type", type_options, type_applies, type_allows, "conv or dense layer, or stop"),
        Categorical(f"layer{k}_width", ARCH_WIDTHS, lambda c: _is_layer(c, k), doc="units or output channels"),
        Categorical(
            f"layer{k}_kernel", ARCH_KERNELS, lambda c: c.get(f"layer{k}_type") == "conv", doc="convolution kernel"
        ),
        *(
            [Categorical(f"layer{k}_skip", (False, True), lambda c: _is_layer(c, k), doc="residual connection")]
            if k > 1
            else []
        ),
    ]


def _build_arch(config: Config) -> tuple[NetworkSpec, TrainRecipe]:
    layers = []
    for k in range(1, ARCH_MAX_LAYERS + 1):
        if not _is_layer(config, k):
            break
        layers.append(
            LayerSpec(
                kind=str(config[f"layer{k}_type"]),
                width=int(config[f"layer{k}_width"]),
                kernel=int(config.get(f"layer{k}_kernel", 3)),
                skip=bool(config.get(f"layer{k}_skip", False)),
            )
        )
    return NetworkSpec(tuple(layers)), ARCH_RECIPE


def arch_space() -> SearchSpace:
    """The ``mnist1d-arch`` space (module docstring)."""
    decisions = [d for k in range(1, ARCH_MAX_LAYERS + 1) for d in _arch_layer_decisions(k)]
    return SearchSpace(
        "mnist1d-arch", "mnist1d", tuple(decisions), _build_arch, "MNIST-1D architectures of the tabular benchmark"
    )


# -- mnist1d-hparams / digits-hparams: the course's hyper-parameters --------------------------------------------

HPARAM_LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)  # half-decade steps over the range where Adam trains these
HPARAM_BATCH_SIZES = (16, 32, 64, 128, 256)
HPARAM_HIDDEN_LAYERS = (0, 1, 2, 3)
HPARAM_UNITS = (16, 32, 64, 128)
HPARAM_KERNELS = {"mnist1d": (3, 5, 7, 9), "digits": (3, 5)}  # an 8x8 digit has no room for larger filters
HPARAM_DROPOUTS = (0.0, 0.1, 0.2, 0.3)
HPARAM_RECIPE = TrainRecipe(max_epochs=30, patience=5, optimizer="adam", seed=0)
"""What the hyper-parameter spaces do not choose: Adam, up to 30 epochs, patience 5, seed 0 (the learning rate and
batch size come from the configuration)."""


def _has_hidden(c: Mapping[str, Option]) -> bool:
    return bool(c.get("hidden_layers"))


def _build_hparams(config: Config) -> tuple[NetworkSpec, TrainRecipe]:
    layer = None
    if _has_hidden(config):
        layer = LayerSpec(
            kind=str(config["layer_type"]),
            width=int(config["units"]),
            kernel=int(config.get("kernel", 3)),
            dropout=float(config["dropout"]),
        )
    layers = (layer,) * int(config["hidden_layers"]) if layer else ()
    recipe = TrainRecipe(
        learning_rate=float(config["learning_rate"]),
        batch_size=int(config["batch_size"]),
        max_epochs=HPARAM_RECIPE.max_epochs,
        patience=HPARAM_RECIPE.patience,
        optimizer=HPARAM_RECIPE.optimizer,
        seed=HPARAM_RECIPE.seed,
    )
    return NetworkSpec(layers), recipe


def hparam_space(dataset: str) -> SearchSpace:
    """The ``{dataset}-hparams`` space (module docstring)."""
    decisions = (
        Categorical("learning_rate", HPARAM_LEARNING_RATES, doc="Adam's step size"),
        Categorical("batch_size", HPARAM_BATCH_SIZES, doc="training samples per step"),
        Categorical("hidden_layers", HPARAM_HIDDEN_LAYERS, doc="identical hidden layers; 0 is the linear model"),
        Categorical("layer_type", LAYER_KINDS, _has_hidden, doc="dense or convolution hidden layers"),
        Categorical("units", HPARAM_UNITS, _has_hidden, doc="units or channels of each hidden layer"),
        Categorical("kernel", HPARAM_KERNELS[dataset], lambda c: c.get("layer_type") == "conv", doc="filter size"),
        Categorical("dropout", HPARAM_DROPOUTS, _has_hidden, doc="dropout rate after each hidden layer"),
    )
    return SearchSpace(f"{dataset}-hparams", dataset, decisions, _build_hparams, f"{dataset} hyper-parameters")


SPACES: dict[str, SearchSpace] = {
    space.name: space for space in (arch_space(), hparam_space("mnist1d"), hparam_space("digits"))
}


def get_space(name: str) -> SearchSpace:
    """The registered space ``name``; ValueError listing the names when there is none."""
    if name not in SPACES:
        raise ValueError(f"unknown search space {name!r}; choose one of {', '.join(SPACES)}")
    return SPACES[name]

"""``trendgym/LearningRateControl-v0``: an agent sets the learning rate of a running training, epoch by epoch,
after DACBench's SGD benchmark (Adriaensen et al. 2022, "Automated Dynamic Algorithm Configuration", JAIR;
Eimer et al. 2021, "DACBench: A Benchmark Library for Dynamic Algorithm Configuration", IJCAI).

Dynamic algorithm configuration: a learning-rate schedule is a policy that maps the state of a training to the
next learning rate, and an agent can learn it across many trainings (instances) instead of a person tuning it
for each. Each step trains a real network for one epoch with :class:`trends.training.Trainer`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from envs.checks import (
    ArgumentTypeError,
    check_bool,
    check_box_action,
    check_choice,
    check_discrete_action,
    check_float,
    check_int,
    check_options,
    check_render_mode,
    is_integer,
    shown,
)
from envs.rendering import SceneRendering
from trends.data import DATASETS, load_dataset
from trends.models import LayerSpec, NetworkSpec, build_network, count_parameters
from trends.training import OPTIMIZERS, Trainer, TrainRecipe

# The range of learning rates, as log10 of them. The Box action [-1, 1] maps linearly onto it.
LOG_LR_MIN = -4.0  # 1e-4: too small for SGD to move any default instance within the budget
LOG_LR_MAX = 1.0  # 10: kills (or crashes) every default instance under SGD with momentum 0.9
LR_GRID = tuple(float(lr) for lr in np.logspace(LOG_LR_MIN, LOG_LR_MAX, 11))  # Discrete actions: half-decades

# Scales of the observation. Losses are observed and rewarded in units of chance level's, ln(n_classes), up to
# LOSS_CEILING: a network that far above chance has lost all it learned, and the ceiling keeps rewards bounded
# when a loss explodes without a crash.
LOSS_CEILING = 4.0
BATCH_LOG2_RANGE = (4.0, 9.0)  # log2 batch size 16..512 -> [0, 1]
PARAMS_LOG10_RANGE = (2.0, 6.0)  # log10 parameter count 100..1e6 -> [0, 1]
DEFAULT_EPOCHS = 10
# Bounds of the sizes, far beyond any use: an epoch is a real training epoch (0.05 s on the default instances), so
# the longest episode is a 1000-epoch training (100 times the default budget; DACBench's SGD benchmark trains for
# tens of epochs); a batch larger than 65536 is more than the datasets hold (digits has 1797 samples).
MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 2**16
# An instance's network is built at every reset, so its size is bounded before: up to 16 layers of up to 1024 units
# or channels and kernels up to 15, and at most 10 million weights (40 MB; the default instances have 23,050 at most).
MAX_LAYERS = 16
MAX_WIDTH = 1024
MAX_KERNEL = 15
MAX_WEIGHTS = 10**7
INPUT_FEATURES = 64  # the widest input of the datasets (digits' 8 x 8 pixels; mnist1d has 40 samples, 1 channel)

# Observation layout (see the class docstring)
PROGRESS, LOG_LR, TRAIN_LOSS, VAL_LOSS, VAL_ACCURACY, IMPROVEMENT, BEST_VAL_LOSS = range(7)
DATASET_FEATURES = 7  # first index of the dataset one-hot, then the optimizer one-hot, batch size, parameters
OBS_SIZE = DATASET_FEATURES + len(DATASETS) + len(OPTIMIZERS) + 2
_OBS_LOW = np.zeros(OBS_SIZE, dtype=np.float32)
_OBS_LOW[IMPROVEMENT] = -LOSS_CEILING
_OBS_HIGH = np.ones(OBS_SIZE, dtype=np.float32)
_OBS_HIGH[[TRAIN_LOSS, VAL_LOSS, IMPROVEMENT, BEST_VAL_LOSS]] = LOSS_CEILING


def action_to_learning_rate(action: float) -> float:
    """The learning rate a Box action asks for: ``[-1, 1]`` maps linearly onto log10 of the rate in
    ``[LOG_LR_MIN, LOG_LR_MAX]``, so -1 is 1e-4, 0 the middle of the range (10**-1.5, about 0.03) and 1 is 10.
    Finite actions outside ``[-1, 1]`` are clipped to it, as an unbounded Gaussian policy's samples are."""
    a = min(max(float(action), -1.0), 1.0)
    return 10.0 ** (LOG_LR_MIN + (a + 1.0) / 2.0 * (LOG_LR_MAX - LOG_LR_MIN))


def learning_rate_to_action(learning_rate: float) -> float:
    """The Box action that asks for ``learning_rate``, the inverse of :func:`action_to_learning_rate`; a rate
    outside ``[10**LOG_LR_MIN, 10**LOG_LR_MAX]`` gets the action of the nearest end of the range."""
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"a learning rate must be a finite positive number, got {learning_rate!r}")
    log_lr = min(max(math.log10(learning_rate), LOG_LR_MIN), LOG_LR_MAX)
    return 2.0 * (log_lr - LOG_LR_MIN) / (LOG_LR_MAX - LOG_LR_MIN) - 1.0


@dataclass(frozen=True)
class Instance:
    """One training task of the benchmark, as DACBench's instances: a dataset, a network, a batch size, an
    optimizer and a seed. The seed fixes the initial weights and the batch order, so an instance is one
    reproducible training: the same learning rates give the same losses, whichever episode runs it."""

    dataset: str
    network: NetworkSpec
    batch_size: int = 64
    optimizer: str = "sgd"  # SGD with momentum 0.9 (trends.training.SGD_MOMENTUM), "adam" or "adamw"
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if not isinstance(self.network, NetworkSpec):
            raise ArgumentTypeError(f"an instance's network must be a NetworkSpec, got {shown(self.network)}")
        check_int("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        check_int("seed", self.seed, 0)
        _check_network_size(self.network)

    @property
    def problem(self) -> str:
        """The instance without its seed, e.g. ``digits dense64 b64 sgd``."""
        return f"{self.dataset} {self.network.describe()} b{self.batch_size} {self.optimizer}"

    @property
    def name(self) -> str:
        """e.g. ``digits dense64 b64 sgd #3``."""
        return f"{self.problem} #{self.seed}"


def _check_network_size(network: NetworkSpec) -> None:
    """Refuse a network larger than the bounds (``MAX_LAYERS``...) before it is built: a weight count from the
    spec, counting 2-D kernels (digits' convolutions are; mnist1d's are 1-D, so smaller)."""
    check_int("the number of layers of an instance's network", len(network.layers), 0, MAX_LAYERS)
    weights, previous = 0, 1 if network.has_conv else INPUT_FEATURES
    for layer in network.layers:
        width = check_int("an instance's layer width", layer.width, 1, MAX_WIDTH)
        kernel = check_int("an instance's conv kernel", layer.kernel, 1, MAX_KERNEL) if layer.kind == "conv" else 1
        weights += previous * width * kernel**2
        previous = width
    if weights > MAX_WEIGHTS:
        raise ValueError(f"an instance's network must have at most {MAX_WEIGHTS:,} weights, has about {weights:,}")


def _dense(*widths: int) -> NetworkSpec:
    return NetworkSpec(tuple(LayerSpec("dense", w) for w in widths))


def _conv(*layers: tuple[int, int]) -> NetworkSpec:
    return NetworkSpec(tuple(LayerSpec("conv", w, kernel=k) for w, k in layers))


# (dataset, network, batch size) of the default instances; all SGD with momentum, where the schedule matters most.
TRAIN_PROBLEMS: tuple[tuple[str, NetworkSpec, int], ...] = (
    ("digits", _dense(64), 32),
    ("digits", _dense(64), 128),
    ("digits", _dense(128, 64), 64),
    ("digits", _conv((16, 3), (32, 3)), 64),
    ("mnist1d", _dense(128, 128), 64),
    ("mnist1d", _dense(128, 128), 128),
    ("mnist1d", _conv((16, 5), (32, 3)), 128),
)
HELD_OUT_PROBLEMS: tuple[tuple[str, NetworkSpec, int], ...] = (
    ("digits", _dense(32), 64),
    ("mnist1d", _dense(256), 64),
)
TRAIN_SEEDS = tuple(range(5))
TEST_SEEDS = tuple(range(1000, 1003))


def _instances(problems: Sequence[tuple[str, NetworkSpec, int]], seeds: Sequence[int]) -> tuple[Instance, ...]:
    return tuple(Instance(d, net, b, "sgd", s) for d, net, b in problems for s in seeds)


INSTANCE_SETS: dict[str, tuple[Instance, ...]] = {
    "train": _instances(TRAIN_PROBLEMS, TRAIN_SEEDS),
    # Held-out seeds of the training problems, and problems never trained on.
    "test": _instances(TRAIN_PROBLEMS + HELD_OUT_PROBLEMS, TEST_SEEDS),
}


@dataclass
class _Training:
    """The episode's training and what has been seen of it."""

    instance: Instance
    trainer: Trainer
    n_classes: int
    features: np.ndarray  # the instance's part of the observation
    val_losses: list[float]  # index 0 is the untrained network's
    train_losses: list[float]
    val_accuracies: list[float]
    learning_rates: list[float] = field(default_factory=list)  # one per epoch trained
    rewards: list[float] = field(default_factory=list)  # one per epoch trained
    best_val_loss: float = math.inf
    crashed: bool = False
    test_accuracy: float | None = None  # measured once the episode ends

    @property
    def epoch(self) -> int:
        return len(self.learning_rates)

    @property
    def chance_loss(self) -> float:
        return math.log(self.n_classes)

    @property
    def loss_ceiling(self) -> float:
        """The highest loss the env tells apart; a crash counts as this."""
        return LOSS_CEILING * self.chance_loss

    def capped(self, loss: float) -> float:
        return min(loss, self.loss_ceiling) if math.isfinite(loss) else self.loss_ceiling


class LearningRateControlEnv(SceneRendering, gym.Env):
    """
    ## Description

    Learning-rate control as dynamic algorithm configuration, after DACBench's SGD benchmark (Adriaensen et al.
    2022): the agent watches a neural network train and sets the learning rate of every epoch. Each step trains
    the network for one real epoch (:meth:`trends.training.Trainer.run_epoch`) at the chosen learning rate, then
    measures it on the validation split. A good controller warms up, trains fast while the loss falls, and
    anneals as it flattens; a too-large learning rate kills the network or makes the loss diverge (a crash).

    Each episode trains one **instance**, as in DACBench: a dataset, a network, a batch size, an optimizer and a
    seed (:class:`Instance`). The seed fixes the initial weights and the batch order, so an instance is one
    reproducible training. The default instances train fast on one CPU core, all with SGD and momentum 0.9
    (where the schedule matters most); their best constant learning rates differ by a decade (0.1 to 1), so a
    controller that reads the instance's features can beat any one schedule:

    | problem | parameters | ms per epoch | best constant rate |
    |---|---|---|---|
    | digits, MLP 64, batch 32 and 128 | 4,810 | 15, 6 | 0.03-0.3 |
    | digits, MLP 128-64, batch 64 | 17,226 | 12 | 0.1 |
    | digits, CNN conv16-conv32, batch 64 | 5,130 | 50 | 0.3 |
    | mnist1d, MLP 128-128, batch 64 and 128 | 23,050 | 24, 18 | 0.1 |
    | mnist1d, CNN conv16k5-conv32k3, batch 128 | 1,994 | 70 | 1 |

    (Times measured on a busy two-core machine, so an episode of 10 epochs takes 0.05 to 0.75 s.)
    ``instance_set="train"`` holds these 7 problems with seeds 0-4 (35 instances); ``"test"`` holds them with
    the held-out seeds 1000-1002 plus two problems never trained on (digits MLP 32, batch 64, 2,410 parameters;
    mnist1d MLP 256, batch 64, 13,066 parameters), 27 instances. Train and test share no instance.

    ## Action Space

    ``Box(-1, 1, (1,), float32)``: the learning rate of the next epoch on a log scale, ``[-1, 1]`` mapped linearly
    onto log10 of the rate in ``[-4, 1]``: -1 is 1e-4, 0 is 10**-1.5 (0.03), 1 is 10, and every 0.4 is a decade.
    ``action_to_learning_rate`` and ``learning_rate_to_action`` convert. Finite values outside the bounds are
    clipped to them (so an unbounded Gaussian policy works as it is); NaN, infinity, an array of another shape
    (a scalar too: the space's shape is ``(1,)``), a bool, a string or a complex number raises ``InvalidAction``.
    The range is wide on purpose: from a rate that barely moves any default instance to one that kills or crashes
    every one of them under SGD, so a controller has to learn where the useful range of each instance lies. It is
    normalized, as gymnasium's and SB3's checkers recommend, so that a Gaussian policy (PPO, A2C), which starts
    near action 0, starts in the middle of the range: a rate that crashes no default instance and trains most of
    them, if slowly (the digits CNN barely moves at 0.03).

    ``Discrete(11)`` with ``discrete=True``: the learning rates ``LR_GRID``, half a decade apart,
    ``1e-4, 3.2e-4, 1e-3, ..., 3.2, 10``. An integer outside ``0..10`` raises ``InvalidAction``.

    ## Observation Space

    ``Box(low, high, (14,), float32)``; losses are in units of chance level's loss, ``ln(n_classes)`` (an
    untrained network's is about 1), and capped at 4 (a NaN, a crash, counts as 4):

    | index | observation | range |
    |---|---|---|
    | 0 | progress: epochs trained / ``epochs`` | [0, 1] |
    | 1 | the last epoch's learning rate, ``(log10 lr + 4) / 5`` = ``(action + 1) / 2`` (0 before the first) | [0, 1] |
    | 2 | the last epoch's mean training loss (before training: the untrained network's) | [0, 4] |
    | 3 | validation loss | [0, 4] |
    | 4 | validation accuracy | [0, 1] |
    | 5 | the last reward / ln(n_classes): the improvement of the validation loss (0 before the first epoch) | [-4, 4] |
    | 6 | lowest validation loss so far | [0, 4] |
    | 7, 8 | dataset one-hot: digits, mnist1d | {0, 1} |
    | 9-11 | optimizer one-hot: adam, sgd, adamw | {0, 1} |
    | 12 | batch size: ``(log2 batch - 4) / 5``, clipped (16 to 512) | [0, 1] |
    | 13 | parameters of the network: ``(log10 parameters - 2) / 4``, clipped (100 to 1e6) | [0, 1] |

    ## Rewards

    The improvement of the validation loss (mean cross-entropy, in nats) over the epoch: ``previous - new``,
    where the first epoch's previous loss is the untrained network's. Losses count up to the ceiling of
    ``4 ln(n_classes)`` (9.21 nats on the 10-class default datasets): a network that far above chance level has
    lost everything it learned, and without the ceiling one exploding epoch (losses up to 230 nats happen
    before the trainer calls it a crash) would outweigh every other episode. An episode's return is therefore
    ``initial val loss - final val loss`` (the final one capped at the ceiling): at most about 2.3, at least
    ``2.3 - 9.21 = -6.9``. A learning rate that kills the network, loss back at chance level, returns about 0.

    A crash (the training diverged: a NaN or infinite loss, or one above 100 x chance level's, as
    :class:`~trends.training.Trainer` decides) is rewarded ``crash_penalty`` instead and ends the episode. The
    default, ``-4 ln(n_classes)`` (-9.21), is minus the ceiling: a crashed episode returns at most
    ``initial val loss - 9.21``, less than any training that did not crash, so a crash is always the worst
    outcome, as it is for the person whose training it was.

    ## Starting State

    A freshly initialised network of the instance (its seed fixes the weights), untrained: the observation
    holds its training and validation losses, accuracy and the instance's features. Each ``reset`` draws an
    instance uniformly from the set with ``self.np_random``; ``reset(options={"instance": i})`` trains
    instance ``i`` of the set (an index, or an :class:`Instance`).

    ## Episode End

    * Termination: after ``epochs`` epochs (10 by default), or at a crash. The epoch budget is the task's end,
      not a time limit imposed from outside (the observation shows the progress through it, and the final
      loss is what the return measures), so it terminates rather than truncates: no bootstrapping past it.
    * Truncation: never.

    ## Information

    Every step: ``epoch``, ``val_loss``, ``val_accuracy``, ``train_loss`` (as measured: NaN or huge on a crash),
    ``learning_rate`` (NaN at reset), ``diverged`` and ``instance`` (its name). The last step adds
    ``final_val_loss`` (capped at the ceiling, which a crashed network's counts as, so that averages over
    episodes stay finite), ``final_val_accuracy`` and ``test_accuracy``.

    ## Arguments

    ```python
    import gymnasium as gym
    import envs  # registers the trendgym/ ids

    env = gym.make("trendgym/LearningRateControl-v0")  # the training instances, Box actions
    env = gym.make("trendgym/LearningRateControl-v0", instance_set="test", discrete=True, render_mode="human")
    env = gym.make("trendgym/LearningRateControl-v0", instance_set=[Instance("digits", NetworkSpec(), 32)])
    ```

    * ``instance_set``: ``"train"``, ``"test"`` or a sequence of :class:`Instance`, whose batch size is at most
      65536 (``MAX_BATCH_SIZE``) and whose network has at most 16 layers (``MAX_LAYERS``) of at most 1024 units
      or channels (``MAX_WIDTH``), kernels of at most 15 and 10 million weights (``MAX_WEIGHTS``, 40 MB).
    * ``epochs``: the training budget of an episode, in epochs, 1 to 1000 (``MAX_EPOCHS``: 100 times the default,
      and a real training of 1000 epochs an episode).
    * ``discrete``: Discrete actions over ``LR_GRID`` instead of the Box (a bool).
    * ``crash_penalty``: the reward of a crash (a finite number <= 0); None for ``-4 ln(n_classes)``.

    Every argument is checked at once: a wrong type raises a ``TypeError`` (that is also a ``ValueError``), a bad
    value a ``ValueError``, naming it. ``reset`` takes the one option ``instance``.

    ## Version History

    * v0: first version.
    """

    metadata = {
        "render_modes": ["human", "rgb_array"],
        "render_fps": 4,
        # What trendgym's TensorBoard callback logs at the end of each episode, under "lr_control/".
        "metrics_namespace": "lr_control",
        "episode_metrics": ("final_val_loss", "final_val_accuracy", "diverged"),
    }

    def __init__(
        self,
        render_mode: str | None = None,
        instance_set: str | Sequence[Instance] = "train",
        epochs: int = DEFAULT_EPOCHS,
        discrete: bool = False,
        crash_penalty: float | None = None,
    ) -> None:
        check_render_mode(render_mode, self.metadata)
        self.epochs = check_int("epochs", epochs, 1, MAX_EPOCHS)
        self.discrete = check_bool("discrete", discrete)
        self.crash_penalty = check_float("crash_penalty", crash_penalty, high=0.0, or_none=True)
        self.render_mode = render_mode
        self.instances = _resolve_instances(instance_set)

        if self.discrete:
            self.action_space = spaces.Discrete(len(LR_GRID))
        else:
            self.action_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
        self.observation_space = spaces.Box(_OBS_LOW, _OBS_HIGH, dtype=np.float32)

        self.training: _Training | None = None
        self._renderer = None

    # ---- the Gymnasium API -----------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        choice = check_options(options, ("instance",), "LearningRateControlEnv").get("instance")
        super().reset(seed=seed)
        instance = self._choose_instance(choice)
        self.training = _start_training(instance)
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info(math.nan)

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        t = self.training
        if t is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if t.crashed or t.epoch >= self.epochs:
            raise gym.error.ResetNeeded("the training has ended (budget spent or crashed); call reset()")
        learning_rate = self._decode(action)
        stats = t.trainer.run_epoch(learning_rate)
        t.learning_rates.append(learning_rate)
        t.train_losses.append(stats.train_loss)
        t.val_losses.append(stats.val_loss)
        t.val_accuracies.append(stats.val_accuracy)
        if stats.diverged:
            t.crashed = True
            reward = self.crash_penalty if self.crash_penalty is not None else -t.loss_ceiling
        else:
            reward = t.capped(t.val_losses[-2]) - t.capped(stats.val_loss)
            t.best_val_loss = min(t.best_val_loss, stats.val_loss)
        t.rewards.append(reward)
        terminated = t.crashed or t.epoch >= self.epochs
        info = self._info(learning_rate)
        if terminated:
            t.test_accuracy = t.trainer.test_accuracy()
            info |= self._final_info()
        if self.render_mode == "human":
            self.render()
        return self._observation(), float(reward), terminated, False, info

    def make_renderer(self, human: bool) -> Any:
        from envs.automl.lr_rendering import LearningRateRenderer

        return LearningRateRenderer(human=human)

    # ---- helpers ---------------------------------------------------------------------------------------------

    def scene(self) -> Any:
        """What the renderer draws: the training so far, as plain data."""
        from envs.automl.lr_rendering import TrainingScene

        if self.training is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        return TrainingScene.of(self.training, self.epochs)

    def _choose_instance(self, choice: Any) -> Instance:
        """The instance ``reset(options={"instance": choice})`` trains: drawn from the set for None."""
        if choice is None:
            return self.instances[int(self.np_random.integers(len(self.instances)))]
        if isinstance(choice, Instance):
            return choice
        if not is_integer(choice) or not 0 <= choice < len(self.instances):
            kind = ValueError if is_integer(choice) else ArgumentTypeError
            raise kind(
                f"options['instance'] must be an index in 0..{len(self.instances) - 1} or an Instance, "
                f"got {shown(choice)}"
            )
        return self.instances[int(choice)]

    def _decode(self, action: Any) -> float:
        """The learning rate an action asks for, refusing anything that is not an action of the space."""
        if self.discrete:
            return LR_GRID[check_discrete_action(self.action_space, action, " (see LR_GRID)")]
        wanted = "an array of one finite number, -1 to 1 for a rate of 1e-4 to 10 (see action_to_learning_rate)"
        return action_to_learning_rate(check_box_action(self.action_space, action, wanted, clip=True)[0])

    def _observation(self) -> np.ndarray:
        t = self.training
        chance = t.chance_loss
        obs = np.zeros(OBS_SIZE, dtype=np.float32)
        obs[PROGRESS] = t.epoch / self.epochs
        if t.learning_rates:
            obs[LOG_LR] = (learning_rate_to_action(t.learning_rates[-1]) + 1.0) / 2.0
        obs[TRAIN_LOSS] = t.capped(t.train_losses[-1]) / chance
        obs[VAL_LOSS] = t.capped(t.val_losses[-1]) / chance
        obs[VAL_ACCURACY] = t.val_accuracies[-1]
        if t.rewards:
            obs[IMPROVEMENT] = t.rewards[-1] / chance
        obs[BEST_VAL_LOSS] = t.capped(t.best_val_loss) / chance
        obs[DATASET_FEATURES:] = t.features
        return np.clip(obs, _OBS_LOW, _OBS_HIGH)

    def _info(self, learning_rate: float) -> dict[str, Any]:
        t = self.training
        return {
            "epoch": t.epoch,
            "val_loss": t.val_losses[-1],
            "val_accuracy": t.val_accuracies[-1],
            "train_loss": t.train_losses[-1],
            "learning_rate": learning_rate,
            "diverged": t.crashed,
            "instance": t.instance.name,
        }

    def _final_info(self) -> dict[str, Any]:
        t = self.training
        return {
            "final_val_loss": t.loss_ceiling if t.crashed else t.capped(t.val_losses[-1]),
            "final_val_accuracy": t.val_accuracies[-1],
            "test_accuracy": t.test_accuracy,
        }


def _resolve_instances(instance_set: str | Sequence[Instance]) -> tuple[Instance, ...]:
    if isinstance(instance_set, str):
        return INSTANCE_SETS[check_choice("instance_set", instance_set, INSTANCE_SETS, "a sequence of Instance")]
    instances = tuple(instance_set) if isinstance(instance_set, Sequence) else ()
    if not instances or not all(isinstance(i, Instance) for i in instances):
        raise ArgumentTypeError(
            f"instance_set must be 'train', 'test' or a non-empty list of Instance, got {shown(instance_set)}"
        )
    return instances


def _start_training(instance: Instance) -> _Training:
    """A freshly initialised network of ``instance`` with its trainer, measured before any training."""
    dataset = load_dataset(instance.dataset)
    with torch.random.fork_rng(devices=[]):  # the instance's seed, without touching anyone's random state
        torch.manual_seed(instance.seed)
        model = build_network(instance.network, dataset.sample_shape, dataset.n_classes)
    recipe = TrainRecipe(
        learning_rate=10.0**LOG_LR_MIN,  # the optimiser needs one to start; every epoch sets its own
        batch_size=int(instance.batch_size),
        optimizer=instance.optimizer,
        seed=int(instance.seed),
    )
    trainer = Trainer(model, dataset, recipe)
    train_loss, _ = trainer.evaluate("train")
    val_loss, val_accuracy = trainer.evaluate("val")
    return _Training(
        instance=instance,
        trainer=trainer,
        n_classes=dataset.n_classes,
        features=_instance_features(instance, count_parameters(model)),
        val_losses=[val_loss],
        train_losses=[train_loss],
        val_accuracies=[val_accuracy],
        best_val_loss=val_loss,
    )


def _instance_features(instance: Instance, parameters: int) -> np.ndarray:
    """dataset one-hot, optimizer one-hot, scaled log2 batch size, scaled log10 parameter count."""
    dataset = np.eye(len(DATASETS))[DATASETS.index(instance.dataset)]
    optimizer = np.eye(len(OPTIMIZERS))[OPTIMIZERS.index(instance.optimizer)]
    low, high = BATCH_LOG2_RANGE
    batch = (math.log2(instance.batch_size) - low) / (high - low)
    low, high = PARAMS_LOG10_RANGE
    size = (math.log10(max(parameters, 1)) - low) / (high - low)
    return np.concatenate([dataset, optimizer, np.clip([batch, size], 0.0, 1.0)]).astype(np.float32)

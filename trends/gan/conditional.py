"""A conditional GAN on the 8x8 digits, and the augmentation experiment it serves.

Mirza & Osindero 2014, "Conditional Generative Adversarial Nets": both networks are told the label, one-hot,
beside their usual input. The generator (the counterfeiter) learns to forge a *given* digit; the discriminator (the
police) learns to reject a good 3 offered as a 7. So the fakes come labelled, and can be added to a classifier's
training set: the course's "GANs make data for less data-hungry learning".

The augmentation experiment (:func:`augmentation_trials`): take ``labels_per_class`` real labelled digits per class,
train the cGAN on them alone, and compare a classifier trained on those digits with the same classifier trained
on them plus some forgeries per class. Both are trained by :func:`trends.training.train_network`
(same network, recipe and seed; early stopping on the full validation split, the same for both arms), and scored
on the test split. Whether forgeries help when the forger saw only the same few digits is the question; the
answer is measured, not assumed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from trends.data import Dataset
from trends.gan.losses import discriminator_loss, game_scalars, generator_loss
from trends.gan.packing import mlp
from trends.models import LayerSpec, NetworkSpec
from trends.training import TrainRecipe, train_network

CLASSIFIER = NetworkSpec((LayerSpec("dense", 128), LayerSpec("dense", 64)))  # an MLP on the 64 pixels
CLASSIFIER_RECIPE = TrainRecipe(learning_rate=1e-3, batch_size=32, max_epochs=200, patience=20)


@dataclass(frozen=True)
class ConditionalGanConfig:
    """Hyper-parameters of the digits cGAN (``scripts/gan.py augment --steps`` sets the budget)."""

    steps: int = 4000  # training steps: one discriminator update, then one generator update
    batch_size: int = 64  # real and fake samples per step
    latent_dim: int = 16  # dimension of the Gaussian noise z
    width: int = 256  # units of every hidden layer of both networks
    depth: int = 2  # hidden layers of both networks
    learning_rate: float = 2e-4  # Adam's step size, both networks (DCGAN's)
    beta1: float = 0.5  # Adam's first-moment decay (DCGAN's)
    dropout: float = 0.3  # in the discriminator: on a few dozen real digits it would otherwise memorise them
    log_every: int = 200  # steps between scalars and (with TensorBoard) image grids
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "latent_dim", "width", "depth", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class ConditionalGan(nn.Module):
    """The generator and discriminator of the cGAN for images shaped ``sample_shape`` with ``n_classes`` labels.
    Pixels are in [0, 1] (the digits' range), so the generator ends in a sigmoid."""

    def __init__(self, sample_shape: tuple[int, ...], n_classes: int, config: ConditionalGanConfig) -> None:
        super().__init__()
        self.sample_shape, self.n_classes, self.latent_dim = tuple(sample_shape), n_classes, config.latent_dim
        pixels = int(np.prod(sample_shape))
        self.generator = mlp(config.latent_dim + n_classes, config.width, config.depth, pixels, nn.ReLU)
        self.discriminator = mlp(
            pixels + n_classes, config.width, config.depth, 1, lambda: nn.LeakyReLU(0.2), dropout=config.dropout
        )

    def forge(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images of the digits ``labels`` from noise ``z``, shaped ``(n, *sample_shape)``."""
        onehot = F.one_hot(labels, self.n_classes).float()
        return torch.sigmoid(self.generator(torch.cat([z, onehot], dim=1))).view(-1, *self.sample_shape)

    def judge(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The police's logit that ``images`` are real digits of ``labels``."""
        onehot = F.one_hot(labels, self.n_classes).float()
        return self.discriminator(torch.cat([images.flatten(1), onehot], dim=1))

    @torch.no_grad()
    def generate(self, labels: np.ndarray | list[int], seed: int = 0) -> np.ndarray:
        """Float32 images of the requested ``labels``, shaped ``(len(labels), *sample_shape)``, reproducible by
        ``seed``."""
        labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        if labels_t.numel() and (labels_t.min() < 0 or labels_t.max() >= self.n_classes):
            raise ValueError(f"labels must be in [0, {self.n_classes}), got {labels_t.min()}..{labels_t.max()}")
        z = torch.randn(len(labels_t), self.latent_dim, generator=torch.Generator().manual_seed(seed))
        was_training = self.training
        self.eval()
        images = self.forge(z, labels_t).numpy()
        self.train(was_training)
        return images


Probe = Callable[[int, dict[str, float], ConditionalGan], None]  # (step, scalars, gan) at every log step


@dataclass
class ConditionalGanResult:
    gan: ConditionalGan
    history: list[dict[str, float]] = field(default_factory=list)


def train_conditional_gan(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    config: ConditionalGanConfig = ConditionalGanConfig(),
    probe: Probe | None = None,
) -> ConditionalGanResult:
    """Train a cGAN on the labelled images ``x`` (``(n, *sample_shape)``, in [0, 1]) and ``y``.

    ``probe(step, scalars, gan)`` is called at every log step (TensorBoard hangs there). Random numbers come from
    the run's own generators, seeded by ``config.seed``.
    """
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need as many labels as images (and some), got {len(x)} images and {len(y)} labels")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        gan = ConditionalGan(x.shape[1:], n_classes, config)
        rng_state = torch.get_rng_state()
    noise = torch.Generator().manual_seed(config.seed + 1)
    x_t, y_t = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
    betas = (config.beta1, 0.999)
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=config.learning_rate, betas=betas)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=config.learning_rate, betas=betas)
    b = config.batch_size
    result = ConditionalGanResult(gan)
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(rng_state)  # dropout masks
        for step in range(1, config.steps + 1):
            index = torch.randint(len(x_t), (b,), generator=noise)
            fake_labels = torch.randint(n_classes, (b,), generator=noise)
            fakes = gan.forge(torch.randn(b, config.latent_dim, generator=noise), fake_labels)
            d_real = gan.judge(x_t[index], y_t[index])
            d_fake = gan.judge(fakes.detach(), fake_labels)
            loss_d = discriminator_loss(d_real, d_fake)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            loss_g = generator_loss(gan.judge(fakes, fake_labels))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            if step % config.log_every == 0 or step == config.steps:
                scalars = game_scalars(loss_d, loss_g, d_real, d_fake)
                result.history.append({"step": step, **scalars})
                if probe is not None:
                    probe(step, scalars, gan)
    gan.eval()
    return result


def few_labels(dataset: Dataset, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` training samples of every class, chosen by ``seed``: the small labelled set."""
    rng = np.random.default_rng(seed)
    picks = []
    for label in range(dataset.n_classes):
        where = np.flatnonzero(dataset.y_train == label)
        if len(where) < per_class:
            raise ValueError(f"class {label} has only {len(where)} training samples, {per_class} asked")
        picks.append(rng.choice(where, per_class, replace=False))
    index = np.sort(np.concatenate(picks))
    return dataset.x_train[index], dataset.y_train[index]


@dataclass
class AugmentationTrial:
    """One seed of the augmentation experiment at one label count: test accuracies of the two classifiers."""

    labels_per_class: int
    generated_per_class: int
    seed: int
    real_only: float
    augmented: float
    fidelity: float | None = None  # share of the forgeries a judge trained on every label names as asked

    @property
    def gain(self) -> float:
        return self.augmented - self.real_only


def augmentation_trials(
    dataset: Dataset,
    labels_per_class: int,
    generated_per_class: Sequence[int],
    seed: int,
    gan_config: ConditionalGanConfig = ConditionalGanConfig(),
    recipe: TrainRecipe = CLASSIFIER_RECIPE,
    spec: NetworkSpec = CLASSIFIER,
    judge: nn.Module | None = None,
    probe: Probe | None = None,
) -> list[AugmentationTrial]:
    """Test accuracy of ``spec`` trained on ``labels_per_class`` real digits per class, without and with each of
    ``generated_per_class`` cGAN forgeries per class; the cGAN is trained once, on the same real digits. A ``judge``
    (a classifier trained on every label, :func:`train_judge`) measures whether the forgeries look like their
    labels; ``probe`` watches the cGAN's training (see :func:`train_conditional_gan`)."""
    x, y = few_labels(dataset, labels_per_class, seed)
    gan = train_conditional_gan(x, y, dataset.n_classes, replace(gan_config, seed=seed), probe).gan
    recipe = replace(recipe, seed=seed)
    real_only = train_network(spec, replace(dataset, x_train=x, y_train=y), recipe).test_accuracy
    trials = []
    for count in generated_per_class:
        fake_y = np.repeat(np.arange(dataset.n_classes), count)
        fake_x = gan.generate(fake_y, seed=seed)
        mixed = replace(dataset, x_train=np.concatenate([x, fake_x]), y_train=np.concatenate([y, fake_y]))
        augmented = train_network(spec, mixed, recipe).test_accuracy
        fidelity = None if judge is None else label_fidelity(judge, fake_x, fake_y)
        trials.append(AugmentationTrial(labels_per_class, count, seed, real_only, augmented, fidelity))
    return trials


def train_judge(dataset: Dataset, spec: NetworkSpec = CLASSIFIER) -> nn.Module:
    """A classifier trained on every training label: the referee of whether a forgery shows its digit."""
    model = train_network(spec, dataset, TrainRecipe()).model  # every label: the default recipe is enough
    assert model is not None
    return model.eval()


@torch.no_grad()
def label_fidelity(judge: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    """Share of ``images`` that ``judge`` classifies as their ``labels``."""
    judge.eval()
    predicted = judge(torch.as_tensor(images, dtype=torch.float32)).argmax(dim=1).numpy()
    return float((predicted == np.asarray(labels)).mean())

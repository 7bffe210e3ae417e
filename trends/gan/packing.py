"""The 2-D GAN of the mode-collapse benchmarks, vanilla or packed (PacGAN).

Goodfellow et al. 2014, "Generative Adversarial Nets": a generator G (the counterfeiter) maps noise z to a sample;
a discriminator D (the police) says how likely a sample is real. D is trained to tell the data from G's fakes,
G to make D call its fakes real (the non-saturating loss, ``-log D(G(z))``, which gives G a gradient even when D
wins easily). Mode collapse: G finds a few modes D accepts and stays there; D, judging one sample at a time,
cannot see that the fakes lack diversity, only that each one looks real.

Lin, Khetan, Fanti & Oh 2018, "PacGAN: The power of two samples in generative adversarial networks": D judges
``m`` samples at once, concatenated (``pack = m``; all real or all fake). A collapsed generator's packs hold the
same mode twice far more often than real packs do, which D can see, so packing penalises collapse. Everything
else (G, the losses, the optimiser) stays the vanilla GAN's; D's input widens from 2 to ``2 m``.

Architecture, scaled down from PacGAN's 2-D experiments (G: 4 ReLU layers of 400 units with batch norm, z in R^2;
D: 3 maxout layers of 200 units, Adam 1e-4, 400 epochs of 100 000 samples) to train in seconds on one CPU core:
G and D are MLPs of ``depth`` layers of ``width`` units (ReLU in G, LeakyReLU in D), trained for a few thousand
steps with Adam at a higher learning rate, decayed linearly to a tenth so that the last steps place the samples
precisely (the ring's modes are 0.01 wide). The numbers it reaches are therefore this budget's, not the paper's.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from trends.files import atomic_write
from trends.gan.losses import discriminator_loss, game_scalars, generator_loss
from trends.gan.mixtures import EVAL_SAMPLES, Mixture, ModeMetrics, mean_distance_to_modes, mode_metrics

VIEW_SAMPLES = 500  # generated samples kept per snapshot for the viewer: enough to see the modes fill

Probe = Callable[[int, dict[str, float], np.ndarray], None]  # (step, scalars, view samples) at every log step


@dataclass(frozen=True)
class ModeGanConfig:
    """Hyper-parameters of a 2-D GAN run; the command line (``scripts/gan.py modes``) uses the same names."""

    pack: int = 1  # samples the discriminator judges together (PacGAN's m); 1 is the vanilla GAN
    steps: int = 5000  # training steps: one discriminator update, then one generator update
    batch_size: int = 100  # packs per batch (the generator makes batch_size * pack samples a step)
    latent_dim: int = 2  # dimension of the Gaussian noise z (PacGAN's 2-D experiments use 2)
    width: int = 128  # units of every hidden layer of both networks
    depth: int = 3  # hidden layers of both networks
    learning_rate: float = 1e-3  # Adam's step size, both networks
    beta1: float = 0.5  # Adam's first-moment decay (the DCGAN choice; 0.9 oscillates more)
    final_lr_share: float = 0.1  # the learning rate decays linearly to this share of itself: precise modes at the end
    log_every: int = 100  # steps between scalars, snapshots and (with TensorBoard) scatter plots
    seed: int = 0  # initial weights, noise and real samples

    def __post_init__(self) -> None:
        for name in ("pack", "steps", "batch_size", "latent_dim", "width", "depth", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.final_lr_share <= 1:
            raise ValueError(f"final_lr_share must be in (0, 1], got {self.final_lr_share}")
        if not self.learning_rate > 0 or not 0 <= self.beta1 < 1:
            raise ValueError(f"need learning_rate > 0 and 0 <= beta1 < 1, got {self.learning_rate}, {self.beta1}")


@dataclass
class ModeGanResult:
    """A trained 2-D GAN: its final metrics on EVAL_SAMPLES samples, the training history and the snapshots of a
    fixed set of VIEW_SAMPLES noise vectors through the generator, one per log step (what the viewer replays)."""

    config: ModeGanConfig
    mixture: Mixture
    metrics: ModeMetrics
    samples: np.ndarray  # the EVAL_SAMPLES samples scored
    history: list[dict[str, float]] = field(default_factory=list)
    snapshot_steps: list[int] = field(default_factory=list)
    snapshots: list[np.ndarray] = field(default_factory=list)  # each (VIEW_SAMPLES, 2)
    generator: nn.Module | None = field(default=None, repr=False)


def mlp(
    in_features: int,
    width: int,
    depth: int,
    out_features: int,
    activation: Callable[[], nn.Module],
    dropout: float = 0.0,
) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units (each followed by ``dropout`` when it is not 0), then a linear
    output: every network of trendgym's GANs."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_features if i == 0 else width, width), activation()]
        layers += [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(*layers, nn.Linear(width if depth else in_features, out_features))


def pack_samples(samples: torch.Tensor, pack: int) -> torch.Tensor:
    """``(n * pack, d)`` samples -> ``(n, pack * d)`` packs: consecutive samples side by side, as D sees them."""
    if samples.shape[0] % pack:
        raise ValueError(f"{samples.shape[0]} samples do not split into packs of {pack}")
    return samples.reshape(samples.shape[0] // pack, pack * samples.shape[1])


def build_networks(config: ModeGanConfig) -> tuple[nn.Sequential, nn.Sequential]:
    """The generator ``z -> x`` and the discriminator ``pack of m samples -> logit`` for ``config``."""
    generator = mlp(config.latent_dim, config.width, config.depth, 2, nn.ReLU)
    discriminator = mlp(2 * config.pack, config.width, config.depth, 1, lambda: nn.LeakyReLU(0.2))
    return generator, discriminator


def train_mode_gan(
    mixture: Mixture, config: ModeGanConfig = ModeGanConfig(), probe: Probe | None = None
) -> ModeGanResult:
    """Train a GAN (packed when ``config.pack > 1``) on ``mixture`` and score its generator.

    ``probe(step, scalars, view_samples)`` is called at every log step (TensorBoard writing hangs there). The run
    draws its random numbers from its own generators, seeded by ``config.seed``; the caller's are left as they are.
    """
    generator, discriminator, z_view, z_eval = _seeded_start(config)
    noise = torch.Generator().manual_seed(config.seed + 1)
    rng = np.random.default_rng(config.seed)
    betas = (config.beta1, 0.999)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.learning_rate, betas=betas)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.learning_rate, betas=betas)

    def decay(step: int) -> float:
        return 1 - (1 - config.final_lr_share) * step / config.steps

    schedules = [torch.optim.lr_scheduler.LambdaLR(opt, decay) for opt in (opt_d, opt_g)]
    n = config.batch_size * config.pack
    history: list[dict[str, float]] = []
    snapshots: list[np.ndarray] = []
    for step in range(1, config.steps + 1):
        # The police: real packs -> 1, the counterfeiter's packs -> 0.
        x_real = torch.from_numpy(mixture.sample(n, rng))
        x_fake = generator(torch.randn(n, config.latent_dim, generator=noise))
        d_real = discriminator(pack_samples(x_real, config.pack))
        d_fake = discriminator(pack_samples(x_fake.detach(), config.pack))
        loss_d = discriminator_loss(d_real, d_fake)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # The counterfeiter: make the police call its packs real (non-saturating loss).
        loss_g = generator_loss(discriminator(pack_samples(x_fake, config.pack)))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for schedule in schedules:
            schedule.step()
        if step % config.log_every == 0 or step == config.steps:
            with torch.no_grad():
                view = generator(z_view).numpy()
            scalars = game_scalars(loss_d, loss_g, d_real, d_fake)
            scalars["charts/distance_to_modes"] = mean_distance_to_modes(view, mixture)
            history.append({"step": step, **scalars})
            snapshots.append(view)
            if probe is not None:
                probe(step, scalars, view)
    with torch.no_grad():
        samples = generator(z_eval).numpy()
    steps = [int(h["step"]) for h in history]
    return ModeGanResult(config, mixture, mode_metrics(samples, mixture), samples, history, steps, snapshots, generator)


def initial_samples(config: ModeGanConfig) -> np.ndarray:
    """What the untrained generator of ``config`` makes of the view noise: the start a test compares against."""
    generator, _, z_view, _ = _seeded_start(config)
    with torch.no_grad():
        return generator(z_view).numpy()


def _seeded_start(config: ModeGanConfig) -> tuple[nn.Module, nn.Module, torch.Tensor, torch.Tensor]:
    """The initial networks and the fixed view and evaluation noise of ``config.seed``, drawn without touching the
    caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        generator, discriminator = build_networks(config)
        return (
            generator,
            discriminator,
            torch.randn(VIEW_SAMPLES, config.latent_dim),
            torch.randn(EVAL_SAMPLES, config.latent_dim),
        )


@dataclass
class Snapshots:
    """The generator's view samples over training, with the mixture they aim at: what the viewer replays."""

    mixture: Mixture
    steps: np.ndarray  # (k,) training step of each snapshot
    samples: np.ndarray  # (k, VIEW_SAMPLES, 2)
    label: str  # e.g. "PacGAN2 on ring, seed 0"

    @classmethod
    def of(cls, result: ModeGanResult) -> Snapshots:
        label = describe(result.config, result.mixture)
        return cls(result.mixture, np.array(result.snapshot_steps), np.stack(result.snapshots), label)


def describe(config: ModeGanConfig, mixture: Mixture) -> str:
    """``GAN on ring, seed 0`` or ``PacGAN2 on grid, seed 3``: PacGAN's own names for the variants."""
    name = "GAN" if config.pack == 1 else f"PacGAN{config.pack}"
    return f"{name} on {mixture.name}, seed {config.seed}"


def save_snapshots(snapshots: Snapshots, path: Path) -> None:
    """Write ``snapshots`` as a compressed ``.npz`` file, atomically."""
    arrays = {
        "steps": snapshots.steps,
        "samples": snapshots.samples.astype(np.float32),
        "means": snapshots.mixture.means,
        "std": np.array(snapshots.mixture.std),
        "name": np.array(snapshots.mixture.name),
        "label": np.array(snapshots.label),
    }
    atomic_write(Path(path), lambda f: np.savez_compressed(f, **arrays))


def load_snapshots(path: Path) -> Snapshots:
    """Read what :func:`save_snapshots` wrote; a file that is not one raises ValueError."""
    try:
        with np.load(Path(path)) as data:
            mixture = Mixture(str(data["name"]), data["means"], float(data["std"]))
            return Snapshots(mixture, data["steps"], data["samples"], str(data["label"]))
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path} is not a snapshots file written by scripts/gan.py modes ({e})") from None

"""The 2-D benchmarks of the mode-collapse literature and their metrics, as PacGAN (Lin et al. 2018) measures
them after VEEGAN (Srivastava et al. 2017).

* ``ring``: 8 Gaussians, means evenly spaced on the unit circle, standard deviation 0.01.
* ``grid``: 25 Gaussians, means on the 5x5 grid {-4, -2, 0, 2, 4}^2, standard deviation 0.05.

Both values are those of the PacGAN authors' configuration files (``synthetic_data_experiments/2DRing_GAN&PacGAN``
and ``2DGrid_GAN&PacGAN``). The modes are tiny against the distances between them, so a generator has to put its
mass exactly on them: a sample counts as *high quality* when it lies within 3 standard deviations of its nearest
mode, a mode is *covered* when at least one high-quality sample lies near it (PacGAN's code counts it so), and the
*reverse KL* ``KL(p || uniform)`` compares the histogram ``p`` of high-quality samples over the modes with the
uniform one (0 when every mode gets its share; log 8 = 2.08 when a ring generator collapses on one mode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIXTURES = ("ring", "grid")
QUALITY_STDS = 3.0  # a sample within this many standard deviations of a mode is high quality
EVAL_SAMPLES = 2500  # generated samples a GAN is scored on (PacGAN's figures and metrics use 2500)


@dataclass(frozen=True)
class Mixture:
    """An equal-weight mixture of isotropic 2-D Gaussians: the real data a 2-D GAN's generator must imitate."""

    name: str
    means: np.ndarray  # (modes, 2)
    std: float

    @property
    def n_modes(self) -> int:
        return len(self.means)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` float32 samples, each from a mode chosen uniformly."""
        modes = rng.integers(self.n_modes, size=n)
        return (self.means[modes] + self.std * rng.standard_normal((n, 2))).astype(np.float32)


def make_mixture(name: str) -> Mixture:
    """The benchmark ``name``: ``"ring"`` or ``"grid"`` (see the module docstring for the values)."""
    if name == "ring":
        angles = 2 * np.pi * np.arange(8) / 8
        return Mixture("ring", np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.01)
    if name == "grid":
        ticks = np.arange(-4.0, 5.0, 2.0)
        return Mixture("grid", np.array([(x, y) for x in ticks for y in ticks]), 0.05)
    raise ValueError(f"unknown mixture {name!r}; choose one of {', '.join(MIXTURES)}")


@dataclass(frozen=True)
class ModeMetrics:
    """How well samples imitate a mixture. ``counts[i]`` is the number of high-quality samples of mode ``i``."""

    modes_covered: int
    n_modes: int
    high_quality: float  # share of samples within QUALITY_STDS standard deviations of their nearest mode
    reverse_kl: float  # KL(high-quality histogram || uniform); inf when no sample is high quality
    counts: tuple[int, ...]

    def describe(self) -> str:
        return (
            f"modes {self.modes_covered}/{self.n_modes}, high quality {self.high_quality:.1%}, "
            f"reverse KL {self.reverse_kl:.3f}"
        )


def nearest_modes(samples: np.ndarray, mixture: Mixture) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's nearest mode and its distance to it (in the data's units)."""
    distances = np.linalg.norm(np.asarray(samples, dtype=np.float64)[:, None, :] - mixture.means[None], axis=2)
    nearest = distances.argmin(axis=1)
    return nearest, distances[np.arange(len(nearest)), nearest]


def mode_metrics(samples: np.ndarray, mixture: Mixture, min_count: int = 1) -> ModeMetrics:
    """Score ``samples`` (shaped ``(n, 2)``) against ``mixture``. A mode is covered when at least ``min_count``
    high-quality samples are near it (1, as in PacGAN's code; VEEGAN's stricter counts raise it)."""
    samples = np.asarray(samples)
    if samples.ndim != 2 or samples.shape[1] != 2 or len(samples) == 0:
        raise ValueError(f"samples must be shaped (n, 2) with n >= 1, got {samples.shape}")
    nearest, distance = nearest_modes(samples, mixture)
    good = distance < QUALITY_STDS * mixture.std
    counts = np.bincount(nearest[good], minlength=mixture.n_modes)
    return ModeMetrics(
        modes_covered=int((counts >= min_count).sum()),
        n_modes=mixture.n_modes,
        high_quality=float(good.mean()),
        reverse_kl=reverse_kl_to_uniform(counts),
        counts=tuple(int(c) for c in counts),
    )


def reverse_kl_to_uniform(counts: np.ndarray) -> float:
    """``KL(p || u) = sum_i p_i log(p_i / u_i)`` of the histogram ``counts`` against the uniform one. This direction
    stays finite when modes are missed (they add nothing), and grows as the mass piles on fewer modes."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.sum() <= 0:
        return math.inf
    p = counts[counts > 0] / counts.sum()
    return float(np.sum(p * np.log(p * len(counts))))


def mean_distance_to_modes(samples: np.ndarray, mixture: Mixture) -> float:
    """Mean distance of the samples to their nearest modes: falls as the generator's samples approach the data."""
    return float(nearest_modes(samples, mixture)[1].mean())

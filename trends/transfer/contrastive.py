"""Self-supervised pre-training by contrast: SimCLR on the unlabelled pool.

Chen, Kornblith, Norouzi & Hinton (2020), "A Simple Framework for Contrastive Learning of Visual
Representations", arXiv:2002.05709.

Each input ``x`` of a batch of ``N`` is augmented twice; the encoder ``f`` and a small projection head ``g`` map
both views to ``z = g(f(x))``; the NT-Xent loss (section 2.1) asks each view to pick its partner out of the other
``2N - 2`` views of the batch::

    l(i, j) = -log( exp(sim(z_i, z_j) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau) ),   sim = cosine

averaged over all ``2N`` ordered positive pairs. The encoder learns what the augmentations leave unchanged, so
the augmentations are the prior: they should change what does not matter for the class and keep what does.

- MNIST-1D: the generator itself makes each signal from its class template by a dilation (interpolation), an
  amplitude scaling, a circular translation, noise and a shear (an added linear trend), so the same kinds of
  change are applied here: a random window stretched back to full length (SimCLR's crop and resize, in 1-D), a
  circular shift of up to ``max_shift`` steps, an amplitude scale in ``[1 - scale, 1 + scale]``, a random shear
  and Gaussian noise. Label-preserving by construction.
- digits (8x8): a shift of up to one pixel (zero filled, the background) and a little Gaussian noise. Larger
  shifts push strokes off an 8-pixel image; flips and rotations are left out because they turn a 6 into a 9 or a
  2 into a 5.

After pre-training ``g`` is dropped and ``f`` is transferred (the paper's finding: the representation before the
projection transfers better than ``z``). Everything else is :mod:`trends.training`'s loop: the pretext loss goes
in :meth:`Trainer.batch_loss`, and early stopping watches the same loss on the validation inputs, augmented with
a fixed seed so that epochs are compared on the same views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from trends.data import Dataset
from trends.training import Trainer, TrainRecipe


@dataclass(frozen=True)
class Augmentation:
    """Random changes that keep a sample's class (see the module docstring for why these)."""

    max_shift: int  # steps (1-D, circular) or pixels (2-D, zero filled) a view is moved by, at most
    scale: float  # amplitude is multiplied by a factor drawn in [1 - scale, 1 + scale]
    noise: float  # standard deviation of the added Gaussian noise, in the data's units
    shear: float = 0.0  # 1-D: a linear trend from -shear/2 to +shear/2 times a factor in [-1, 1] is added
    crop: float = 1.0  # 1-D: a window of a share in [crop, 1] of the signal is stretched back to full length

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """A random view of each sample of the batch ``x`` (``(N, C, L)`` or ``(N, C, H, W)``), drawn from torch's
        global random state (the trainer's own while it trains)."""
        n, ones = len(x), [1] * (x.dim() - 1)
        if self.crop < 1.0:
            x = _resized_crop(x, self.crop + (1.0 - self.crop) * torch.rand(n))
        x = _shift(x, torch.randint(-self.max_shift, self.max_shift + 1, (n, x.dim() - 2)))
        x = x * (1.0 + self.scale * (2.0 * torch.rand(n, *ones) - 1.0))
        if self.shear:
            ramp = torch.linspace(-0.5, 0.5, x.shape[-1])
            x = x + self.shear * (2.0 * torch.rand(n, *ones) - 1.0) * ramp
        return x + self.noise * torch.randn_like(x)


AUGMENTATIONS = {
    "mnist1d": Augmentation(max_shift=10, scale=0.2, noise=0.1, shear=0.5, crop=0.7),  # signals of unit std
    "digits": Augmentation(max_shift=1, scale=0.1, noise=0.05),  # pixels in [0, 1]
}


def _shift(x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Move each sample by its own offset: circularly along a 1-D signal (how MNIST-1D translates), with zeros
    coming in on a 2-D image. Vectorised by indexing, one gather for the whole batch."""
    n = len(x)
    if x.dim() == 3:
        length = x.shape[-1]
        return _take(x, (torch.arange(length) - offsets[:, :1]) % length)
    height, width = x.shape[-2:]
    pad = int(offsets.abs().max()) if n else 0
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = pad - offsets[:, 0:1] + torch.arange(height)  # (N, H)
    cols = pad - offsets[:, 1:2] + torch.arange(width)  # (N, W)
    batch = torch.arange(n)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def _resized_crop(x: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
    """SimCLR's random crop and resize, for 1-D signals ``(N, C, L)``: a window of ``share[i] * L`` steps at a
    random start, linearly interpolated back to ``L`` steps (MNIST-1D's generator dilates its templates by the
    same kind of interpolation)."""
    n, length = len(x), x.shape[-1]
    start = torch.rand(n) * (1.0 - share) * (length - 1)
    position = start[:, None] + share[:, None] * (length - 1) * torch.linspace(0, 1, length)  # (N, L)
    left = position.floor().long().clamp(max=length - 2)
    weight = (position - left)[:, None, :]
    return _take(x, left) * (1.0 - weight) + _take(x, left + 1) * weight


def _take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[i, c, index[i, t]]`` for every sample ``i``, channel ``c`` and step ``t``."""
    return x.gather(-1, index[:, None, :].expand_as(x).contiguous())


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalized-temperature cross-entropy of the paired views ``z1[i]``, ``z2[i]`` (each ``(N, D)``):
    the mean over the ``2N`` views of ``-log softmax`` of the cosine similarity to its partner, among all other
    views, divided by ``temperature``."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    similarity = z @ z.T / temperature
    similarity = similarity.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), -math.inf)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(similarity, partner)


def projection_head(width: int, out_features: int) -> nn.Module:
    """SimCLR's ``g``: one hidden layer with a ReLU; thrown away after pre-training."""
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, out_features))


class ContrastiveTrainer(Trainer):
    """:class:`~trends.training.Trainer` minimising NT-Xent on two augmented views of each training input (labels
    unused). :meth:`evaluate` reports the same loss on the validation inputs, so early stopping and
    :func:`~trends.training.fit` work unchanged; its accuracy is NaN, there being no classes to be right about.

    :param model: ``g(f(x))``, the encoder followed by the projection head
    :param dataset: the unlabelled pool (:func:`trends.transfer.tasks.unlabelled_pool`)
    """

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        augmentation: Augmentation,
        temperature: float,
        recipe: TrainRecipe,
    ) -> None:
        super().__init__(model, dataset, recipe)
        self.augmentation = augmentation
        self.temperature = temperature

    def batch_loss(self, batch: torch.Tensor) -> torch.Tensor:
        x = self.splits["train"][0][batch]
        return self.pretext_loss(x)

    def pretext_loss(self, x: torch.Tensor) -> torch.Tensor:
        """NT-Xent of two random views of each sample of ``x``."""
        return nt_xent(self.model(self.augmentation(x)), self.model(self.augmentation(x)), self.temperature)

    @torch.no_grad()
    def evaluate(self, split: str = "val") -> tuple[float, float]:
        x = self.splits[split][0]
        self.model.eval()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.recipe.seed)  # the same views every epoch
            losses = [self.pretext_loss(chunk).item() for chunk in x.split(self.recipe.batch_size) if len(chunk) > 1]
        return float(np.mean(losses)), math.nan

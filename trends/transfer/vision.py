"""Pre-trained vision for agents: a convolutional encoder learnt once on frames of a game and reused by a policy,
the course's "features of colour, shape and texture learned once and reused".

The encoder has the shape of Mnih et al. (2015)'s Nature DQN network (three convolutions and a linear layer,
the network Stable-Baselines3's ``CnnPolicy`` uses as its ``NatureCNN`` features extractor), with the same
parameter names, so its ``state_dict`` loads into a policy's extractor as it is. Inputs are channel-first float
images in ``[0, 1]``: what the policy's preprocessing hands its extractor (uint8 frames divided by 255).

Two ways to pre-train it on frames of the ski env, without any reward:

- supervised: regress the env's state vector (speed, heading, the next gate, trees...) from the frame. The
  state names what a skier must see, so the encoder is taught to see it; the targets are standardised so that
  every component weighs alike.
- self-supervised: SimCLR (Chen et al. 2020, arXiv:2002.05709) with NT-Xent
  (:func:`trends.transfer.contrastive.nt_xent`) on two augmented views of each frame. The augmentations are the
  prior: a shift of a few pixels with the border repeated (DrQ's random shift, Kostrikov et al. 2020; the view
  follows the skier, so the scene never moves much), a brightness and contrast change, a little noise. No flips
  and no rotations: left and right and the fall line are what the skier acts on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from trends.transfer.contrastive import nt_xent, projection_head

FEATURES_DIM = 512  # NatureCNN's default features_dim
PROJECTION_DIM = 64  # SimCLR's z, thrown away after pre-training


class NatureEncoder(nn.Module):
    """The Nature DQN convolutional body; attribute names (``cnn``, ``linear``) match SB3's ``NatureCNN``."""

    def __init__(self, in_channels: int = 3, size: int = 84, features_dim: int = FEATURES_DIM) -> None:
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flatten = self.cnn(torch.zeros(1, in_channels, size, size)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flatten, features_dim), nn.ReLU())
        self.features_dim = features_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(x))


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames ``(N, H, W, C)`` as the policy sees them: float ``(N, C, H, W)`` in ``[0, 1]``."""
    return torch.as_tensor(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)


@dataclass(frozen=True)
class FrameAugmentation:
    """Random changes of a frame that keep what the skier must act on (see the module docstring for why)."""

    max_shift: int = 4  # pixels a view moves by at most, each axis, the border repeated
    brightness: float = 0.2  # an offset drawn in [-brightness, brightness] is added (images in [0, 1])
    contrast: float = 0.2  # the image is scaled about its mean by a factor in [1 - contrast, 1 + contrast]
    noise: float = 0.02  # standard deviation of the added Gaussian noise

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """A random view of each frame of the batch ``x`` ``(N, C, H, W)``, from torch's global random state."""
        n, _, height, width = x.shape
        shift = torch.randint(-self.max_shift, self.max_shift + 1, (n, 2)).float()
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, 0, 2] = 2.0 * shift[:, 0] / width  # affine_grid's coordinates span [-1, 1]
        theta[:, 1, 2] = 2.0 * shift[:, 1] / height
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="nearest", padding_mode="border", align_corners=False)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        factor = 1.0 + self.contrast * (2.0 * torch.rand(n, 1, 1, 1) - 1.0)
        offset = self.brightness * (2.0 * torch.rand(n, 1, 1, 1) - 1.0)
        x = (x - mean) * factor + mean + offset
        return (x + self.noise * torch.randn_like(x)).clamp(0.0, 1.0)


@dataclass(frozen=True)
class VisionRecipe:
    """How an encoder is pre-trained (both pretexts)."""

    epochs: int = 10  # passes over the frames
    batch_size: int = 128  # frames per step; SimCLR's negatives are the other 2 * (batch - 1) views
    lr: float = 3e-4  # Adam's learning rate; at 1e-3 NT-Xent stayed at chance on ski frames
    seed: int = 0  # weights, batches and augmentations
    features_dim: int = FEATURES_DIM  # width of the encoder's output, the policy's features
    temperature: float = 0.2  # NT-Xent's tau (contrastive only)


def pretrain_supervised(
    frames: np.ndarray, states: np.ndarray, recipe: VisionRecipe | None = None
) -> tuple[NatureEncoder, list[float]]:
    """An encoder trained to regress the standardised state vector ``states[i]`` from ``frames[i]`` (uint8
    ``(N, H, W, C)``), through a linear head dropped afterwards. Returns the encoder and the mean training loss
    (MSE in standard deviations squared) of each epoch."""
    recipe = recipe or VisionRecipe()
    x = frames_to_tensor(frames)
    y = torch.as_tensor(states, dtype=torch.float32)
    y = (y - y.mean(0)) / y.std(0).clamp_min(1e-6)
    with _seeded(recipe.seed):
        encoder = NatureEncoder(x.shape[1], x.shape[2], recipe.features_dim)
        model = nn.Sequential(encoder, nn.Linear(recipe.features_dim, y.shape[1]))
        history = _train(model, lambda batch: F.mse_loss(model(x[batch]), y[batch]), len(x), recipe)
    return encoder, history


def pretrain_contrastive(
    frames: np.ndarray, recipe: VisionRecipe | None = None, augmentation: FrameAugmentation | None = None
) -> tuple[NatureEncoder, list[float]]:
    """An encoder trained by SimCLR on unlabelled ``frames`` (uint8 ``(N, H, W, C)``) with NT-Xent between two
    :class:`FrameAugmentation` views of each frame, through a projection head dropped afterwards. Returns the
    encoder and the mean training loss of each epoch (``log(2 * batch - 1)`` is chance)."""
    recipe = recipe or VisionRecipe()
    augment = augmentation or FrameAugmentation()
    x = frames_to_tensor(frames)
    with _seeded(recipe.seed):
        encoder = NatureEncoder(x.shape[1], x.shape[2], recipe.features_dim)
        model = nn.Sequential(encoder, projection_head(recipe.features_dim, PROJECTION_DIM))

        def loss(batch: torch.Tensor) -> torch.Tensor:
            views = x[batch]
            return nt_xent(model(augment(views)), model(augment(views)), recipe.temperature)

        history = _train(model, loss, len(x), recipe, min_batch=2)
    return encoder, history


def _train(
    model: nn.Module,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    recipe: VisionRecipe,
    min_batch: int = 1,
) -> list[float]:
    """Adam on shuffled mini-batches of indices ``0..n-1``; the mean loss of each epoch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    model.train()
    history = []
    for _ in range(recipe.epochs):
        losses = []
        for batch in torch.randperm(n).split(recipe.batch_size):
            if len(batch) < min_batch:
                continue
            loss = batch_loss(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        history.append(float(np.mean(losses)))
    model.eval()
    return history


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch's global generator and use one thread inside, restoring both on the way out, so pre-training
    is repeatable and leaves the caller's random state alone."""
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

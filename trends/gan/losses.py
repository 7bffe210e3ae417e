"""The adversarial game both trendgym GANs play (Goodfellow et al. 2014), in one place.

The police (discriminator) minimise ``-log D(x) - log(1 - D(G(z)))``; the counterfeiter (generator) minimises
the non-saturating ``-log D(G(z))`` rather than the minimax ``log(1 - D(G(z)))``, which vanishes exactly when the
police win easily, at the start of training. Both are written on logits (``binary_cross_entropy_with_logits``),
which is the numerically stable form of the same sums.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The police's loss: real called real, fakes called fake."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    return real + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The counterfeiter's non-saturating loss: its fakes called real."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def game_scalars(
    loss_d: torch.Tensor, loss_g: torch.Tensor, real_logits: torch.Tensor, fake_logits: torch.Tensor
) -> dict[str, float]:
    """What TensorBoard shows of a step: both losses, and the police's accuracy on real and on fake samples (both
    near 1 when the police win, near 0.5 when the fakes pass)."""
    return {
        "losses/discriminator": loss_d.item(),
        "losses/generator": loss_g.item(),
        "charts/discriminator_accuracy_real": float((real_logits > 0).float().mean()),
        "charts/discriminator_accuracy_fake": float((fake_logits < 0).float().mean()),
    }

"""GANs: a generator (the counterfeiter) learns to make fakes a discriminator (the police) cannot tell from the
data. Here on the 2-D benchmarks of the mode-collapse literature, vanilla and packed (PacGAN), and conditioned on
the label on the 8x8 digits, whose labelled forgeries feed the augmentation experiment.

* :mod:`trends.gan.mixtures`: the ring and grid mixtures and their metrics (modes covered, high quality, reverse KL)
* :mod:`trends.gan.packing`: the 2-D GAN and PacGAN, and the snapshots the viewer replays
* :mod:`trends.gan.conditional`: the digits cGAN and the augmentation experiment
* :mod:`trends.gan.board`: TensorBoard scalars, scatter plots and digit grids
"""

from trends.gan.conditional import (
    AugmentationTrial,
    ConditionalGan,
    ConditionalGanConfig,
    augmentation_trials,
    few_labels,
    train_conditional_gan,
)
from trends.gan.mixtures import MIXTURES, Mixture, ModeMetrics, make_mixture, mean_distance_to_modes, mode_metrics
from trends.gan.packing import (
    ModeGanConfig,
    ModeGanResult,
    Snapshots,
    load_snapshots,
    pack_samples,
    save_snapshots,
    train_mode_gan,
)

__all__ = [
    "MIXTURES",
    "AugmentationTrial",
    "ConditionalGan",
    "ConditionalGanConfig",
    "Mixture",
    "ModeGanConfig",
    "ModeGanResult",
    "ModeMetrics",
    "Snapshots",
    "augmentation_trials",
    "few_labels",
    "load_snapshots",
    "make_mixture",
    "mean_distance_to_modes",
    "mode_metrics",
    "pack_samples",
    "save_snapshots",
    "train_conditional_gan",
    "train_mode_gan",
]

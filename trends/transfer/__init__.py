"""Pre-training and transfer, the course's "less data hungry" trend: an encoder learnt on a large labelled source
task (supervised) or on unlabelled inputs with a task it invents for itself (self-supervised, contrastive) is
reused on a target task with few labels, frozen (linear probe) or fine-tuned, against training from scratch.

- :mod:`trends.transfer.tasks`: the source (classes 0-4) and target (5-9) tasks, label fractions, the pool
- :mod:`trends.transfer.contrastive`: SimCLR's augmentations, NT-Xent loss and trainer
- :mod:`trends.transfer.encoders`: pre-training and the encoder cache
- :mod:`trends.transfer.finetune`: :func:`run_transfer`, one target-task run
"""

from trends.transfer.encoders import DEFAULT_CACHE, PRETRAININGS, Encoder, PretrainConfig, load_encoder
from trends.transfer.finetune import LABEL_FRACTIONS, MODES, TransferConfig, TransferResult, run_transfer
from trends.transfer.tasks import source_task, stratified_subset, target_task, unlabelled_pool

__all__ = [
    "DEFAULT_CACHE",
    "LABEL_FRACTIONS",
    "MODES",
    "PRETRAININGS",
    "Encoder",
    "PretrainConfig",
    "TransferConfig",
    "TransferResult",
    "load_encoder",
    "run_transfer",
    "source_task",
    "stratified_subset",
    "target_task",
    "unlabelled_pool",
]

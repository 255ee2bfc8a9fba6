"""Weight pruning (权重裁剪), chapter 3.1: magnitude masks, layer-wise and global
thresholds, the cubic schedule, pruning while fine-tuning (`masks`); sparse files
that really are smaller (`sparse_io`); lab 3.1's checks (`checks`).
"""

from . import checks, sparse_io
from .masks import (apply_masks, cubic_sparsity, global_masks, layerwise_masks,
                    magnitude_mask, Masks, masks_for, matmul_times, model_sparsity,
                    prunable, prune_finetune, prune_oneshot, PruneConfig,
                    sensitivity_scan, sparsity_of, threshold)

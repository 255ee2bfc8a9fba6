"""Neuron pruning (模型剪枝), chapter 3.4: unit scores, physical removal of units
and channels, iterative pruning with fine-tuning (`units`); lab 3.4's checks
(`checks`).
"""

from . import checks
from .units import (CRITERIA, activation_scores, FrontEnd, gate_rows, gru_times, Keep,
                    keep_all, keep_inputs, keep_top, NeuronPruneConfig, norm_scores,
                    prune_units_finetune, random_scores, remove_gru_units,
                    remove_linear_units, remove_units, scores_for, taylor_scores,
                    unit_groups, unit_module, unit_rows, zero_units)

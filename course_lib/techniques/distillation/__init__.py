"""Knowledge distillation (知识蒸馏), chapter 3.3: students trained by CTC, by
frame-level KD, by sequence-level KD on teacher-labelled audio (`students`; the
loss itself is `core.losses`); lab 3.3's check (`checks`).
"""

from . import checks
from .students import (METHODS, SCARCE, SCARCE_METHODS, STUDENT, DistillConfig,
                       pseudo_label, train_student)

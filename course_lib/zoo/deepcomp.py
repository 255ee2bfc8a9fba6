"""Chapter 4's compressed models, cached and shipped: two routes to the budget.

- `deep_compressed_baseline`: Deep Compression on the baseline: chapter 3.1's long
  pruned run (`pruned.LONG`), k shared values per matrix with the centroids
  fine-tuned, Huffman-coded;
- `deep_compressed_student`: chapter 3.3's sequence-level student, its weights
  shared and Huffman-coded, unpruned, so the file stores no positions.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn

from ..combined.deepcomp import (PLAIN, bake, deep_metadata, load_deep, save_deep,
                                 share_pruned_weights)
from ..core.evaluation import dev_wer, train_examples
from ..core.losses import DistillLoss
from ..core.training import FinetuneConfig, finetune
from ..core.utils import config_hash, sha256_file
from ..techniques.distillation.students import DistillConfig
from . import cached_result
from .baseline import baseline_path, load_baseline
from .pruned import LONG, long_pruned_baseline
from .students import distilled_student


def _default_share() -> FinetuneConfig:
    return FinetuneConfig(steps=400, lr=3e-4, seed=1)


@dataclass(frozen=True)
class DeepConfig:
    """Start from the long-budget pruned baseline (`pruned.LONG`, 90 %), share k
    values per matrix and fine-tune the centroids with the dense model as teacher,
    then store (chapter 4)."""

    k: int = 16
    share: FinetuneConfig = field(default_factory=_default_share)
    alpha: float = 0.5  # KD weight while fine-tuning the centroids
    temperature: float = 2.0
    gap_bits: int = 8  # with Huffman coding, long gaps beat fillers (exercise 4.1)
    dense_dtype: str = "float16"


# The student route fine-tunes its centroids on plain CTC (alpha = 0): the
# sequence-level student places its characters a frame earlier than the teacher
# (chapter 3.3), and a frame-level KL term would pull its alignment apart.
STUDENT_DEEP = DeepConfig(alpha=0.0, share=FinetuneConfig(steps=400, lr=1e-3, seed=1))

Result = tuple[nn.Module, Path, list[dict]]


def result_key(cfg: DeepConfig, baseline_file: Path) -> str:
    """Hash of everything the compressed model depends on (baseline file included)."""
    return config_hash(dict(baseline=sha256_file(baseline_file), deep=asdict(cfg),
                            prune=asdict(LONG)))


def student_key(cfg: DeepConfig, baseline_file: Path, student_file: Path) -> str:
    """Hash of everything the student route depends on (both model files included)."""
    return config_hash(dict(baseline=sha256_file(baseline_file), deep=asdict(cfg),
                            student=sha256_file(student_file)))


def load_with_history(path: Path) -> Result:
    """(model, path, history) of a `save_deep` file."""
    return load_deep(path), path, deep_metadata(path)["history"]


def deep_compressed_baseline(cfg: DeepConfig = DeepConfig(), eval_every: int = 250,
                             progress: bool = True, allow_shipped: bool = True
                             ) -> Result:
    """The baseline through the whole pipeline, as a Huffman-coded `save_deep` file.

    Cached by the baseline's sha256 and the configuration; the package carries the
    default result (`python -m course_lib deep-compress --ship`: the pruning run,
    about an hour on 2 cores, then the sharing), used only when its
    recorded key equals this call's. History: sparsity and dev WER during pruning,
    then dev WER while the centroids are fine-tuned (entries with "stage": "share").
    """
    key = result_key(cfg, baseline_path(progress))

    def make(path: Path) -> None:
        model, _, history = long_pruned_baseline(progress)  # 3.1's method, longer
        _share_and_save(model, cfg, path, history, eval_every, progress,
                        result_key=key)

    return cached_result("deepcomp", key, "model.dc", make, load_with_history,
                         shipped="deepcomp" if allow_shipped else None, plain=PLAIN)


def deep_compressed_student(cfg: DeepConfig = STUDENT_DEEP, eval_every: int = 250,
                            progress: bool = True, allow_shipped: bool = True
                            ) -> Result:
    """Chapter 4's student route: chapter 3.3's sequence-level student
    (`distilled_student`), its weights shared (k values per matrix, centroids
    fine-tuned) and Huffman-coded, unpruned, so the file stores no positions.

    Cached and shipped like `deep_compressed_baseline` (`python -m course_lib
    deep-compress --ship` makes both). History: dev WER while the centroids train.
    """
    base = baseline_path(progress)
    student, student_file, _ = distilled_student(DistillConfig("sequence"),
                                                 progress=progress)
    key = student_key(cfg, base, student_file)

    def make(path: Path) -> None:
        _share_and_save(student, cfg, path, [], eval_every, progress,
                        result_key=key, student_sha256=sha256_file(student_file))

    return cached_result("student-deep", key, "model.dc", make, load_with_history,
                         shipped="student-deep" if allow_shipped else None,
                         plain=PLAIN)


def _share_and_save(model: nn.Module, cfg: DeepConfig, path: Path, history: list[dict],
                    eval_every: int, progress: bool, **meta: object) -> None:
    """Share k values per matrix, fine-tune the centroids (CTC mixed with KL to the
    baseline, weight `cfg.alpha`), bake, and save Huffman-coded to `path`."""
    teacher = load_baseline(progress)
    examples = train_examples(progress=progress)
    t0 = time.perf_counter()
    share_pruned_weights(model, cfg.k)
    shared = [dict(step=0, stage="share", dev_wer=dev_wer(model))]
    shared += finetune(model, examples, cfg.share,
                       loss_fn=DistillLoss(teacher, cfg.alpha, cfg.temperature),
                       evaluate=lambda step: dict(dev_wer=dev_wer(model)),
                       eval_every=eval_every // 2, progress=progress, desc="centroids")
    for h in shared:
        h["stage"] = "share"
    bake(model)
    save_deep(model, path, cfg.gap_bits, True, cfg.dense_dtype,
              history=history + shared, seconds=round(time.perf_counter() - t0, 1),
              baseline_sha256=sha256_file(baseline_path(progress)), config=asdict(cfg),
              **meta)

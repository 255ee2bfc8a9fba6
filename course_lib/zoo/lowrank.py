"""Chapter 5's low-rank baseline: factorized by SVD, fine-tuned, cached and shipped."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.evaluation import dev_wer, train_examples
from ..core.losses import DistillLoss
from ..core.model import CTCModel
from ..core.modelfile import save_model
from ..core.training import FinetuneConfig, finetune
from ..core.utils import config_hash, sha256_file
from ..techniques.lowrank.svd import choose_ranks, factorize
from . import cached_result, load_with_history
from .baseline import baseline_path, load_baseline


@dataclass(frozen=True)
class LowRankConfig:
    """Ranks from one energy threshold, then a fine-tune with the baseline as
    teacher: (1 - alpha) CTC + alpha T^2 KL, the loss of chapter 3.3."""

    # The highest threshold, in steps of 0.01, that still removes half the
    # parameters (chapter 5's rule, scanned on each baseline): 0.75 on v1's; the v2
    # baseline's spectra are flatter, 0.75 keeps 1.81x fewer and 0.68 2.03x.
    energy: float = 0.68
    alpha: float = 0.5
    temperature: float = 2.0
    train: FinetuneConfig = field(default_factory=lambda: FinetuneConfig(
        steps=2000, lr=1e-3, warmup=0.05))


def result_key(cfg: LowRankConfig, baseline_file: Path) -> str:
    """Hash of everything the fine-tuned low-rank model depends on."""
    return config_hash(dict(baseline=sha256_file(baseline_file), lowrank=asdict(cfg)))


def lowrank_baseline(cfg: LowRankConfig = LowRankConfig(), eval_every: int = 250,
                     progress: bool = True, allow_shipped: bool = True
                     ) -> tuple[CTCModel, Path, list[dict]]:
    """The baseline factorized at `cfg.energy` and fine-tuned, as a model file.

    Cached by the baseline's sha256 and the configuration; the package carries
    the default result (`python -m course_lib lowrank --ship`), used only when
    its recorded key equals this call's. History: dev WER along the fine-tune.
    """
    base = baseline_path(progress)
    key = result_key(cfg, base)

    def make(path: Path) -> None:
        teacher = load_baseline(progress)
        model = factorize(teacher, choose_ranks(teacher, cfg.energy))
        examples = train_examples(progress=progress)
        t0 = time.perf_counter()
        loss = DistillLoss(teacher, cfg.alpha, cfg.temperature)
        history = finetune(model, examples, cfg.train, loss_fn=loss,
                           evaluate=lambda step: dict(dev_wer=dev_wer(model)),
                           eval_every=eval_every, progress=progress)
        save_model(model.eval(), path, lowrank_config=asdict(cfg), history=history,
                   seconds=round(time.perf_counter() - t0, 1), result_key=key,
                   baseline_sha256=sha256_file(base))

    return cached_result("lowrank", key, "model.safetensors", make, load_with_history,
                         shipped="lowrank" if allow_shipped else None)

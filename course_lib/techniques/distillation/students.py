"""Knowledge distillation (知识蒸馏) for CTC models: students (chapter 3.3).

A small student learns from a teacher in one of four ways on the same budget:
CTC alone, CTC mixed with the frame-level KL term (`core.losses.DistillLoss`, the
loss itself), CTC on extra utterances the teacher transcribed (sequence-level KD),
or both. The teacher and the data are arguments: nothing here loads a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from torch import nn

from ...core.batching import Example
from ...core.inference import transcribe
from ...core.losses import DistillLoss, ctc_loss
from ...core.model import CTCModel, ModelConfig
from ...core.text import encode
from ...core.training import FinetuneConfig, finetune
from ...core.utils import seed_everything

# ----------------------------------------------------------------------------------
# Students: one architecture, four ways to train it on the same budget.

# Narrower (conv 256 -> 128 channels, GRU 144 -> 96 units) *and* shallower (3 -> 2
# GRU layers): 28 % of the teacher's parameters, and one sequential GRU loop fewer
# per direction, which is what bounds CPU latency (chapter 3.4 measured it).
# It has the teacher's frame rate (one strided conv, 20 ms), which frame-level KD
# needs: 29 % of the v2 teacher.
STUDENT = ModelConfig(conv_channels=128, rnn_hidden=96, rnn_layers=2, n_conv=1)
METHODS = ("ctc", "frame", "sequence", "frame+sequence")
# Chapter 3.3.5 repeats the comparison with only the first SCARCE transcripts: the
# case sequence-level KD is made for (a teacher, few labels, much unlabelled audio).
SCARCE = 2000
SCARCE_METHODS = ("ctc", "sequence")


@dataclass(frozen=True)
class DistillConfig:
    """One student training run (chapter 3.3); every method gets the same steps.

    - ``ctc``: the student alone, CTC on the labelled training set (no KD);
    - ``frame``: CTC + α T² KL to the teacher's frame posteriors (`DistillLoss`);
    - ``sequence``: CTC on the training set plus `extra` unlabelled utterances
      transcribed by the teacher (sequence-level KD, Kim and Rush, 2016);
    - ``frame+sequence``: the frame-level loss on both.
    """

    method: str = "frame"
    student: ModelConfig = STUDENT
    alpha: float = 0.5  # weight of the KL term
    temperature: float = 2.0
    extra: int = 10000  # unlabelled utterances (train voices, another seed)
    extra_seed: int = 4321
    train: FinetuneConfig = field(default_factory=lambda: FinetuneConfig(
        steps=12000, lr=3e-3, warmup=0.05, weight_decay=1e-2))

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")

    @property
    def frame(self) -> bool:
        """Whether the loss has the frame-level KL term."""
        return self.method in ("frame", "frame+sequence")

    @property
    def sequence(self) -> bool:
        """Whether the data include the teacher-labelled extra utterances."""
        return self.method in ("sequence", "frame+sequence")


def pseudo_label(teacher: nn.Module, examples: list[Example], lexicon: bool = True
                 ) -> list[Example]:
    """Copies of `examples` whose transcripts are the teacher's (sequence-level KD).

    The teacher decodes as `lexicon` says; True is the running example's recognizer:
    greedy snapped to the command vocabulary in v1, the lexicon beam search with the
    grammar's trigram in v2. Utterances it hears as silence are left out: an empty
    target teaches nothing but "blank".
    """
    hyps = transcribe(teacher, examples, lexicon=lexicon)
    return [Example(e.id, h, e.feats, encode(h)) for e, h in zip(examples, hyps) if h]


def train_student(cfg: DistillConfig, teacher: nn.Module, examples: list[Example],
                  extra: list[Example] = (),
                  evaluate: Callable[[nn.Module], dict] | None = None,
                  eval_every: int = 0, progress: bool = True,
                  checkpoint: Path | None = None) -> tuple[CTCModel, list[dict]]:
    """Train a fresh `cfg.student` from scratch by `cfg.method`; (model, history).

    `examples` are labelled; `extra` are already teacher-labelled (`pseudo_label`)
    and are used only by the sequence-level methods. The history has the mean loss
    and `evaluate(student)` every `eval_every` steps. With `checkpoint` the run
    saves its state there as it goes and resumes from it (`finetune`).
    """
    if cfg.sequence and not extra:
        raise ValueError(f"method {cfg.method!r} needs teacher-labelled extra "
                         "utterances (pseudo_label(teacher, ...))")
    seed_everything(cfg.train.seed)  # the same initial student for every method
    student = CTCModel(cfg.student)
    # the extra corpus is synthesized like the training split, so its ids repeat the
    # labelled ones: prefix them, or the teacher's precomputed outputs would mix
    extra = [Example(f"extra/{e.id}", e.text, e.feats, e.targets) for e in extra]
    data = list(examples) + (extra if cfg.sequence else [])
    loss_fn = (DistillLoss(teacher, cfg.alpha, cfg.temperature) if cfg.frame
               else ctc_loss)
    if cfg.frame and not cfg.train.specaugment:  # the teacher once, not every batch
        loss_fn.precompute(data, progress=progress)

    def ev(step: int) -> dict:
        return {} if evaluate is None else evaluate(student)

    history = finetune(student, data, cfg.train, loss_fn, evaluate=ev,
                       eval_every=eval_every, progress=progress,
                       desc=f"student ({cfg.method})", checkpoint=checkpoint)
    return student, history

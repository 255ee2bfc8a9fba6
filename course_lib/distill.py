"""Knowledge distillation (知识蒸馏) for CTC models: the loss (chapter 3.3).

The student learns from the ground truth (CTC) *and* from the teacher's frame
posteriors, softened by a temperature T:

    L = (1 - α) CTC(student, transcript) + α T² KL(p_teacher^T || p_student^T),

averaged over the valid (non-padded) frames. T² keeps the gradient of the soft
term on the scale of the hard one when T changes (Hinton et al., 2015).
Chapter 3.1 uses it with the dense model as the teacher while pruning.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .models import CTCModel, ModelConfig, length_mask
from .train import Example, FinetuneConfig, collate, ctc_loss, finetune, length_batches
from .utils import cache_dir


def kd_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
          lengths: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """T² KL(teacher || student) per valid frame; logits (B, T, V), lengths (B,)."""
    t = temperature
    log_s = torch.log_softmax(student_logits / t, dim=-1)
    log_t = torch.log_softmax(teacher_logits / t, dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1)  # (B, T): KL at each frame
    mask = length_mask(lengths, kl.shape[1]).to(kl.dtype)
    return t * t * (kl * mask).sum() / mask.sum().clamp(min=1)


class DistillLoss:
    """`loss_fn(student, batch)` for `finetune`: CTC mixed with KL to a teacher."""

    def __init__(self, teacher: nn.Module, alpha: float = 0.5,
                 temperature: float = 2.0) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.teacher = teacher.eval()
        self.alpha, self.temperature = alpha, temperature

    def __call__(self, student: nn.Module, batch: dict) -> torch.Tensor:
        """The mixed loss of one collated batch."""
        log_probs, out_len = student(batch["feats"], batch["lengths"])
        ctc = nn.functional.ctc_loss(
            log_probs.transpose(0, 1), batch["targets"], out_len,
            batch["target_lengths"], blank=0, reduction="mean", zero_infinity=True)
        if self.alpha == 0.0:
            return ctc
        with torch.no_grad():
            teacher_lp, _ = self.teacher(batch["feats"], batch["lengths"])
        # log-probs are logits up to a per-frame constant, which softmax ignores.
        kl = kd_kl(log_probs, teacher_lp, out_len, self.temperature)
        return (1 - self.alpha) * ctc + self.alpha * kl


# ----------------------------------------------------------------------------------
# Students: one architecture, four ways to train it on the same budget.

# Narrower (conv 256 -> 128 channels, GRU 144 -> 96 units) *and* shallower (3 -> 2
# GRU layers): 28 % of the teacher's parameters, and one sequential GRU loop fewer
# per direction, which is what bounds CPU latency (chapter 3.4 measured it).
STUDENT = ModelConfig(conv_channels=128, rnn_hidden=96, rnn_layers=2)
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


def extra_corpus(cfg: DistillConfig = DistillConfig(), progress: bool = True):
    """The unlabelled utterances of sequence-level KD: train voices, another seed.

    Synthesized like the training split (about 1 s per 100 utterances); their true
    transcripts exist but training never reads them, only the teacher's.
    """
    from .baseline import CORPUS
    from .data import build_corpus

    return build_corpus(replace(CORPUS, seed=cfg.extra_seed, n_train=cfg.extra),
                        splits=("train",), progress=progress)


def pseudo_label(teacher: nn.Module, examples: list[Example], lexicon: bool = True
                 ) -> list[Example]:
    """Copies of `examples` whose transcripts are the teacher's (sequence-level KD).

    The teacher decodes greedily, snapped to the command vocabulary when `lexicon`
    (the recognizer every chapter reports). Utterances it hears as silence are left
    out: an empty target teaches nothing but "blank".
    """
    from .decode import snap_to_vocabulary
    from .grammar import vocabulary
    from .text import encode
    from .train import transcribe

    hyps = transcribe(teacher, examples)
    if lexicon:
        vocab = vocabulary()
        hyps = [snap_to_vocabulary(h, vocab) for h in hyps]
    return [Example(e.id, h, e.feats, encode(h)) for e, h in zip(examples, hyps) if h]


@torch.no_grad()
def frame_log_probs(model: nn.Module, examples: list[Example], batch_size: int = 64
                    ) -> list[torch.Tensor]:
    """Each utterance's CTC log-probabilities (frames, V), valid frames only (3.3)."""
    model.eval()
    out: list[torch.Tensor] = [torch.empty(0)] * len(examples)
    for idx in length_batches([e.feats.shape[0] for e in examples], batch_size):
        batch = collate([examples[i] for i in idx])
        log_probs, lengths = model(batch["feats"], batch["lengths"])
        for j, i in enumerate(idx):
            out[i] = log_probs[j, : lengths[j]]
    return out


def train_student(cfg: DistillConfig, teacher: nn.Module, examples: list[Example],
                  extra: list[Example] = (),
                  evaluate: Callable[[nn.Module], dict] | None = None,
                  eval_every: int = 0, progress: bool = True
                  ) -> tuple[CTCModel, list[dict]]:
    """Train a fresh `cfg.student` from scratch by `cfg.method`; (model, history).

    `examples` are labelled; `extra` are already teacher-labelled (`pseudo_label`)
    and are used only by the sequence-level methods. The history has the mean loss
    and `evaluate(student)` every `eval_every` steps.
    """
    from .utils import seed_everything

    if cfg.sequence and not extra:
        raise ValueError(f"method {cfg.method!r} needs teacher-labelled extra "
                         "utterances (pseudo_label(teacher, ...))")
    seed_everything(cfg.train.seed)  # the same initial student for every method
    student = CTCModel(cfg.student)
    data = list(examples) + (list(extra) if cfg.sequence else [])
    loss_fn = (DistillLoss(teacher, cfg.alpha, cfg.temperature) if cfg.frame
               else ctc_loss)

    def ev(step: int) -> dict:
        return {} if evaluate is None else evaluate(student)

    history = finetune(student, data, cfg.train, loss_fn, evaluate=ev,
                       eval_every=eval_every, progress=progress,
                       desc=f"student ({cfg.method})")
    return student, history


def shipped_path(method: str, train_limit: int | None = None) -> Path:
    """Where the package carries the trained student of `method` (chapter 3.3),
    trained on the first `train_limit` transcripts (None: all of them)."""
    name = method.replace("+", "-") + ("" if train_limit is None else f"-{train_limit}")
    return Path(__file__).parent / "artifacts" / f"student-{name}.safetensors"


def student_key(cfg: DistillConfig, train_limit: int | None, eval_every: int,
                teacher_file: Path) -> str:
    """Hash of everything a student depends on (the teacher's file included)."""
    from .baseline import CORPUS
    from .utils import config_hash, sha256_file

    return config_hash(dict(teacher=sha256_file(teacher_file), distill=asdict(cfg),
                            corpus=CORPUS.key(), train_limit=train_limit,
                            eval_every=eval_every))


def distilled_student(cfg: DistillConfig = DistillConfig(),
                      train_limit: int | None = None, eval_every: int = 250,
                      progress: bool = True, allow_shipped: bool = True
                      ) -> tuple[CTCModel, Path, list[dict]]:
    """The student trained by `cfg` from the cached baseline as teacher (3.3).

    It learns from the first `train_limit` transcripts (None: all 10,000) and, for
    the sequence-level methods, from all `cfg.extra` teacher-labelled utterances.
    Cached by the teacher's sha256 and the configuration. For the default
    configuration of each method the package carries the result (made by
    `python -m course_lib distill --ship`, 30 to 45 minutes per method on 2
    cores), and for `SCARCE_METHODS` with `train_limit=SCARCE` too (`distill
    --labelled 2000 --ship`); a shipped file is used only when its recorded key
    equals this call's. The history holds the dev WER every `eval_every` steps.
    """
    from .baseline import baseline_path, dev_wer, load_baseline, train_examples
    from .models import cached_or_shipped, load_model, read_metadata, save_model
    from .train import featurize
    from .utils import sha256_file

    base = baseline_path(progress)
    key = student_key(cfg, train_limit, eval_every, base)
    path = cache_dir() / "models" / f"student-{key}" / "model.safetensors"
    shipped = shipped_path(cfg.method, train_limit) if allow_shipped else None
    if cached_or_shipped(path, shipped, key):
        return load_model(path), path, read_metadata(path)["history"]
    teacher = load_baseline(progress)
    examples = train_examples(train_limit, progress=progress)
    extra: list[Example] = []
    if cfg.sequence:
        unlabelled = featurize(extra_corpus(cfg, progress), "train", progress=progress)
        extra = pseudo_label(teacher, unlabelled)
    t0 = time.perf_counter()
    model, history = train_student(cfg, teacher, examples, extra,
                                   evaluate=lambda m: dict(dev_wer=dev_wer(m)),
                                   eval_every=eval_every, progress=progress)
    save_model(model, path, distill_config=asdict(cfg), history=history,
               seconds=round(time.perf_counter() - t0, 1), result_key=key,
               teacher_sha256=sha256_file(base), train_limit=train_limit,
               extra_labelled=len(extra))
    return load_model(path), path, history

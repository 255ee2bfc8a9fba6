"""The losses of the book: CTC (chapter 1) and CTC mixed with distillation (3.3).

Knowledge distillation (知识蒸馏) for a CTC student learns from the ground truth
(CTC) *and* from the teacher's frame posteriors, softened by a temperature T:

    L = (1 - α) CTC(student, transcript) + α T² KL(p_teacher^T || p_student^T),

averaged over the valid (non-padded) frames. T² keeps the gradient of the soft
term on the scale of the hard one when T changes (Hinton et al., 2015). Chapters
3.1, 3.4 and 5 use it too, with the uncompressed model as the teacher.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm

from .batching import Example
from .inference import frame_log_probs
from .model import length_mask


def ctc_of(log_probs: torch.Tensor, out_lengths: torch.Tensor, batch: dict
           ) -> torch.Tensor:
    """CTC loss of log-probs (B, T, V) against a collated batch's targets, averaged
    over target lengths; an impossible alignment counts zero, not infinity."""
    # CTCLoss wants (T, B, V).
    return nn.functional.ctc_loss(
        log_probs.transpose(0, 1), batch["targets"], out_lengths,
        batch["target_lengths"], blank=0, reduction="mean", zero_infinity=True)


def ctc_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    """The CTC loss of a collated batch, averaged over target lengths (chapter 1)."""
    log_probs, out_len = model(batch["feats"], batch["lengths"])
    return ctc_of(log_probs, out_len, batch)


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
        self.cache: dict[str, torch.Tensor] = {}  # utterance id -> (frames, V)

    @torch.no_grad()
    def precompute(self, examples: list[Example], progress: bool = True) -> None:
        """Run the teacher once over `examples` and keep its log-probs by id.

        Without SpecAugment an utterance's features, hence the teacher's output, are
        the same on every pass, so a long training need not run the teacher again on
        every batch (chapter 3.3's frame-level students: 1.7x as fast). Batches whose
        ids are not all cached (`train_step` renames augmented utterances) still run
        the teacher. The padding of a batch changes the teacher's output only by
        rounding (chapter 1's padding check).
        """
        counts = Counter(e.id for e in examples)
        # one id for two utterances would let the cache serve one for the other
        if len(counts) < len(examples):
            twice = sorted(i for i, n in counts.items() if n > 1)
            raise ValueError(f"precompute: utterance ids must be unique; {len(twice)} "
                             f"appear twice, e.g. {twice[:3]}")
        chunks = [examples[i:i + 2048] for i in range(0, len(examples), 2048)]
        for chunk in tqdm(chunks, desc="teacher log-probs", disable=not progress,
                          leave=False):
            for e, lp in zip(chunk, frame_log_probs(self.teacher, chunk)):
                self.cache[e.id] = lp.clone()  # (frames, V), not a view of the batch

    def teacher_log_probs(self, batch: dict) -> torch.Tensor:
        """The teacher's log-probs (B, T', V) for a batch: cached, else computed."""
        ids = batch.get("ids", ())
        if self.cache and ids and all(i in self.cache for i in ids):
            return pad_sequence([self.cache[i] for i in ids], batch_first=True)
        with torch.no_grad():
            return self.teacher(batch["feats"], batch["lengths"])[0]

    def __call__(self, student: nn.Module, batch: dict) -> torch.Tensor:
        """The mixed loss of one collated batch."""
        log_probs, out_len = student(batch["feats"], batch["lengths"])
        ctc = ctc_of(log_probs, out_len, batch)
        if self.alpha == 0.0:
            return ctc
        teacher_lp = self.teacher_log_probs(batch)
        # log-probs are logits up to a per-frame constant, which softmax ignores.
        kl = kd_kl(log_probs, teacher_lp, out_len, self.temperature)
        return (1 - self.alpha) * ctc + self.alpha * kl

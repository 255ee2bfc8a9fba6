"""Lab 3.3's check: the distillation loss.

Each check runs the student's function on small hand-made cases (`run_cases`) and
raises `CheckFailed` with the first failing case (spec §5).
"""

from __future__ import annotations

from typing import Callable

import torch

from ...core.checking import run_cases
from ...core.losses import ctc_of, kd_kl


def check_kd_loss(kd_loss: Callable[..., torch.Tensor]) -> None:
    """Lab 3.3: `kd_loss(student, teacher, lengths, T)`: T² KL(teacher‖student)."""
    gen = torch.Generator().manual_seed(3)
    s = torch.randn(2, 5, 4, generator=gen)  # (batch, frames, vocab) logits
    t = torch.randn(2, 5, 4, generator=gen)
    lengths = torch.tensor([5, 2])
    s_pad = s.clone()
    s_pad[1, 2:] = 50.0  # garbage where the second utterance is padding

    def trial(student: torch.Tensor, teacher: torch.Tensor, n: torch.Tensor,
              temp: float) -> float:
        out = kd_loss(student, teacher, n, temp)
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            raise TypeError(f"expected a scalar tensor, got {out!r}")
        return round(float(out), 5)

    def ref(student: torch.Tensor, teacher: torch.Tensor, n: torch.Tensor,
            temp: float) -> float:
        return round(float(kd_kl(student, teacher, n, temp)), 5)

    # torch's own KL on the valid frames: KL(teacher || student) = kl_div(log_s, log_t)
    valid = [(0, i) for i in range(5)] + [(1, i) for i in range(2)]
    ls = torch.stack([torch.log_softmax(s[b, i] / 2.0, -1) for b, i in valid])
    lt = torch.stack([torch.log_softmax(t[b, i] / 2.0, -1) for b, i in valid])
    torch_kl = 4.0 * torch.nn.functional.kl_div(ls, lt, log_target=True,
                                                reduction="batchmean")
    cases = [
        ("identical teacher and student give zero", (t, t, lengths, 2.0), 0.0),
        ("equals T² x torch.nn.functional.kl_div on the valid frames (T = 2)",
         (s, t, lengths, 2.0), round(float(torch_kl), 5)),
        ("padded frames do not count", (s_pad, t, lengths, 2.0),
         round(float(torch_kl), 5)),
        ("KL(teacher || student), not the reverse (T = 1)", (s, t, lengths, 1.0),
         ref(s, t, lengths, 1.0)),
        ("T² scaling (T = 4)", (s, t, lengths, 4.0), ref(s, t, lengths, 4.0)),
    ]
    run_cases("kd_loss", trial, cases, compare=lambda g, e: abs(g - e) <= 1e-4)


def check_distill_loss(distill_loss: Callable[..., torch.Tensor],
                       kd_loss: Callable[..., torch.Tensor] | None = None) -> None:
    """Lab 3.3: `distill_loss(student_lp, teacher_lp, lengths, targets,
    target_lengths, alpha, T)`: (1 - α) CTC on the ground truth + α T² KL."""
    gen = torch.Generator().manual_seed(4)
    # (batch 2, frames 6, vocab 5) log-probs; the second utterance has 4 valid frames
    student = torch.log_softmax(torch.randn(2, 6, 5, generator=gen), -1)
    teacher = torch.log_softmax(3 * torch.randn(2, 6, 5, generator=gen), -1)
    lengths = torch.tensor([6, 4])
    targets = torch.tensor([[1, 2, 3], [4, 4, 0]])  # "abc", "dd" (0: padding)
    target_lengths = torch.tensor([3, 2])
    batch = dict(targets=targets, target_lengths=target_lengths)
    # The teacher's own best path differs from the ground truth: a loss that
    # trains on the teacher in both terms (the article's) cannot pass.
    assert teacher.argmax(-1)[0, :3].tolist() != [1, 2, 3]

    def want(alpha: float, temp: float) -> float:
        ctc = ctc_of(student, lengths, batch)
        kl = kd_kl(student, teacher, lengths, temp)
        return round(float((1 - alpha) * ctc + alpha * kl), 5)

    def trial(alpha: float, temp: float, s: torch.Tensor = student) -> float:
        out = distill_loss(s, teacher, lengths, targets, target_lengths, alpha, temp)
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            raise TypeError(f"expected a scalar tensor, got {out!r}")
        return round(float(out), 5)

    padded = student.clone()
    padded[1, 4:] = torch.log_softmax(torch.full((2, 5), 9.0), -1)  # padding garbage
    cases = [
        ("alpha = 0: the CTC loss on the ground-truth transcript", (0.0, 2.0),
         want(0.0, 2.0)),
        ("alpha = 1: the T² KL term alone (T = 2)", (1.0, 2.0), want(1.0, 2.0)),
        ("alpha = 0.3, T = 4: (1 - alpha) CTC + alpha T² KL", (0.3, 4.0),
         want(0.3, 4.0)),
        ("padded frames change nothing", (0.5, 2.0, padded), want(0.5, 2.0)),
    ]
    builds_on = {} if kd_loss is None else {"kd_loss": lambda: check_kd_loss(kd_loss)}
    run_cases("distill_loss", trial, cases, compare=lambda g, e: abs(g - e) <= 1e-4,
              builds_on=builds_on)

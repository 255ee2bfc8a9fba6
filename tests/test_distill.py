"""The distillation loss (chapter 3.3; chapter 3.1 uses it while pruning)."""

import pytest
import torch

import course_lib as cl
from course_lib.distill import DistillLoss, kd_kl


def test_identical_teacher_and_student_give_zero():
    logits = torch.randn(2, 7, 29)
    assert kd_kl(logits, logits, torch.tensor([7, 4]), 2.0).item() == pytest.approx(0.0,
                                                                                   abs=1e-6)


def test_kl_matches_torch_and_ignores_padding():
    gen = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 6, 5, generator=gen), torch.randn(2, 6, 5, generator=gen)
    lengths = torch.tensor([6, 3])
    T = 2.0
    valid = [(0, i) for i in range(6)] + [(1, i) for i in range(3)]
    ls = torch.stack([torch.log_softmax(s[b, i] / T, -1) for b, i in valid])
    lt = torch.stack([torch.log_softmax(t[b, i] / T, -1) for b, i in valid])
    want = T * T * torch.nn.functional.kl_div(ls, lt, log_target=True,
                                               reduction="batchmean")
    assert kd_kl(s, t, lengths, T).item() == pytest.approx(want.item(), rel=1e-5)
    s2 = s.clone()
    s2[1, 3:] = 100.0  # garbage in padded frames changes nothing
    assert kd_kl(s2, t, lengths, T).item() == pytest.approx(want.item(), rel=1e-5)


def test_distill_loss_mixes_ctc_and_kl(tiny_corpus):
    torch.manual_seed(0)
    cfg = cl.ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=1)
    student, teacher = cl.CTCModel(cfg).eval(), cl.CTCModel(cfg)  # no dropout
    batch = cl.collate(cl.featurize(tiny_corpus, "train", progress=False)[:4])
    ctc = cl.ctc_loss(student, batch)
    assert DistillLoss(teacher, alpha=0.0)(student, batch).item() == pytest.approx(
        ctc.item())
    lp, n = student(batch["feats"], batch["lengths"])
    tl, _ = teacher(batch["feats"], batch["lengths"])
    mixed = DistillLoss(teacher, alpha=0.25, temperature=3.0)(student, batch)
    assert mixed.item() == pytest.approx(0.75 * ctc.item() + 0.25 * kd_kl(
        lp, tl, n, 3.0).item(), rel=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        DistillLoss(teacher, alpha=2.0)

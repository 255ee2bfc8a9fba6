"""The distillation loss (chapter 3.3; chapter 3.1 uses it while pruning)."""

import pytest
import torch

import course_lib as cl
from course_lib import DistillLoss, kd_kl


def test_identical_teacher_and_student_give_zero():
    logits = torch.randn(2, 7, 29)
    kl = kd_kl(logits, logits, torch.tensor([7, 4]), 2.0).item()
    assert kl == pytest.approx(0.0, abs=1e-6)


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


def test_precomputed_teacher_gives_the_same_loss_and_skips_the_teacher(tiny_corpus):
    torch.manual_seed(0)
    cfg = cl.ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=1)
    student, teacher = cl.CTCModel(cfg).eval(), cl.CTCModel(cfg)
    examples = cl.featurize(tiny_corpus, "train", progress=False)
    batch = cl.collate(examples[:4])
    plain = DistillLoss(teacher, alpha=0.5, temperature=2.0)(student, batch)
    cached = DistillLoss(teacher, alpha=0.5, temperature=2.0)
    cached.precompute(examples, progress=False)
    assert set(cached.cache) == {e.id for e in examples}
    calls = []
    teacher.register_forward_hook(lambda *args: calls.append(1))
    # the same loss (padding changes the teacher's output only by rounding)
    assert cached(student, batch).item() == pytest.approx(plain.item(), rel=1e-5)
    assert not calls  # ... without running the teacher
    # utterances changed by SpecAugment are renamed by train_step: never cached
    cfg_aug = cl.FinetuneConfig(steps=1, batch_size=4, threads=1, specaugment=True)
    seen = []
    cached.teacher_log_probs = lambda b: (seen.extend(b["ids"]),  # noqa: E731
                                          DistillLoss.teacher_log_probs(cached, b))[1]
    opt = torch.optim.SGD(student.parameters(), lr=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    cl.core.training.train_step(student, examples[:4], cached, opt, sched,
                                list(student.parameters()), cfg_aug,
                                torch.Generator().manual_seed(0))
    assert seen and all(i.endswith("+specaugment") for i in seen) and calls


# ----------------------------------------------------------------------------------
# Students: configuration, pseudo-labels, equal-budget training, shipped results.

from dataclasses import replace  # noqa: E402

from course_lib import distillation as D  # noqa: E402
from course_lib.core.batching import Example  # noqa: E402
from course_lib.core.training import FinetuneConfig  # noqa: E402
from course_lib.techniques.distillation import students  # noqa: E402
from course_lib.zoo import shipped_file, shipped_fits  # noqa: E402
from course_lib.zoo import students as Z  # noqa: E402

TINY_STUDENT = cl.ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=1)


def tiny_cfg(method: str) -> D.DistillConfig:
    return D.DistillConfig(method, student=TINY_STUDENT, extra=8,
                           train=FinetuneConfig(steps=3, batch_size=4, threads=1))


def test_the_student_is_at_most_30_percent_of_the_teacher():
    from course_lib.zoo.baseline import MODEL

    ratio = (cl.count_params(cl.CTCModel(D.STUDENT))
             / cl.count_params(cl.CTCModel(MODEL)))
    assert ratio <= 0.30
    assert D.STUDENT.rnn_layers < MODEL.rnn_layers  # shallower: fewer sequential loops


def test_config_names_its_method_and_refuses_unknown_ones():
    assert [(D.DistillConfig(m).frame, D.DistillConfig(m).sequence)
            for m in D.METHODS] == [(False, False), (True, False), (False, True),
                                    (True, True)]
    with pytest.raises(ValueError, match="method must be one of"):
        D.DistillConfig("logits")


def test_pseudo_labels_are_the_teachers_transcripts(monkeypatch):
    feats = [torch.randn(20, 80) for _ in range(3)]
    examples = [Example(f"u{i}", "go left", f, cl.encode("go left"))
                for i, f in enumerate(feats)]
    monkeypatch.setattr(students, "transcribe",
                        lambda model, exs, lexicon: ["stop", "", "go rihgt"])
    out = D.pseudo_label(torch.nn.Identity(), examples, lexicon=False)
    assert [e.id for e in out] == ["u0", "u2"]  # the empty transcript is left out
    assert [e.text for e in out] == ["stop", "go rihgt"]
    assert out[0].targets == cl.encode("stop") and out[0].feats is feats[0]
    assert examples[0].text == "go left"  # the inputs are not changed


def test_frame_log_probs_match_the_batched_model(tiny_corpus):
    torch.manual_seed(0)
    model = cl.CTCModel(TINY_STUDENT).eval()
    exs = cl.featurize(tiny_corpus, "dev", progress=False)[:5]
    out = cl.frame_log_probs(model, exs, batch_size=2)
    for e, lp in zip(exs, out):
        one, n = model(e.feats[None], torch.tensor([e.feats.shape[0]]))
        assert lp.shape == (int(n), len(cl.VOCAB))
        torch.testing.assert_close(lp, one[0], atol=1e-5, rtol=1e-5)


def test_students_start_equal_and_frame_kd_with_alpha_0_is_plain_ctc(tiny_corpus):
    exs = cl.featurize(tiny_corpus, "train", progress=False)
    teacher = cl.CTCModel(TINY_STUDENT).eval()
    a, hist = D.train_student(tiny_cfg("ctc"), teacher, exs, progress=False,
                              evaluate=lambda m: dict(n=cl.count_params(m)),
                              eval_every=1)
    b, _ = D.train_student(replace(tiny_cfg("frame"), alpha=0.0), teacher, exs,
                           progress=False)
    c, _ = D.train_student(tiny_cfg("frame"), teacher, exs, progress=False)
    assert [h["step"] for h in hist] == [1, 2, 3] and hist[0]["n"] > 0
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(),
                                  c.parameters()):
        assert torch.equal(pa, pb), name  # same seed, same data, same loss
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(),
                                                          c.parameters()))
    with pytest.raises(ValueError, match="teacher-labelled extra"):
        D.train_student(tiny_cfg("sequence"), teacher, exs, progress=False)
    extra = [Example(e.id + "x", e.text, e.feats, e.targets) for e in exs[:8]]
    d, _ = D.train_student(tiny_cfg("sequence"), teacher, exs, extra, progress=False)
    assert any(not torch.equal(pa, pd) for pa, pd in zip(a.parameters(),
                                                          d.parameters()))


def test_extra_utterances_with_the_labelled_ids_keep_their_own_teacher_outputs(
        tiny_corpus):
    # the extra corpus is synthesized like the training split, so its ids repeat the
    # labelled ones; a cache keyed by id must never serve one utterance for the other
    exs = cl.featurize(tiny_corpus, "train", progress=False)
    teacher = cl.CTCModel(TINY_STUDENT).eval()
    extra = [Example(a.id, b.text, b.feats, b.targets) for a, b in zip(exs, exs[1:9])]
    with pytest.raises(ValueError, match="ids must be unique.*appear twice"):
        DistillLoss(teacher).precompute(exs + extra, progress=False)
    cfg = replace(tiny_cfg("frame+sequence"),
                  train=FinetuneConfig(steps=3, batch_size=4, threads=1,
                                       specaugment=False))
    student, hist = D.train_student(cfg, teacher, exs, extra, progress=False)
    assert hist[-1]["step"] == 3
    assert all(torch.isfinite(p).all() for p in student.parameters())


@pytest.mark.parametrize("method,limit", [(m, None) for m in D.METHODS]
                         + [(m, D.SCARCE) for m in D.SCARCE_METHODS])
def test_shipped_students_match_the_shipped_baseline_and_the_defaults(method, limit):
    path = shipped_file(Z.shipped_name(method, limit))
    remake = (f"`python -m course_lib distill --method {method}"
              + ("" if limit is None else f" --labelled {limit}") + " --ship`")
    assert path.exists(), f"run {remake}"
    meta = cl.read_metadata(path)
    want = Z.student_key(D.DistillConfig(method), limit, 250,
                         shipped_file("baseline"))
    assert meta["result_key"] == want, (
        f"the shipped {method} student was made from another baseline or recipe: "
        f"remake it with {remake}")
    assert cl.load_model(path).cfg == D.STUDENT
    assert [h["step"] for h in meta["history"]][-1] == D.DistillConfig().train.steps
    assert meta["train_limit"] == limit
    # The unlabelled set is never cut by the label limit: all of it is transcribed.
    assert (meta["extra_labelled"] > 0.9 * D.DistillConfig().extra
            if D.DistillConfig(method).sequence else meta["extra_labelled"] == 0)


def test_each_shipped_student_has_its_own_file():
    paths = {shipped_file(Z.shipped_name(m)) for m in D.METHODS}
    paths |= {shipped_file(Z.shipped_name(m, D.SCARCE)) for m in D.SCARCE_METHODS}
    assert len(paths) == len(D.METHODS) + len(D.SCARCE_METHODS)
    assert shipped_file(Z.shipped_name("frame+sequence")).name == \
        "student-frame-sequence.safetensors"
    assert shipped_file(Z.shipped_name("ctc", 2000)).name == \
        "student-ctc-2000.safetensors"


def test_a_shipped_student_is_copied_into_the_cache(cache):
    cfg = D.DistillConfig("ctc")
    want = Z.student_key(cfg, None, 250, shipped_file("baseline"))
    if not shipped_fits("student-ctc", want):  # never train in a unit test
        pytest.fail("the shipped no-KD student is missing or stale: remake it with "
                    "`python -m course_lib distill --method ctc --ship`")
    model, path, history = Z.distilled_student(cfg, progress=False)
    assert path.read_bytes() == shipped_file("student-ctc").read_bytes()
    assert history == cl.read_metadata(path)["history"]
    assert isinstance(model, cl.CTCModel)

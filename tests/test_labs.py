"""Labs: fences, nbgrader metadata, current copies, and checks that catch mistakes.

Blank copies and wrong answers, autograded by nbgrader: tests/test_classroom.py.
"""

from pathlib import Path

import nbformat
import pytest

import course_lib as cl
from course_lib import labs
from course_lib.core.checking import CheckFailed

ROOT = Path(__file__).resolve().parents[1]


def test_strip_solutions_keeps_indentation():
    src = ("def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"
           "\nprint(f)")
    out = labs.strip_solutions(src)
    assert "return x + 1" not in out
    assert f"    {labs.PLACEHOLDER}\n\nprint(f)" in out


def test_unbalanced_fences_are_an_error():
    with pytest.raises(ValueError, match="unbalanced"):
        labs.strip_solutions("### BEGIN SOLUTION\nx = 1\n")


def test_every_lab_has_fences_and_checks():
    sources = labs.lab_sources(ROOT)
    assert sources, "no lab notebooks in exercises/"
    for src in sources:
        nb = nbformat.read(src, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert any(labs.BEGIN in c.source for c in code), src
        assert any("check" in c.metadata.get("tags", []) for c in code), src


def test_every_cell_has_its_nbgrader_role():
    for src in labs.lab_sources(ROOT):
        nb = nbformat.read(src, as_version=4)
        assert not labs.grading_metadata(nb), f"{src}: run `python -m course_lib labs`"
        roles = [c.metadata.get("nbgrader", {}) for c in nb.cells]
        for cell, role in zip(nb.cells, roles):
            if labs.BEGIN in cell.source:
                assert role["solution"] and not role["locked"], src
            elif "check" in cell.metadata.get("tags", []):
                assert role["grade"] and role["locked"] and role["points"] >= 1, src
        ids = [r["grade_id"] for r in roles if r]
        assert len(ids) == len(set(ids)), f"{src}: grade ids repeat"


def test_metadata_is_written_once_and_kept():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Lab"),
        nbformat.v4.new_code_cell(f"def f():\n    {labs.BEGIN}\n    return 1\n"
                                  f"    {labs.END}"),
        nbformat.v4.new_code_cell("check(f)", metadata={"tags": ["check"]}),
        nbformat.v4.new_code_cell("print(f())")])
    nb.cells[2].metadata["nbgrader"] = {"points": 3}  # an instructor's weighting
    assert labs.grading_metadata(nb) and not labs.grading_metadata(nb)
    text, answer, check, free = (c.metadata.get("nbgrader") for c in nb.cells)
    assert text["locked"] and not text["grade"] and text["grade_id"] == "text-1"
    assert answer["solution"] and answer["grade_id"] == "answer-1"
    assert check["grade"] and check["points"] == 3 and check["grade_id"] == "check-1"
    assert free is None


def test_student_copies_are_current():
    stale = labs.generate_student_copies(ROOT, check_only=True)
    assert not stale, f"regenerate with `python -m course_lib labs`: {stale}"


def test_reference_passes_and_wrong_answers_fail_the_check():
    def reference(log_probs, length):
        lengths = __import__("torch").tensor([length])
        return cl.greedy_decode(log_probs[None], lengths)[0]

    cl.checking.check_best_path(reference)
    with pytest.raises(CheckFailed, match="not implemented"):
        cl.checking.check_best_path(lambda lp, n: (_ for _ in ()).throw(
            NotImplementedError()))
    with pytest.raises(CheckFailed, match="repeats merge"):  # forgets to collapse
        cl.checking.check_best_path(lambda lp, n: "".join(
            cl.VOCAB[i] for i in lp[:n].argmax(-1).tolist() if i != 0))


def test_pruning_checks_accept_the_reference_and_catch_mistakes(capsys):
    import torch

    from course_lib import pruning as P

    checks = P.checks
    checks.check_magnitude_mask(P.magnitude_mask)
    checks.check_global_masks(P.global_masks)
    checks.check_prune_model(lambda m, s: P.prune_oneshot(m, s, "global"))
    checks.check_cubic_sparsity(P.cubic_sparsity)

    def by_value(w, s):  # the article's rule: prune small *values*
        k = round(s * w.numel())
        keep = torch.ones(w.numel(), dtype=torch.bool)
        keep[torch.argsort(w.flatten(), stable=True)[:k]] = False
        return keep.view_as(w)

    with pytest.raises(CheckFailed):
        checks.check_magnitude_mask(by_value)
    assert "FAIL  large negative weights are kept" in capsys.readouterr().out

    def by_threshold(w, s):  # |w| < T prunes all or none of equal weights
        k = round(s * w.numel())
        t = w.abs().flatten().sort().values[k - 1] if k else -1.0
        return w.abs() > t

    with pytest.raises(CheckFailed):
        checks.check_magnitude_mask(by_threshold)
    out = capsys.readouterr().out
    assert "FAIL  all-equal weights" in out and "ok    prunes the smallest" in out
    with pytest.raises(CheckFailed, match="one threshold"):
        checks.check_global_masks(P.layerwise_masks)

    def global_by_value(weights, s):  # right idea, built on exercise 1's mistake
        flat = torch.cat([w.flatten() for w in weights.values()])
        keep, masks, start = by_value(flat, s), {}, 0
        for name, w in weights.items():
            masks[name] = keep[start:start + w.numel()].view_as(w)
            start += w.numel()
        return masks

    with pytest.raises(CheckFailed, match="but magnitude_mask, which global_masks "
                       "calls, fails its own check: fix that first"):
        checks.check_global_masks(global_by_value, by_value)
    with pytest.raises(CheckFailed) as failed:  # its own mistake: no one else blamed
        checks.check_global_masks(P.layerwise_masks, P.magnitude_mask)
    assert "fix that first" not in str(failed.value)

    def prunes_biases(model, s):
        masks = P.prune_oneshot(model, s, "global")
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.ndim == 1:
                    p.mul_(p.abs() > p.abs().median())
        return masks

    with pytest.raises(CheckFailed, match="bias or norm"):
        checks.check_prune_model(prunes_biases)
    with pytest.raises(CheckFailed, match="one dt after t0"):  # a linear ramp
        checks.check_cubic_sparsity(
            lambda t, si, sf, t0, n, dt: si if t < t0 else
            si + (sf - si) * min((t - t0) // dt, n) / n)


def test_quantization_checks_accept_the_reference_and_catch_mistakes(capsys):
    import torch

    from course_lib import quantization as Q
    from course_lib.techniques.quantization import quant as QM

    checks = Q.checks

    def reference(w, bits, per_channel):
        spec = Q.QuantSpec(bits, symmetric=False, per_channel=per_channel)
        s, z = Q.qparams(w, spec)
        return Q.quantize(w, s, z, spec), s, z

    checks.check_quantize(reference)
    checks.check_dequantize(Q.dequantize)
    checks.check_fake_quant_ste(lambda w, s, z, a, b: QM._STE.apply(w, s, z, a, b))

    def no_zero_in_range(w, bits, per_channel):  # forgets to widen the range to 0
        lo, hi = w.min(), w.max()
        s = (hi - lo) / (2 ** bits - 1)
        z = torch.round(-lo / s)
        return (torch.round(w / s) + z).clamp(0, 2 ** bits - 1).int(), s, z

    with pytest.raises(CheckFailed):
        checks.check_quantize(no_zero_in_range)
    out = capsys.readouterr().out
    assert "FAIL  a constant positive tensor" in out and "FAIL  an all-zero" in out
    with pytest.raises(CheckFailed, match="codes"):
        checks.check_dequantize(lambda q, s, z: s * q.float())  # forgets the zero point

    def no_ste(w, s, z, qmin, qmax):  # rounds, so the gradient is zero everywhere
        return s * ((torch.round(w / s) + z).clamp(qmin, qmax) - z)

    with pytest.raises(CheckFailed, match="forward rounds"):
        checks.check_fake_quant_ste(no_ste)

    def ignores_zero(w, s, z, qmin, qmax):  # an STE fake-quant that drops z
        return QM._STE.apply(w, s, torch.zeros_like(z), qmin, qmax)

    with pytest.raises(CheckFailed, match="zero point z = 3 shifts"):
        checks.check_fake_quant_ste(ignores_zero)
    out = capsys.readouterr().out
    assert "ok    forward rounds" in out  # z = 0 cases cannot tell: z = 3 does


def test_quantize_check_forgives_a_code_only_on_a_rounding_boundary():
    import torch

    from course_lib.techniques.quantization.checks import _codes_close

    w = torch.tensor([0.25, 0.5, 1.0])  # with s = 0.5: w / s = 0.5 (a boundary), 1, 2
    s, z = torch.tensor(0.5), torch.tensor(0.0)
    want = (torch.tensor([0, 1, 2]), s, z, w)
    assert _codes_close((torch.tensor([0, 1, 2]), s, z), want)
    assert _codes_close((torch.tensor([1, 1, 2]), s, z), want)  # 0.5 rounds either way
    assert not _codes_close((torch.tensor([0, 2, 2]), s, z), want)  # 1 is no boundary


def test_neuron_pruning_checks_accept_the_reference_and_catch_mistakes(capsys):
    import torch
    from torch import nn

    from course_lib import neurons as N

    checks = N.checks
    checks.check_remove_linear_units(N.remove_linear_units)
    checks.check_remove_gru_units(N.remove_gru_units)

    def keeps_fc2_whole(fc1, fc2, keep):  # shrinks fc1 but forgets fc2's columns
        a, _ = N.remove_linear_units(fc1, fc2, keep)
        return a, fc2

    with pytest.raises(CheckFailed, match="fc2.weight has shape"):
        checks.check_remove_linear_units(keeps_fc2_whole)

    def first_rows_only(gru, consumer, keep):  # takes rows `keep`, not 3 gate blocks
        new = nn.GRU(gru.input_size, len(keep), batch_first=True)
        with torch.no_grad():
            for name, p in new.named_parameters():
                src = getattr(gru, name)
                rows = src[torch.cat([keep, keep, keep])]  # the three gate blocks
                p.copy_(rows if "weight_ih" in name or "bias" in name
                        else rows[:, keep])
        return new, N.keep_inputs(consumer, keep)

    with pytest.raises(CheckFailed, match="wrong entries"):
        checks.check_remove_gru_units(first_rows_only)
    out = capsys.readouterr().out
    assert "ok    keep every unit" in out  # right shapes and entries when all are kept

    def forgets_recurrent_columns(gru, consumer, keep):
        rows = N.gate_rows(keep, gru.hidden_size)
        new = nn.GRU(gru.input_size, len(keep), batch_first=True)
        with torch.no_grad():
            new.weight_ih_l0.copy_(gru.weight_ih_l0[rows])
            new.bias_ih_l0.copy_(gru.bias_ih_l0[rows])
            new.bias_hh_l0.copy_(gru.bias_hh_l0[rows])
            new.weight_hh_l0.copy_(gru.weight_hh_l0[rows][:, : len(keep)])
        return new, N.keep_inputs(consumer, keep)

    with pytest.raises(CheckFailed, match="weight_hh_l0 holds the wrong entries"):
        checks.check_remove_gru_units(forgets_recurrent_columns)

    def time_first(gru, consumer, keep):  # right weights, but a (time, batch) GRU
        new, head = N.remove_gru_units(gru, consumer, keep)
        plain = nn.GRU(gru.input_size, len(keep))
        plain.load_state_dict(new.state_dict())
        return plain, head

    with pytest.raises(CheckFailed,
                       match="built with batch_first=False, expected True"):
        checks.check_remove_gru_units(time_first)


def test_distillation_check_accepts_the_reference_and_catches_mistakes():
    import torch

    from course_lib import kd_kl

    checks = cl.distillation.checks
    checks.check_kd_loss(kd_kl)

    def no_t_squared(s, t, n, temp):
        return kd_kl(s, t, n, temp) / (temp * temp)

    def reversed_kl(s, t, n, temp):  # KL(student || teacher)
        return kd_kl(t, s, n, temp)

    def counts_padding(s, t, n, temp):
        return kd_kl(s, t, torch.full_like(n, s.shape[1]), temp)

    with pytest.raises(CheckFailed, match="T² x torch"):
        checks.check_kd_loss(no_t_squared)
    with pytest.raises(CheckFailed, match="not the reverse|kl_div"):
        checks.check_kd_loss(reversed_kl)
    with pytest.raises(CheckFailed, match="kl_div|padded"):
        checks.check_kd_loss(counts_padding)


def test_distill_loss_check_catches_the_articles_loss(capsys):
    import torch
    import torch.nn.functional as F

    from course_lib import kd_kl

    checks = cl.distillation.checks

    def whole(s, t, n, y, yl, alpha, temp):  # (1 - a) CTC(y) + a T² KL, masked
        ctc = F.ctc_loss(s.transpose(0, 1), y, n, yl, zero_infinity=True)
        return (1 - alpha) * ctc + alpha * kd_kl(s, t, n, temp)

    checks.check_distill_loss(whole, kd_kl)

    def article(s, t, n, y, yl, alpha, temp):  # the teacher in both terms
        return (1 - alpha) * kd_kl(s, t, n, 1.0) + alpha * kd_kl(s, t, n, temp)

    with pytest.raises(CheckFailed, match="CTC loss on the ground-truth"):
        checks.check_distill_loss(article, kd_kl)

    def unmasked(s, t, n, y, yl, alpha, temp):
        return whole(s, t, torch.full_like(n, s.shape[1]), y, yl, alpha, temp)

    with pytest.raises(CheckFailed):
        checks.check_distill_loss(unmasked, kd_kl)
    assert "FAIL  padded frames change nothing" in capsys.readouterr().out

    def on_a_wrong_kd(s, t, n, y, yl, alpha, temp):  # exercise 1's mistake inside
        ctc = F.ctc_loss(s.transpose(0, 1), y, n, yl, zero_infinity=True)
        return (1 - alpha) * ctc + alpha * kd_kl(s, t, n, temp) / temp ** 2

    with pytest.raises(CheckFailed, match="but kd_loss, which distill_loss calls"):
        checks.check_distill_loss(on_a_wrong_kd, lambda s, t, n, temp:
                                  kd_kl(s, t, n, temp) / temp ** 2)


def test_shard_checks_accept_a_reference_and_catch_mistakes():
    import json

    from safetensors.torch import load_file

    checks = cl.splitting.checks

    def sorted_by_name(state, parts, folder):  # loses the order the parts run in
        index = checks.reference_write_shards(state, parts, folder)
        index["parts"].sort(key=lambda p: p["name"])
        (Path(folder) / "index.json").write_text(json.dumps(index))
        return index

    class Lazy:
        def __init__(self, folder, verify=True, eager=False):
            self.folder, self.verify = Path(folder), verify
            index = json.loads((self.folder / "index.json").read_text())
            self.parts = {p["name"]: p for p in index["parts"]}
            self.cache = {n: self._read(n) for n in self.parts} if eager else {}

        def _read(self, name):
            path = self.folder / self.parts[name]["file"]
            if self.verify and cl.utils.sha256_file(path) != self.parts[name]["sha256"]:
                raise ValueError(f"{path}: checksum mismatch")
            return load_file(str(path))

        def load(self, name):
            return self.cache[name] if name in self.cache else self._read(name)

    checks.check_write_shards(checks.reference_write_shards)
    checks.check_lazy_shards(Lazy)
    with pytest.raises(CheckFailed, match="in that order"):
        checks.check_write_shards(sorted_by_name)
    with pytest.raises(CheckFailed, match="tampered file did not raise"):
        checks.check_lazy_shards(lambda f: Lazy(f, verify=False))
    with pytest.raises(CheckFailed, match="did not raise"):  # read everything up front
        checks.check_lazy_shards(lambda f: Lazy(f, eager=True))

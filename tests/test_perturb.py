"""New speakers and channels from real recordings (the running example v3, issue 40)."""

import shutil

import pytest
import torch

import course_lib as cl
from course_lib.core import evaluation
from course_lib.core.corpus import augment, real

SR = 16000


def tone(hz: float, seconds: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(SR * seconds)) / SR
    return 0.5 * torch.sin(2 * torch.pi * hz * t)


def energy_above(wav: torch.Tensor, hz: float) -> float:
    spec = torch.fft.rfft(wav).abs().pow(2)
    freqs = torch.fft.rfftfreq(wav.numel(), 1 / SR)
    return float(spec[freqs > hz].sum() / spec.sum())


def test_channels_requantize_compand_and_band_limit():
    gen = torch.Generator().manual_seed(0)
    wav = tone(440) + 0.01 * torch.randn(SR // 2, generator=gen)
    eight = augment.requantize(wav, 8)
    assert torch.allclose(eight * 128, torch.round(eight * 128))  # 8-bit levels only
    assert (eight - wav).abs().max() <= 1 / 256 + 1e-6
    assert (augment.mu_law(wav) - wav).abs().max() < 0.02  # G.711: small error
    mixed = tone(440) + tone(6000)
    assert energy_above(mixed, 4100) > 0.4
    assert energy_above(augment.band_limit(mixed, SR), 4100) < 1e-3
    assert augment.band_limit(mixed, SR).numel() == mixed.numel()


def test_speakers_pitch_and_mel_warp():
    shifted = augment.pitch_shift(tone(440), SR, 12)  # one octave up, same length
    assert shifted.numel() == SR // 2
    freqs = torch.fft.rfftfreq(shifted.numel(), 1 / SR)
    assert abs(float(freqs[torch.fft.rfft(shifted).abs().argmax()]) - 880) < 20
    feats = torch.zeros(3, 80)
    feats[:, 20] = 1.0
    assert torch.equal(augment.mel_warp(feats, 1.0), feats)
    assert augment.mel_warp(feats, 1.25)[0].argmax() == 25  # formants move up
    assert augment.mel_warp(feats, 0.8)[0].argmax() == 16
    with pytest.raises(ValueError, match="use one of"):
        augment.parse_perturbation("reverse")
    with pytest.raises(ValueError, match="'fast' is not a number"):
        augment.parse_perturbation("speed:fast")


def test_real_examples_add_one_perturbed_copy_per_entry(tmp_path, monkeypatch):
    (tmp_path / "recordings").mkdir()
    for rec in real.recordings(("jackson",))[:2]:
        shutil.copy(rec.path, tmp_path / "recordings")
    monkeypatch.setenv(real.REAL_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(evaluation, "_REAL", {})
    plain = cl.real_examples(("jackson",))
    more = cl.real_examples(("jackson",), perturb=("speed:1.1", "warp:0.9", "bits:8"))
    first = plain[0].id
    assert [e.id for e in more[:4]] == [first, f"{first}+speed:1.1",
                                        f"{first}+warp:0.9", f"{first}+bits:8"]
    assert len(more) == 4 * len(plain) and {e.text for e in more} == {"zero"}
    assert torch.equal(more[0].feats, plain[0].feats)
    assert more[1].feats.shape[0] < plain[0].feats.shape[0]  # 1.1x faster: shorter
    assert not torch.equal(more[2].feats, plain[0].feats)
    with pytest.raises(ValueError, match="perturbation 'echo'"):
        cl.real_examples(("jackson",), perturb=("echo",))

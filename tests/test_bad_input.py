"""What the recognizer does with audio a user may hand it: a result or a clear error
for silence, clipping, 8 kHz, stereo, very short and very long audio, NaN samples,
and a WAV file cut short (chapter 1)."""

import numpy as np
import pytest
import soundfile as sf
import torch

import course_lib as cl

TINY = cl.ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return cl.CTCModel(TINY).eval()


def tone(seconds: float, rate: int = 16000, level: float = 0.3) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return level * torch.sin(2 * np.pi * 220 * t) * (1 + 0.5 * torch.sin(9 * t))


def test_silence_gives_no_words_without_running_the_model():
    def never(*args):
        raise AssertionError("the model ran on silence")

    assert cl.recognize(never, torch.zeros(16000)) == ""
    assert cl.recognize(never, 1e-6 * torch.randn(16000)) == ""  # -120 dBFS hiss


@pytest.mark.parametrize("wav, kwargs", [
    (tone(1.0).clamp(-0.05, 0.05) * 20, {}),  # clipped: a square-ish wave at full scale
    (tone(1.0, 8000), {"sample_rate": 8000}),  # telephone rate, resampled
    (tone(31.0), {}),  # longer than any command
    (tone(0.1), {}),  # the shortest accepted
], ids=["clipped", "8 kHz", "31 s", "0.1 s"])
def test_unusual_but_valid_audio_gets_a_transcript(model, wav, kwargs):
    assert isinstance(cl.recognize(model, wav, **kwargs), str)


def test_8_khz_audio_is_resampled_to_the_models_rate(model):
    wav8 = tone(1.0, 8000)
    wav16 = cl.check_waveform(wav8, 8000)  # resampled to 16 kHz
    assert cl.recognize(model, wav8, sample_rate=8000) == cl.recognize(model, wav16)


@pytest.mark.parametrize("wav, message", [
    (torch.full((16000,), float("nan")), "NaN/inf"),
    (torch.tensor([0.1, float("inf")] * 8000), "NaN/inf"),
    (torch.randn(10) * 0.1, "too short to recognize"),
    (torch.zeros(0), "empty audio"),
    (torch.randn(2, 16000) * 0.1, "expected a 1-D waveform"),
], ids=["nan", "inf", "10 samples", "empty", "stereo tensor"])
def test_bad_waveforms_get_a_clear_error(model, wav, message):
    with pytest.raises(cl.AudioError, match=message):
        cl.recognize(model, wav)


def test_a_stereo_file_is_averaged_to_mono(tmp_path):
    path = tmp_path / "stereo.wav"
    left, right = np.full(16000, 0.25, np.float32), np.full(16000, -0.05, np.float32)
    sf.write(path, np.stack([left, right], 1), 16000, subtype="FLOAT")
    wav = cl.load_audio(path)
    assert wav.shape == (16000,) and torch.allclose(wav, torch.tensor(0.1))


def test_a_wav_cut_short_is_refused_with_its_name(tmp_path):
    whole = tmp_path / "whole.wav"
    sf.write(whole, tone(1.0).numpy(), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    assert cl.load_audio(whole).numel() == 16000
    with pytest.raises(cl.AudioError, match="cut.wav: truncated WAV file"):
        cl.load_audio(cut)

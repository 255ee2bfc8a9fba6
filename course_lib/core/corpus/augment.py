"""Acoustic variety: noise, reverberation, speed; speakers and channels (chapter 1).

The waveform functions take and return float32 tensors of shape (samples,) at
16 kHz, with a `torch.Generator` where they draw, so that a seed fixes every random
choice. The last section perturbs real recordings into new speakers and channels.
"""

from __future__ import annotations

import torch
import torchaudio.functional as AF


def white_noise(n: int, gen: torch.Generator) -> torch.Tensor:
    """Gaussian white noise, shape (n,)."""
    return torch.randn(n, generator=gen)


def pink_noise(n: int, gen: torch.Generator) -> torch.Tensor:
    """1/f ("pink") noise: white noise whose power spectrum is divided by f."""
    spectrum = torch.fft.rfft(torch.randn(n, generator=gen))  # (n // 2 + 1,)
    f = torch.arange(spectrum.numel(), dtype=torch.float32)
    spectrum = spectrum / torch.sqrt(f.clamp(min=1.0))  # power ~ 1/f
    return torch.fft.irfft(spectrum, n=n)


def babble_noise(n: int, others: list[torch.Tensor], gen: torch.Generator
                 ) -> torch.Tensor:
    """Babble: the sum of other utterances, each at a random offset, shape (n,)."""
    out = torch.zeros(n)
    for other in others:
        if other.numel() == 0:
            continue
        reps = -(-n // other.numel()) + 1  # ceil division, plus one for the offset
        tiled = other.repeat(reps)
        start = int(torch.randint(0, other.numel(), (1,), generator=gen))
        out += tiled[start:start + n]
    return out


def mix_at_snr(speech: torch.Tensor, noise: torch.Tensor, snr_db: float
               ) -> torch.Tensor:
    """Add `noise` to `speech` scaled so that 10 log10(P_speech / P_noise) = snr_db."""
    p_speech = speech.pow(2).mean().clamp(min=1e-10)
    p_noise = noise.pow(2).mean().clamp(min=1e-10)
    scale = torch.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))
    return speech + scale * noise


def synthetic_rir(rt60: float, sample_rate: int, gen: torch.Generator) -> torch.Tensor:
    """A room impulse response: a direct path plus exponentially decaying noise.

    The energy falls by 60 dB after `rt60` seconds: amplitude ~ exp(-6.91 t / rt60).
    """
    n = max(int(rt60 * sample_rate), 1)
    t = torch.arange(n, dtype=torch.float32) / sample_rate
    tail = torch.randn(n, generator=gen) * torch.exp(-6.91 * t / rt60)
    rir = 0.3 * tail / tail.abs().max().clamp(min=1e-8)
    rir[0] = 1.0  # the direct sound
    return rir


def reverberate(speech: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    """Convolve with a room impulse response (FFT convolution), same length out."""
    wet = AF.fftconvolve(speech, rir)[: speech.numel()]
    return wet * (speech.abs().max() / wet.abs().max().clamp(min=1e-8))


def speed_perturb(speech: torch.Tensor, factor: float, sample_rate: int
                  ) -> torch.Tensor:
    """Play `factor` times faster (tempo and pitch), as Kaldi's speed perturbation."""
    if factor == 1.0:
        return speech
    # Pretend the audio was recorded at factor * sr and resample it back to sr.
    return AF.resample(speech, orig_freq=int(round(sample_rate * factor)),
                       new_freq=sample_rate)


def telephone(speech: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """A telephone line: down to 8 kHz and back, then the 300-3400 Hz band."""
    narrow = AF.resample(AF.resample(speech, sample_rate, 8000), 8000, sample_rate)
    narrow = AF.highpass_biquad(narrow, sample_rate, 300.0)
    return AF.lowpass_biquad(narrow, sample_rate, 3400.0)[: speech.numel()]


def tilt(speech: torch.Tensor, a: float) -> torch.Tensor:
    """A spectral tilt, y[t] = x[t] - a x[t-1]: a > 0 brightens (less bass), a < 0
    darkens (less treble), as microphones and rooms do."""
    y = speech.clone()
    y[1:] -= a * speech[:-1]
    return y


# ----------------------------------------------------------------------------------
# Speakers and channels for the real recordings (the running example v3, issue 40):
# each makes a new copy of a recording, as a new speaker or a new microphone would.

def pitch_shift(speech: torch.Tensor, sample_rate: int, semitones: float
                ) -> torch.Tensor:
    """The same speech `semitones` higher (lower if negative), same tempo."""
    return AF.pitch_shift(speech[None], sample_rate, semitones)[0]


def mel_warp(feats: torch.Tensor, alpha: float) -> torch.Tensor:
    """Vocal-tract length perturbation on log-mel features (frames, n_mels): band b
    takes the value of band b / alpha, linearly interpolated (alpha > 1 sounds like a
    shorter vocal tract: formants move up). After Jaitly and Hinton (2013)."""
    n = feats.shape[-1]
    src = (torch.arange(n, dtype=torch.float32) / alpha).clamp(max=n - 1)
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=n - 1)
    w = src - lo
    return feats[..., lo] * (1 - w) + feats[..., hi] * w


def requantize(speech: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Linear PCM at `bits` bits: every sample rounded to a multiple of 2**(1-bits)."""
    step = 2.0 ** (1 - bits)
    return torch.round(speech.clamp(-1, 1) / step) * step


def mu_law(speech: torch.Tensor, channels: int = 256) -> torch.Tensor:
    """Through an 8-bit mu-law codec (G.711's companding) and back."""
    codes = AF.mu_law_encoding(speech.clamp(-1, 1), channels)
    return AF.mu_law_decoding(codes, channels)


def band_limit(speech: torch.Tensor, sample_rate: int, rate: int = 8000
               ) -> torch.Tensor:
    """Down to `rate` and back: nothing above rate / 2 is left (an 8 kHz recording)."""
    return AF.resample(AF.resample(speech, sample_rate, rate), rate,
                       sample_rate)[: speech.numel()]


PERTURBATIONS = ("speed", "pitch", "warp", "bits", "mulaw", "band")


def parse_perturbation(spec: str) -> tuple[str, float]:
    """"speed:0.9" -> ("speed", 0.9); "mulaw" -> ("mulaw", 0.0); bad specs raise."""
    name, _, value = spec.partition(":")
    if name not in PERTURBATIONS:
        raise ValueError(f"perturbation {spec!r}: use one of {PERTURBATIONS}, e.g. "
                         "'speed:0.9', 'pitch:-2', 'warp:1.1', 'bits:8', 'mulaw', "
                         "'band:8000'")
    try:
        return name, float(value) if value else 0.0
    except ValueError:
        raise ValueError(f"perturbation {spec!r}: {value!r} is not a number") from None

"""Acoustic variety for the synthetic corpus: noise, reverberation, speed (chapter 1).

All functions take and return float32 tensors of shape (samples,) at 16 kHz and a
`torch.Generator`, so that a seed fixes every random choice.
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

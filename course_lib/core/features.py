"""Log-mel features (chapter 1).

Each utterance is featurized on its own (never as part of a padded batch), so
that padding cannot leak into the features. Shapes: waveform (samples,) ->
features (frames, n_mels) with frames = 1 + samples // hop_length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel settings: 25 ms windows every 10 ms, 80 mel bands."""

    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 80
    log_floor: float = 1e-6


class LogMel(torch.nn.Module):
    """waveform (samples,) or (batch, samples) -> log-mel (…, frames, n_mels)."""

    def __init__(self, cfg: FeatureConfig = FeatureConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
            n_mels=cfg.n_mels)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        spec = self.mel(wav)  # (..., n_mels, frames)
        return torch.log(spec + self.cfg.log_floor).transpose(-1, -2)


_DEFAULT: dict[FeatureConfig, LogMel] = {}


def log_mel(wav: torch.Tensor, cfg: FeatureConfig = FeatureConfig()) -> torch.Tensor:
    """Features of one waveform (samples,) -> (frames, n_mels)."""
    if cfg not in _DEFAULT:
        _DEFAULT[cfg] = LogMel(cfg)
    with torch.no_grad():
        return _DEFAULT[cfg](wav)


"""Reading audio safely: every bad file gets an error that names it (chapter 1)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the problem."""


def load_audio(path: str | os.PathLike, sample_rate: int = 16000,
               resample: bool = True) -> torch.Tensor:
    """Read a mono float32 waveform in [-1, 1], shape (samples,).

    Multi-channel audio is averaged to mono. A different sample rate is resampled
    when `resample` is true (documented recovery) and refused otherwise. Unreadable,
    truncated (a WAV whose header promises more samples than the file holds), empty
    and NaN/inf audio raise `AudioError`.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile says why: truncated, unknown format, ...
        raise AudioError(f"{path}: unreadable or corrupted audio ({exc})") from exc
    missing = wav_shortfall(path)
    if missing:
        raise AudioError(f"{path}: truncated WAV file: its header promises {missing:,} "
                         "more bytes of samples than the file holds")
    return check_waveform(torch.from_numpy(data.mean(axis=1)), sr, sample_rate,
                          resample, source=str(path))


def load_pcm16(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Read a mono 16-bit file's raw int16 samples (for checksums); refuse others."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        data, sr = sf.read(str(path), dtype="int16")
    except Exception as exc:
        raise AudioError(f"{path}: unreadable or corrupted audio ({exc})") from exc
    if data.ndim != 1:
        raise AudioError(f"{path}: expected mono audio, got {data.shape[1]} channels")
    if sr != sample_rate:
        raise AudioError(f"{path}: sample rate {sr} Hz, expected {sample_rate} Hz")
    if data.size == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    return data


def wav_shortfall(path: str | os.PathLike) -> int:
    """Bytes of samples a WAV file's header promises beyond the end of the file (0 for
    a whole file, or a file that is not RIFF WAVE). libsndfile reads what is there
    without a word, so a cut file would pass as a shorter utterance."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        size = os.fstat(f.fileno()).st_size
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return 0
            name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                if length == 0xFFFFFFFF:  # a stream that never wrote its length
                    return 0
                return max(0, length - (size - f.tell()))
            f.seek(length + (length & 1), os.SEEK_CUR)  # chunks are word-aligned


def check_waveform(wav: torch.Tensor, sr: int, sample_rate: int = 16000,
                   resample: bool = True, source: str = "<waveform>") -> torch.Tensor:
    """Validate (and if allowed resample) a 1-D waveform; raise `AudioError` if bad."""
    if wav.ndim != 1:
        raise AudioError(f"{source}: expected a 1-D waveform, got shape "
                         f"{tuple(wav.shape)}")
    if wav.numel() == 0:
        raise AudioError(f"{source}: empty audio (0 samples)")
    if not torch.isfinite(wav).all():
        bad = int((~torch.isfinite(wav)).sum())
        raise AudioError(f"{source}: {bad} NaN/inf samples")
    if sr != sample_rate:
        if not resample:
            raise AudioError(f"{source}: sample rate {sr} Hz, expected {sample_rate} "
                             "Hz (pass resample=True to convert)")
        wav = AF.resample(wav, orig_freq=sr, new_freq=sample_rate)
    return wav.float()


def pcm16(wav: torch.Tensor) -> np.ndarray:
    """Float waveform in [-1, 1] -> int16 samples (clipped)."""
    return (wav.clamp(-1, 1) * 32767).round().to(torch.int16).numpy()

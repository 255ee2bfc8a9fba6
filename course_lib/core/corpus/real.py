"""Real voices: three speakers of the Free Spoken Digit Dataset (chapter 1).

The package ships 1,500 recordings of people saying "zero" to "nine" (8 kHz, CC BY-SA
4.0, attribution and license in `course_lib/data/fsdd/`). They are split by
speaker: `UNSEEN_SPEAKER` is never trained or tuned on and is "the unseen real
speaker" of every report; the other two (`ADAPT_SPEAKERS`) may be used to adapt a
model to real speech. Every file is read by `load_audio` (resampled to 16 kHz), so a
damaged recording is refused with its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..audio import load_audio
from .grammar import DIGITS

FSDD = Path(__file__).resolve().parents[2] / "data" / "fsdd"
SPEAKERS = ("jackson", "george", "nicolas")
UNSEEN_SPEAKER = "nicolas"  # never trained or tuned on: the unseen real speaker
ADAPT_SPEAKERS = ("jackson", "george")


@dataclass(frozen=True)
class Recording:
    """One real recording: its file, speaker, take and transcript."""

    path: Path
    speaker: str
    take: int
    text: str  # the digit's word, e.g. "seven"

    @property
    def id(self) -> str:
        """The file's name without its suffix, e.g. "7_jackson_32"."""
        return self.path.stem


def recordings(speakers: tuple[str, ...] = (UNSEEN_SPEAKER,), root: Path = FSDD
               ) -> list[Recording]:
    """The recordings of `speakers`, sorted by speaker, digit and take."""
    unknown = sorted(set(speakers) - set(SPEAKERS))
    if unknown:
        raise ValueError(f"unknown speakers {unknown}; the package has {SPEAKERS}")
    folder = Path(root) / "recordings"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: the real recordings are missing (the "
                                "package ships them; reinstall course_lib)")
    out = []
    for path in folder.glob("*.wav"):
        digit, speaker, take = path.stem.split("_")
        if speaker in speakers:
            out.append(Recording(path, speaker, int(take), DIGITS[int(digit)]))
    order = {s: i for i, s in enumerate(SPEAKERS)}
    return sorted(out, key=lambda r: (order[r.speaker], DIGITS.index(r.text), r.take))


def recording_audio(rec: Recording, sample_rate: int = 16000) -> torch.Tensor:
    """A recording's waveform at `sample_rate` (resampled from 8 kHz), (samples,);
    a damaged file raises `AudioError` with its name."""
    return load_audio(rec.path, sample_rate, resample=True)

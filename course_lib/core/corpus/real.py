"""Real voices: four speakers of the Free Spoken Digit Dataset, from a folder (ch. 1).

FSDD (Zohar Jackson and contributors, CC BY-SA 4.0) holds recordings of people saying
"zero" to "nine" at 8 kHz. The project commits none of them (third-party data): it
reads them from `real_dir()`, which is `$COURSE_LIB_REAL_DIR` if set, else
`<cache>/fsdd`, where `python -m course_lib fetch-real` downloads the dataset's
`recordings/` at a pinned commit and checks every file against `fsdd.sha256`, the
list of checksums the package carries. Without the folder, `recordings()` raises
`RealDataMissing`, whose message says how to get it; the reports show n/a.

They are split by speaker: `UNSEEN_SPEAKER` is never trained or tuned on and is "the
unseen real speaker" of every report; `TRAINABLE_SPEAKERS` may be trained on. Every
file is read by `load_audio` (resampled to 16 kHz), so a damaged recording is
refused with its name.
"""

from __future__ import annotations

import io
import os
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from ..audio import load_audio
from ..utils import atomic_write_bytes, cache_dir, sha256_bytes, sha256_file
from .grammar import DIGITS

REAL_DIR_ENV = "COURSE_LIB_REAL_DIR"
SPEAKERS = ("jackson", "george", "lucas", "nicolas")
UNSEEN_SPEAKER = "nicolas"  # never trained or tuned on: the unseen real speaker
TRAINABLE_SPEAKERS = ("jackson", "george", "lucas")
ADAPT_SPEAKERS = ("jackson", "george")  # the two the running example v2 trained on
# The dataset's public repository at the commit whose files `fsdd.sha256` lists.
FSDD_COMMIT = "26eb9aa"
FSDD_URL = ("https://github.com/Jakobovski/free-spoken-digit-dataset/archive/"
            f"{FSDD_COMMIT}.tar.gz")
CHECKSUMS = Path(__file__).resolve().parents[2] / "data" / "fsdd.sha256"
ATTRIBUTION = ("Free Spoken Digit Dataset (Zohar Jackson and contributors, "
               "https://github.com/Jakobovski/free-spoken-digit-dataset, DOI "
               "10.5281/zenodo.1342401), CC BY-SA 4.0")


class RealDataMissing(FileNotFoundError):
    """The real recordings are not in `real_dir()`; the message says how to get them."""


def real_dir() -> Path:
    """Where the recordings are read from: $COURSE_LIB_REAL_DIR, else <cache>/fsdd."""
    env = os.environ.get(REAL_DIR_ENV)
    return Path(env).expanduser() if env else cache_dir() / "fsdd"


def missing_message(root: Path | None = None) -> str:
    """The one message every skipped real-voice number gives: what is missing, and how
    to get it."""
    root = real_dir() if root is None else Path(root)
    return (f"the real recordings (FSDD) are not in {root / 'recordings'}: run "
            f"`python -m course_lib fetch-real`, or set {REAL_DIR_ENV} to a folder "
            "that holds FSDD's recordings/")


def available(root: Path | None = None) -> bool:
    """True if the recordings folder exists (its files are checked when read)."""
    return ((real_dir() if root is None else Path(root)) / "recordings").is_dir()


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


def recordings(speakers: tuple[str, ...] = (UNSEEN_SPEAKER,), root: Path | None = None
               ) -> list[Recording]:
    """The recordings of `speakers`, sorted by speaker, digit and take."""
    unknown = sorted(set(speakers) - set(SPEAKERS))
    if unknown:
        raise ValueError(f"unknown speakers {unknown}; the course uses {SPEAKERS}")
    root = real_dir() if root is None else Path(root)
    folder = root / "recordings"
    if not folder.is_dir():
        raise RealDataMissing(missing_message(root))
    out = []
    for path in folder.glob("*.wav"):
        digit, speaker, take = path.stem.split("_")
        if speaker in speakers:
            out.append(Recording(path, speaker, int(take), DIGITS[int(digit)]))
    absent = sorted(set(speakers) - {r.speaker for r in out})
    if absent:
        raise RealDataMissing(f"{folder} holds no recordings of {absent}: "
                              + missing_message(root))
    order = {s: i for i, s in enumerate(SPEAKERS)}
    return sorted(out, key=lambda r: (order[r.speaker], DIGITS.index(r.text), r.take))


def recording_audio(rec: Recording, sample_rate: int = 16000) -> torch.Tensor:
    """A recording's waveform at `sample_rate` (resampled from 8 kHz), (samples,);
    a damaged file raises `AudioError` with its name."""
    return load_audio(rec.path, sample_rate, resample=True)


# ----------------------------------------------------------------------------------
# Getting the recordings: `python -m course_lib fetch-real`.

def checksums(path: Path | None = None) -> dict[str, str]:
    """{file name: SHA-256} of every recording the course uses (`sha256sum` format;
    default: the package's `fsdd.sha256`)."""
    out = {}
    for line in Path(CHECKSUMS if path is None else path).read_text().splitlines():
        digest, name = line.split()
        out[name.lstrip("*")] = digest
    return out


def verify_real(root: Path | None = None) -> list[str]:
    """The problems of the recordings folder (missing or changed files); [] if none."""
    folder = (real_dir() if root is None else Path(root)) / "recordings"
    problems = []
    for name, digest in checksums().items():
        path = folder / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name}: SHA-256 differs from fsdd.sha256")
    return problems


def fetch_real(dest: Path | None = None, url: str = FSDD_URL) -> Path:
    """Download FSDD's recordings at the pinned commit into `dest` (default
    `real_dir()`), keep the files `fsdd.sha256` lists, check each; the folder.

    Each file is written atomically only after its checksum matched, so nothing half
    downloaded or altered is ever read; a file that does not match raises ValueError
    with its name, and one that is missing from the archive too.
    """
    dest = real_dir() if dest is None else Path(dest)
    wanted = checksums()
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310
        data = response.read()
    found: set[str] = set()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar:
            name = Path(member.name).name
            if (not member.isfile() or Path(member.name).parent.name != "recordings"
                    or name not in wanted):
                continue
            blob = tar.extractfile(member).read()
            if sha256_bytes(blob) != wanted[name]:
                raise ValueError(f"{name}: the downloaded file's SHA-256 differs from "
                                 f"fsdd.sha256 ({url})")
            atomic_write_bytes(dest / "recordings" / name, blob)
            found.add(name)
    missing = sorted(set(wanted) - found)
    if missing:
        raise ValueError(f"{url} lacks {len(missing)} of the course's recordings, "
                         f"e.g. {missing[:3]}")
    return dest

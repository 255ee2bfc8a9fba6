"""The baseline: the one trained model that every chapter compresses (chapter 1).

`load_baseline()` returns it from the cache; if it is missing it takes the
checkpoint shipped in `course_lib/artifacts/` (made by `python -m course_lib
train-baseline --ship`) when that was trained on exactly the current corpus and
recipe, and otherwise trains it from scratch: 58 minutes on the 2 CPU cores that
made the shipped copy, longer on slower ones (chapter 1 estimates it for the
machine it runs on). Which baseline it is, the running example says
(`core.example.EXAMPLE`): its design, recipe and real speakers.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..core.example import EXAMPLE
from ..core.evaluation import (CORPUS, REAL_PERTURB, REAL_TRAIN, fit_transcripts,
                               record_model, speaker_transcripts)
from ..core.ledger import Ledger, Record
from ..core.model import CTCModel
from ..core.modelfile import load_model, read_metadata, save_model
from ..core.training import train
from ..core.utils import cache_dir, config_hash, sha256_file
from . import cached_result, shipped_fits

# The baseline of the running example (`core.example.EXAMPLE`). The running example
# v2's choices, each measured against the run before (issue 26):
# - SpecAugment off: on corpus v2 it cost 13 points of greedy test WER in equal runs
#   (the corpus's own augmentation is enough; the model did not fit its data).
# - One strided conv (20 ms frames) instead of two (40 ms): fast eSpeak speech put
#   about as many characters as frames in many utterances, and the 40 ms model's
#   errors grew with that ratio. At 20 ms, 14 epochs (58 min) gave 35.8 % greedy
#   test WER against 46.8 % for 21 epochs (35 min) at 40 ms, but 67.8 % on the unseen
#   real speaker against 54.0 % (both models hear the two trained real speakers
#   perfectly: the real-voice gap is one of speakers, not of frame rate alone).
# - Two CTC symbols per 40 ms frame (upsample=2) ended 4 points worse on dev.
MODEL, TRAIN = EXAMPLE.model, EXAMPLE.train
REAL = REAL_TRAIN  # the real speakers it trains on (`EXAMPLE.real_train`)
PERTURB = REAL_PERTURB  # perturbed copies of their recordings (`EXAMPLE.real_perturb`)
# The running example v1's baseline (command templates only, 40 ms), shipped so that
# chapter 1 can score it next to v2's on the same utterances.
V1_FILE = Path(__file__).resolve().parent.parent / "artifacts/v1/baseline.safetensors"


def baseline_key() -> str:
    """Hash of everything the baseline depends on: corpus, model, recipe (and, in
    v2, the real speakers it trains on)."""
    key = dict(corpus=CORPUS.key(), model=asdict(MODEL), train=asdict(TRAIN))
    if REAL:
        key["real"] = list(REAL)
    if PERTURB:  # (left out when empty, so that v2's shipped key stays)
        key["real_perturb"] = list(PERTURB)
    return config_hash(key)


def baseline_dir() -> Path:
    """The cache folder of the baseline for the current configuration."""
    return cache_dir() / "models" / f"baseline-{baseline_key()}"


def shipped_matches() -> bool:
    """True if the shipped checkpoint was trained on the current corpus and recipe."""
    return shipped_fits("baseline", baseline_key(), match="baseline_key")


def train_baseline(progress: bool = True, out: Path | None = None) -> Path:
    """Train the baseline from scratch into `out` (default: the cache); its file.

    The file is saved again with `baseline_key()` in its metadata, so that a
    shipped copy can be checked later.
    """
    out = baseline_dir() if out is None else out
    result = train(out, CORPUS, MODEL, TRAIN, progress=progress, real_speakers=REAL,
                   real_perturb=PERTURB)
    meta = read_metadata(result.path)
    meta.pop("format", None)
    meta.pop("model_config", None)
    return save_model(result.model, out / "model.safetensors",
                      baseline_key=baseline_key(), **meta)


def baseline_path(progress: bool = True, allow_shipped: bool = True) -> Path:
    """The baseline's model file: cached, else shipped (if it matches), else trained
    (35 minutes on 2 cores in v1, an hour in v2)."""
    return cached_result("baseline", baseline_key(), "model.safetensors",
                         lambda path: train_baseline(progress, path.parent),
                         load=lambda path: path,
                         shipped="baseline" if allow_shipped else None,
                         match="baseline_key")


def load_baseline(progress: bool = True) -> CTCModel:
    """The trained baseline CTC model, in eval mode (chapter 1)."""
    return load_model(baseline_path(progress), expect=MODEL)


def _current_record(name: str, path: Path) -> Record | None:
    """The ledger row `name` if it measured the file at `path` as it is now."""
    try:
        record = Ledger().get(name)
    except KeyError:
        return None
    return record if record.artifact_sha256 == sha256_file(path) else None


def baseline_record(progress: bool = True, force: bool = False) -> Record:
    """The baseline's ledger row; measured now if missing, stale or `force` (ch. 1).

    Every column (`record_model`): greedy WER on the eSpeak test set (the primary
    number), with the lexicon decoder, on isolated words and free strings, and on
    the unseen real speaker; and the baseline's own: every real speaker on his own
    and the greedy WER on 400 of its training utterances (does it fit its data?).
    """
    path = baseline_path(progress)
    record = None if force else _current_record("baseline", path)
    if record is not None:
        return record
    meta = read_metadata(path)
    config = {"model": meta["model_config"], "corpus_key": meta["corpus_key"],
              "train_seconds": meta["train_seconds"],
              "real_speakers": meta.get("real_speakers", []),
              "decoder": "greedy CTC (wer); lexicon beam + trigram (wer_lexicon)"}
    model = load_baseline(progress)
    extra = dict(speakers=speaker_transcripts(model, path) or None,
                 fit=fit_transcripts(model, path))
    return record_model("baseline", "1", model, path, config, progress=progress,
                        extra=extra)

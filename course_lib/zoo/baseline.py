"""The baseline: the one trained model that every chapter compresses (chapter 1).

`load_baseline()` returns it from the cache; if it is missing it takes the
checkpoint shipped in `course_lib/artifacts/` (made by `python -m course_lib
train-baseline --ship`) when that was trained on exactly the current corpus and
recipe, and otherwise trains it from scratch: 35 minutes on the 2 CPU cores that
made the shipped copy, over an hour on slower ones (chapter 1 estimates it for
the machine it runs on).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..core.evaluation import CORPUS, latency_waves, test_transcripts
from ..core.inference import recognize
from ..core.ledger import Ledger, Record, measure
from ..core.model import CTCModel, ModelConfig
from ..core.modelfile import load_model, read_metadata, save_model
from ..core.training import TrainConfig, train
from ..core.utils import cache_dir, config_hash, sha256_file
from . import cached_result, shipped_fits

MODEL = ModelConfig()
TRAIN = TrainConfig(epochs=22)


def baseline_key() -> str:
    """Hash of everything the baseline depends on: corpus, model and recipe."""
    return config_hash(dict(corpus=CORPUS.key(), model=asdict(MODEL),
                            train=asdict(TRAIN)))


def baseline_dir() -> Path:
    """The cache folder of the baseline for the current configuration."""
    return cache_dir() / "models" / f"baseline-{baseline_key()}"


def shipped_matches() -> bool:
    """True if the shipped checkpoint was trained on the current corpus and recipe."""
    return shipped_fits("baseline", baseline_key(), match="baseline_key")


def train_baseline(progress: bool = True, out: Path | None = None) -> Path:
    """Train the baseline from scratch into `out` (default: the cache); its file."""
    out = baseline_dir() if out is None else out
    result = train(out, CORPUS, MODEL, TRAIN, progress=progress)
    # Re-save with the baseline key, so that a shipped copy can be checked later.
    meta = read_metadata(result.path)
    meta.pop("format", None)
    meta.pop("model_config", None)
    return save_model(result.model, out / "model.safetensors",
                      baseline_key=baseline_key(), **meta)


def baseline_path(progress: bool = True, allow_shipped: bool = True) -> Path:
    """The baseline's model file: cached, else shipped (if it matches), else trained."""
    return cached_result("baseline", baseline_key(), "model.safetensors",
                         lambda path: train_baseline(progress, path.parent),
                         load=lambda path: path,
                         shipped="baseline" if allow_shipped else None,
                         match="baseline_key")


def load_baseline(progress: bool = True) -> CTCModel:
    """The trained baseline CTC model, in eval mode (chapter 1)."""
    return load_model(baseline_path(progress), expect=MODEL)


def baseline_record(progress: bool = True, force: bool = False) -> Record:
    """The baseline's ledger row; measured now if missing, stale or `force` (ch. 1)."""
    path = baseline_path(progress)
    if not force:
        try:
            record = Ledger().get("baseline")
            if record.artifact_sha256 == sha256_file(path):
                return record
        except KeyError:
            pass
    model = load_baseline(progress)
    refs, hyps = test_transcripts(model, path, progress=progress)
    meta = read_metadata(path)
    return measure("baseline", "1", model, path, refs, hyps,
                   latency_fn=lambda w: recognize(model, w, lexicon=True),
                   latency_waves=latency_waves(),
                   config={"model": meta["model_config"],
                           "corpus_key": meta["corpus_key"],
                           "train_seconds": meta["train_seconds"],
                           "decoder": "greedy CTC + vocabulary snapping"})

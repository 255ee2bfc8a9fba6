"""The baseline: the one trained model that every chapter compresses (chapter 1).

`load_baseline()` returns it from the cache; if it is missing it takes the
checkpoint shipped in `course_lib/artifacts/` (made by `python -m course_lib
train-baseline --ship`) when that was trained on exactly the current corpus and
recipe, and otherwise trains it from scratch: 35 minutes on the 2 CPU cores that
made the shipped copy, over an hour on slower ones (chapter 1 estimates it for
the machine it runs on).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from .data import CorpusConfig, build_corpus
from .decode import snap_to_vocabulary
from .grammar import vocabulary
from .models import CTCModel, ModelConfig, load_model, read_metadata
from .train import TrainConfig, featurize, train, transcribe
from .utils import (atomic_copy, atomic_write_json, cache_dir, config_hash,
                    sha256_file)

CORPUS = CorpusConfig()
MODEL = ModelConfig()
TRAIN = TrainConfig(epochs=22)
SHIPPED = Path(__file__).parent / "artifacts" / "baseline.safetensors"


def baseline_key() -> str:
    """Hash of everything the baseline depends on: corpus, model and recipe."""
    return config_hash(dict(corpus=CORPUS.key(), model=asdict(MODEL),
                            train=asdict(TRAIN)))


def baseline_dir() -> Path:
    """The cache folder of the baseline for the current configuration."""
    return cache_dir() / "models" / f"baseline-{baseline_key()}"


def shipped_matches(path: Path = SHIPPED) -> bool:
    """True if the shipped checkpoint was trained on the current corpus and recipe."""
    if not path.exists():
        return False
    meta = read_metadata(path)
    return meta.get("baseline_key") == baseline_key() and \
        meta.get("corpus_key") == CORPUS.key()


def train_baseline(progress: bool = True) -> Path:
    """Train the baseline from scratch into the cache; return the model file."""
    out = baseline_dir()
    result = train(out, CORPUS, MODEL, TRAIN, progress=progress)
    # Re-save with the baseline key, so that a shipped copy can be checked later.
    from .models import save_model

    meta = read_metadata(result.path)
    meta.pop("format", None)
    meta.pop("model_config", None)
    return save_model(result.model, out / "model.safetensors",
                      baseline_key=baseline_key(), **meta)


def baseline_path(progress: bool = True, allow_shipped: bool = True) -> Path:
    """The baseline's model file: cached, else shipped (if it matches), else trained."""
    cached = baseline_dir() / "model.safetensors"
    if cached.exists():
        return cached
    if allow_shipped and shipped_matches():
        return atomic_copy(SHIPPED, cached)
    return train_baseline(progress)


def load_baseline(progress: bool = True) -> CTCModel:
    """The trained baseline CTC model, in eval mode (chapter 1)."""
    return load_model(baseline_path(progress), expect=MODEL)


def test_transcripts(model: torch.nn.Module, artifact: str | Path, split: str = "test",
                     corpus_cfg: CorpusConfig = CORPUS, lexicon: bool = True,
                     progress: bool = True) -> tuple[list[str], list[str]]:
    """(references, hypotheses) on a split, cached by the artifact's sha256 (ch. 1).

    Hypotheses are greedy CTC transcripts, snapped to the command vocabulary when
    `lexicon` is true (the recognizer every chapter reports; see `snap_to_vocabulary`).
    The artifact must be the file that `model` was loaded from or saved to: the
    cache key is its hash, so a changed model is never scored from a stale cache.
    """
    key = config_hash(dict(artifact=sha256_file(artifact), corpus=corpus_cfg.key(),
                           split=split, lexicon=lexicon))
    path = cache_dir() / "transcripts" / f"{key}.json"
    if path.exists():
        data = json.loads(path.read_text())
        return data["refs"], data["hyps"]
    corpus = build_corpus(corpus_cfg, splits=(split,), progress=progress)
    examples = featurize(corpus, split, progress=progress)
    hyps = transcribe(model, examples)
    if lexicon:
        vocab = vocabulary()
        hyps = [snap_to_vocabulary(h, vocab) for h in hyps]
    refs = [e.text for e in examples]
    atomic_write_json(path, dict(refs=refs, hyps=hyps, artifact=str(artifact)))
    return refs, hyps


def dev_examples(limit: int | None = 300, corpus_cfg: CorpusConfig = CORPUS,
                 progress: bool = True) -> list:
    """The first `limit` dev utterances, featurized: the tuning set (chapter 3.1 on)."""
    corpus = build_corpus(corpus_cfg, splits=("dev",), progress=progress)
    return featurize(corpus, "dev", limit=limit, progress=progress)


def train_examples(limit: int | None = None, corpus_cfg: CorpusConfig = CORPUS,
                   progress: bool = True) -> list:
    """The first `limit` training utterances (all if None), featurized (ch. 3.1 on)."""
    corpus = build_corpus(corpus_cfg, splits=("train",), progress=progress)
    return featurize(corpus, "train", limit=limit, progress=progress)


def dev_wer(model: torch.nn.Module, limit: int | None = 300, lexicon: bool = True
            ) -> float:
    """WER (fraction) on the first `limit` dev utterances: for tuning, never test."""
    from .metrics import error_rates

    examples = dev_examples(limit, progress=False)
    hyps = transcribe(model, examples)
    if lexicon:
        vocab = vocabulary()
        hyps = [snap_to_vocabulary(h, vocab) for h in hyps]
    return error_rates([e.text for e in examples], hyps)["wer"]


def latency_waves(n: int = 24, corpus_cfg: CorpusConfig = CORPUS) -> list[torch.Tensor]:
    """The first `n` test waveforms: the fixed set every chapter times (chapter 2)."""
    corpus = build_corpus(corpus_cfg, splits=("test",))
    return [corpus.audio(u) for u in corpus.split("test")[:n]]


def baseline_record(progress: bool = True, force: bool = False):
    """The baseline's ledger row; measured now if missing, stale or `force` (ch. 1)."""
    from .ledger import Ledger, measure
    from .train import recognize

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
    vocab = vocabulary()
    return measure("baseline", "1", model, path, refs, hyps,
                   latency_fn=lambda w: snap_to_vocabulary(recognize(model, w), vocab),
                   latency_waves=latency_waves(),
                   config={"model": meta["model_config"],
                           "corpus_key": meta["corpus_key"],
                           "train_seconds": meta["train_seconds"],
                           "decoder": "greedy CTC + vocabulary snapping"})

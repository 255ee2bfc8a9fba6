"""The fixed data every chapter scores on: test transcripts, dev WER, timing waves.

Introduced in chapter 1. The test split (unseen voices) gives every reported WER;
the first dev utterances tune (never test); the first test waveforms are what
every chapter times (chapter 2); the unseen real speaker's recordings say how a
model does on real speech (`real_transcripts`).
"""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path
from typing import Callable

import torch

from .batching import Example, featurize
from .corpus import augment
from .corpus.build import CorpusConfig, build_corpus
from .corpus.real import (SPEAKERS, UNSEEN_SPEAKER, available, missing_message,
                          recording_audio, recordings)
from .example import EXAMPLE
from .features import FeatureConfig, log_mel
from .inference import (PRIMARY, Lexicon, decoder_id, recognize, transcribe,
                        transcribe_each)
from .ledger import Record, measure
from .metrics import error_rates
from .text import encode
from .utils import atomic_write_json, cache_dir, config_hash, sha256_file

_REAL: dict[tuple, list[Example]] = {}  # featurized real recordings, per session
CORPUS = EXAMPLE.corpus  # the running example's corpus: every chapter scores on it
# The real speakers the running example's baseline (and every recipe) trains on.
REAL_TRAIN: tuple[str, ...] = EXAMPLE.real_train
REAL_PERTURB: tuple[str, ...] = EXAMPLE.real_perturb  # and their perturbed copies


def test_transcripts(model: torch.nn.Module, artifact: str | Path, split: str = "test",
                     corpus_cfg: CorpusConfig = CORPUS, lexicon: Lexicon = PRIMARY,
                     progress: bool = True) -> tuple[list[str], list[str]]:
    """(references, hypotheses) on a split, cached by the artifact's sha256 (ch. 1).

    Hypotheses are decoded as `lexicon` says (`inference.decode`): by default what
    the ledger's primary WER uses (snapped to the command vocabulary in v1, greedy
    in v2); True: the running example's recognizer (snapping, or in v2 the lexicon
    beam search with the grammar's trigram); False: greedy.
    The artifact must be the file that `model` was loaded from or saved to: the
    cache key is its hash, so a changed model is never scored from a stale cache.
    """
    return test_transcripts_each(model, artifact, (lexicon,), split, corpus_cfg,
                                 progress)[0]


def test_transcripts_each(model: torch.nn.Module, artifact: str | Path,
                          lexicons: tuple[Lexicon, ...], split: str = "test",
                          corpus_cfg: CorpusConfig = CORPUS, progress: bool = True
                          ) -> list[tuple[list[str], list[str]]]:
    """`test_transcripts` for each decoder of `lexicons`; the ones not cached yet
    come from one forward pass of the model (chapter 2's `record_model`)."""
    def examples() -> list[Example]:
        corpus = build_corpus(corpus_cfg, splits=(split,), progress=progress)
        return featurize(corpus, split, progress=progress)

    names = [config_hash(dict(artifact=sha256_file(artifact), corpus=corpus_cfg.key(),
                              split=split, lexicon=decoder_id(lexicon))) + ".json"
             for lexicon in lexicons]
    return _cached_each(names, model, artifact, examples, lexicons)


def test_kinds(split: str = "test", corpus_cfg: CorpusConfig = CORPUS) -> list[str]:
    """Each utterance's text kind, in `test_transcripts`' order (chapter 1)."""
    corpus = build_corpus(corpus_cfg, splits=(split,), progress=False)
    return [u.kind for u in corpus.split(split)]


def _cached_transcripts(name: str, model: torch.nn.Module, artifact: str | Path,
                        examples, lexicon: Lexicon) -> tuple[list[str], list[str]]:
    """(refs, hyps) from `<cache>/transcripts/<name>`, else made and written there;
    `examples()` gives the utterances only when they must be transcribed."""
    return _cached_each([name], model, artifact, examples, (lexicon,))[0]


def _cached_each(names: list[str], model: torch.nn.Module, artifact: str | Path,
                 examples, lexicons: tuple[Lexicon, ...]
                 ) -> list[tuple[list[str], list[str]]]:
    """`_cached_transcripts` for several decoders (cache file names[i] for
    lexicons[i]); the missing ones are decoded from one forward pass."""
    paths = [cache_dir() / "transcripts" / name for name in names]
    missing = [i for i, path in enumerate(paths) if not path.exists()]
    if missing:
        exs = examples()
        refs = [e.text for e in exs]
        made = transcribe_each(model, exs, tuple(lexicons[i] for i in missing))
        for i, hyps in zip(missing, made):
            atomic_write_json(paths[i], dict(refs=refs, hyps=hyps,
                                             artifact=str(artifact)))
    out = []
    for path in paths:
        data = json.loads(path.read_text())
        out.append((data["refs"], data["hyps"]))
    return out


def dev_examples(limit: int | None = 300, corpus_cfg: CorpusConfig = CORPUS,
                 progress: bool = True) -> list[Example]:
    """The first `limit` dev utterances, featurized: the tuning set (chapter 3.1 on)."""
    corpus = build_corpus(corpus_cfg, splits=("dev",), progress=progress)
    return featurize(corpus, "dev", limit=limit, progress=progress)


def train_examples(limit: int | None = None, corpus_cfg: CorpusConfig = CORPUS,
                   progress: bool = True) -> list[Example]:
    """The first `limit` training utterances (all if None), featurized (ch. 3.1 on).

    The baseline also trained on the real recordings of `REAL_TRAIN` (and their
    `REAL_PERTURB` copies), so every recipe's training set holds them too (the same
    data as the baseline: forgetting them must not pass for a compression effect),
    in the same share when `limit` cuts the corpus (a fixed random subset of them).
    """
    corpus = build_corpus(corpus_cfg, splits=("train",), progress=progress)
    examples = featurize(corpus, "train", limit=limit, progress=progress)
    if corpus_cfg != CORPUS or not REAL_TRAIN:
        return examples
    real = real_examples(REAL_TRAIN, perturb=REAL_PERTURB)
    real = random.Random(0).sample(real, len(real))  # a fixed order, speakers mixed
    n = len(real) if limit is None else round(len(real) * limit / corpus_cfg.n_train)
    return examples + real[:n]


def dev_wer(model: torch.nn.Module, limit: int | None = 300, lexicon: Lexicon = PRIMARY
            ) -> float:
    """WER (fraction) on the first `limit` dev utterances: for tuning, never test.
    Greedy in the running example v2 (the acoustic model's own), snapped in v1."""
    examples = dev_examples(limit, progress=False)
    hyps = transcribe(model, examples, lexicon=lexicon)
    return error_rates([e.text for e in examples], hyps)["wer"]


def latency_waves(n: int = 24, corpus_cfg: CorpusConfig = CORPUS) -> list[torch.Tensor]:
    """The first `n` test waveforms: the fixed set every chapter times (chapter 2)."""
    corpus = build_corpus(corpus_cfg, splits=("test",))
    return [corpus.audio(u) for u in corpus.split("test")[:n]]


def real_examples(speakers: tuple[str, ...] = (UNSEEN_SPEAKER,),
                  feat_cfg: FeatureConfig = FeatureConfig(),
                  perturb: tuple[str, ...] = ()) -> list[Example]:
    """The real recordings of `speakers`, featurized at 16 kHz (kept in memory); with
    `perturb` (e.g. ("speed:0.9", "warp:1.1", "bits:8"), `augment.PERTURBATIONS`),
    also one perturbed copy of each recording per entry, its id suffixed "+<entry>"
    (the running example v3's new speakers and channels, issue 40)."""
    key = (speakers, feat_cfg, perturb)
    if key not in _REAL:
        specs = [augment.parse_perturbation(p) for p in perturb]  # bad ones refused
        out = []
        for r in recordings(speakers):
            wav = recording_audio(r)
            out.append(Example(r.id, r.text, log_mel(wav, feat_cfg), encode(r.text)))
            for spec, (name, value) in zip(perturb, specs):
                feats = log_mel(_perturb_wave(wav, name, value, feat_cfg.sample_rate),
                                feat_cfg)
                if name == "warp":
                    feats = augment.mel_warp(feats, value)
                out.append(Example(f"{r.id}+{spec}", r.text, feats, encode(r.text)))
        _REAL[key] = out
    return _REAL[key]


def _perturb_wave(wav: torch.Tensor, name: str, value: float, sr: int
                  ) -> torch.Tensor:
    """One waveform perturbation of `real_examples` ("warp" acts on the features)."""
    if name == "speed":
        return augment.speed_perturb(wav, value, sr)
    if name == "pitch":
        return augment.pitch_shift(wav, sr, value)
    if name == "bits":
        return augment.requantize(wav, int(value))
    if name == "mulaw":
        return augment.mu_law(wav)
    if name == "band":
        return augment.band_limit(wav, sr, int(value))
    return wav


def real_transcripts(model: torch.nn.Module, artifact: str | Path,
                     speakers: tuple[str, ...] = (UNSEEN_SPEAKER,),
                     lexicon: Lexicon = False) -> tuple[list[str], list[str]]:
    """(references, hypotheses) on real recordings, by default the unseen real
    speaker's 500 digits, cached by the artifact's sha256 like `test_transcripts`.

    Greedy CTC, or decoded with the command vocabulary as `lexicon` says.
    """
    key = config_hash(dict(artifact=sha256_file(artifact), real=list(speakers),
                           lexicon=decoder_id(lexicon)))
    return _cached_transcripts(f"real-{key}.json", model, artifact,
                               lambda: real_examples(speakers), lexicon)


class RealVoicesSkipped(UserWarning):
    """A real-voice number was skipped: the recordings are not there (chapter 1)."""


def real_transcripts_or_none(model: torch.nn.Module, artifact: str | Path
                             ) -> tuple[list[str], list[str]] | None:
    """`real_transcripts` of the unseen real speaker, or None (the ledger's n/a) with
    one warning saying how to get the recordings, when they are missing."""
    if not available():
        warnings.warn(f"real-voice numbers skipped: {missing_message()}",
                      RealVoicesSkipped, stacklevel=2)
        return None
    return real_transcripts(model, artifact)


def record_model(name: str, chapter: str, model: torch.nn.Module,
                 artifact: str | Path, config: dict | None = None,
                 latency_fn: Callable[[torch.Tensor], object] | None = None,
                 corpus_cfg: CorpusConfig = CORPUS, progress: bool = True,
                 runner: torch.nn.Module | None = None, extra: dict | None = None
                 ) -> Record:
    """Every ledger column of `model`, saved as `artifact`, measured and recorded
    (chapter 2): the test WER and CER (greedy CTC, the primary number), the lexicon
    decoder's WER, isolated words and free strings, and the unseen real speaker
    (n/a without the recordings), each with its interval. The latency is that of
    `latency_fn` (default: `recognize` as the primary WER decodes) on the fixed
    timing waves. `extra` holds more of `measure`'s columns (the baseline's
    `speakers` and `fit`).

    `runner`, if given, is what actually runs the file (an int8 engine, an ONNX
    Runtime session wrapped as a module): it is transcribed and timed, while the
    parameters are counted on `model`, the float model it was made from (a
    quantized engine hides its weights from `parameters()`).
    """
    runner = model if runner is None else runner
    lexicons = (PRIMARY, "beam")  # one forward pass for both
    scored = test_transcripts_each(runner, artifact, lexicons, corpus_cfg=corpus_cfg,
                                   progress=progress)
    refs, hyps = scored[0]
    columns = dict(kinds=test_kinds(corpus_cfg=corpus_cfg), lexicon_hyps=scored[1][1],
                   real=real_transcripts_or_none(runner, artifact))
    if latency_fn is None:
        def latency_fn(wav: torch.Tensor) -> str:
            return recognize(runner, wav, lexicon=PRIMARY)
    return measure(name, chapter, model, artifact, refs, hyps, latency_fn=latency_fn,
                   latency_waves=latency_waves(corpus_cfg=corpus_cfg), config=config,
                   **columns, **(extra or {}))


def fit_transcripts(model: torch.nn.Module, artifact: str | Path, n: int = 400,
                    corpus_cfg: CorpusConfig = CORPUS) -> tuple[list[str], list[str]]:
    """(references, greedy hypotheses) of the first `n` training utterances, cached
    by the artifact's sha256: does the model fit its own data? (chapter 1)"""
    def examples() -> list[Example]:
        corpus = build_corpus(corpus_cfg, splits=("train",), progress=False)
        return featurize(corpus, "train", limit=n, progress=False)

    name = config_hash(dict(artifact=sha256_file(artifact), corpus=corpus_cfg.key(),
                            split="train", limit=n, lexicon="greedy")) + ".json"
    return _cached_each([name], model, artifact, examples, (False,))[0]


def speaker_transcripts(model: torch.nn.Module, artifact: str | Path
                        ) -> dict[str, tuple[list[str], list[str]]]:
    """{speaker: (refs, greedy hyps)} for every real speaker, each on his own
    (chapter 1); {} when the recordings are missing."""
    if not available():
        return {}
    return {s: real_transcripts(model, artifact, speakers=(s,)) for s in SPEAKERS}

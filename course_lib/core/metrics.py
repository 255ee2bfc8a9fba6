"""Measurements that every chapter reports the same way (chapter 2).

WER/CER with jiwer (fractions, jiwer's convention), a bootstrap 95 % confidence
interval over utterances, parameter counts, real bytes on disk (raw, zlib, lzma),
and single-thread CPU latency / real-time factor.
"""

from __future__ import annotations

import json
import lzma
import os
import statistics
import time
import zlib
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Hashable, Iterator, TypeVar

import numpy as np
import torch

from .utils import atomic_write_json, cache_dir, sha256_bytes

K = TypeVar("K", bound=Hashable)  # the names of the functions timed side by side


def _check_pairs(refs: list[str], hyps: list[str]) -> None:
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ValueError("no utterances to score")
    if any(not r.strip() for r in refs):
        raise ValueError("a reference transcript is empty; WER is undefined for it")


def error_rates(refs: list[str], hyps: list[str]) -> dict[str, float]:
    """Corpus-level WER and CER (fractions) with jiwer."""
    import jiwer

    _check_pairs(refs, hyps)
    return dict(wer=float(jiwer.wer(refs, hyps)), cer=float(jiwer.cer(refs, hyps)))


def word_errors(refs: list[str], hyps: list[str], unit: str = "word"
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per-utterance (errors, reference length) in words (or `unit="char"`
    characters): the bootstrap's raw material."""
    import jiwer

    _check_pairs(refs, hyps)
    if unit not in ("word", "char"):
        raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")
    process = jiwer.process_words if unit == "word" else jiwer.process_characters
    errors, words = [], []
    for r, h in zip(refs, hyps):
        out = process(r, h)
        errors.append(out.substitutions + out.deletions + out.insertions)
        words.append(out.substitutions + out.deletions + out.hits)
    return np.array(errors), np.array(words)


def score(refs: list[str], hyps: list[str], unit: str = "word"
          ) -> tuple[float, tuple[float, float]]:
    """(error rate, its bootstrap 95 % CI): WER, or CER with `unit="char"` (ch. 2)."""
    errors, words = word_errors(refs, hyps, unit)
    return float(errors.sum() / words.sum()), bootstrap_wer_ci(errors, words)


def _resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) utterance indices drawn with replacement, seeded."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central `level` percentile interval of bootstrap `values`."""
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def bootstrap_wer_ci(errors: np.ndarray, words: np.ndarray, n_boot: int = 1000,
                     seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of corpus WER = sum(errors) / sum(words) (ch. 2)."""
    idx = _resamples(len(errors), n_boot, seed)
    return _interval(errors[idx].sum(1) / words[idx].sum(1), level)


def paired_bootstrap(errors_a: np.ndarray, errors_b: np.ndarray, words: np.ndarray,
                     n_boot: int = 1000, seed: int = 0, level: float = 0.95
                     ) -> dict[str, float]:
    """WER(a) - WER(b) on the same utterances, with its bootstrap CI (chapter 3.3).

    Each resample draws utterances, not systems, so both systems are scored on the
    same draw and the utterances' difficulty cancels (Bisani and Ney, 2004): the
    interval is usually narrower than the two separate intervals suggest.
    `p_better` is the share of resamples in which a has fewer errors than b.
    """
    if not len(errors_a) == len(errors_b) == len(words):
        raise ValueError(f"paired_bootstrap needs one row per utterance for both "
                         f"systems: got {len(errors_a)}, {len(errors_b)} errors and "
                         f"{len(words)} word counts")
    idx = _resamples(len(words), n_boot, seed)
    deltas = (errors_a[idx].sum(1) - errors_b[idx].sum(1)) / words[idx].sum(1)
    lo, hi = _interval(deltas, level)
    return dict(delta=float((errors_a.sum() - errors_b.sum()) / words.sum()),
                lo=lo, hi=hi, p_better=float((deltas < 0).mean()))


def paired_wer(refs: list[str], hyps_a: list[str], hyps_b: list[str],
               n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """WER(a) - WER(b) on the same references, with its paired bootstrap CI (ch. 2)."""
    errors_a, words = word_errors(refs, hyps_a)
    errors_b, _ = word_errors(refs, hyps_b)
    return paired_bootstrap(errors_a, errors_b, words, n_boot, seed)


def within(delta: dict[str, float], limit: float) -> bool:
    """The course's one verdict for "WER <= baseline + limit" (chapter 2).

    `delta` is `paired_wer(refs, model, baseline)`; the claim holds when the
    upper end of its 95 % interval is at most `limit` (a fraction): the data
    rule out a loss larger than the limit, not merely fail to show one.
    """
    return delta["hi"] <= limit


def count_nonzero(model: torch.nn.Module) -> int:
    """Parameters that are not exactly zero."""
    return int(sum(int((p != 0).sum()) for p in model.parameters()))


_SIZE_KEYS = ("file_bytes", "zlib_bytes", "lzma_bytes")  # what file_sizes returns


def file_sizes(path: str | os.PathLike) -> dict[str, int]:
    """Bytes of the real file, and after zlib (level 9) and lzma (preset 9).

    lzma takes seconds on a model file (3 s for the 6 MB baseline), and chapters
    size the same files again and again, so the counts of files over 1 MB are
    cached by the file's sha256 (the bytes themselves, not the path).
    """
    data = Path(path).read_bytes()
    memo = None
    if len(data) > 1_000_000:
        memo = cache_dir() / "sizes" / f"{sha256_bytes(data)}.json"
        with suppress(OSError, ValueError, KeyError, TypeError):
            cached = json.loads(memo.read_text())
            if cached["file_bytes"] == len(data):
                return {k: int(cached[k]) for k in _SIZE_KEYS}
    sizes = dict(file_bytes=len(data), zlib_bytes=len(zlib.compress(data, 9)),
                 lzma_bytes=len(lzma.compress(data, preset=9)))
    if memo is not None:
        atomic_write_json(memo, sizes)
    return sizes


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one torch thread, then restore the old count (chapter 2)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _take_turns(fns: dict[K, Callable[[], object]], repeats: int
                ) -> dict[K, list[float]]:
    """Seconds of every `fn()` call: each repeat calls the functions once, in turn."""
    times: dict[K, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return times


def interleaved_ms(fns: dict[K, Callable[[], object]], repeats: int, warmup: int
                   ) -> dict[K, float]:
    """Median milliseconds of each `fn()`, the functions taking turns (ch. 3.1, 3.4).

    Every repeat calls each function once, so a slow moment of the machine hits all
    of them alike and their ratios stay fair; `warmup` calls each go first.
    """
    _take_turns(fns, warmup)
    return {k: 1000 * statistics.median(t)
            for k, t in _take_turns(fns, repeats).items()}


@dataclass
class Latency:
    """Single-thread latency: median milliseconds per utterance and real-time factor."""

    median_ms: float
    rtf: float  # processing time / audio time
    repeats: int


def side_by_side(fns: dict[str, Callable[[torch.Tensor], object]],
                 waves: list[torch.Tensor], rounds: int = 3, sample_rate: int = 16000,
                 warmup: int = 1) -> dict[str, Latency]:
    """Time each `fn(wave)` on every wave, one thread, interleaved (chapters 2-5).

    For every wave of every round, each function runs once in turn, so that a slow
    moment of the machine (another process, a frequency change) hits all of them
    alike and their ratios stay fair; median over utterances and rounds.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    rtfs: dict[str, list[float]] = {name: [] for name in fns}
    def on(w: torch.Tensor) -> dict[str, Callable[[], object]]:
        return {name: partial(fn, w) for name, fn in fns.items()}

    with one_thread(), torch.inference_mode():
        for w in waves[:warmup]:  # warm-up: first calls set up kernels
            _take_turns(on(w), 1)
        for _ in range(rounds):
            for w in waves:
                for name, (dt,) in _take_turns(on(w), 1).items():
                    times[name].append(dt)
                    rtfs[name].append(dt / (w.numel() / sample_rate))
    return {name: Latency(1000 * statistics.median(times[name]),
                          statistics.median(rtfs[name]), rounds) for name in fns}


def measure_latency(fn: Callable[[torch.Tensor], object], waves: list[torch.Tensor],
                    sample_rate: int = 16000, repeats: int = 3, warmup: int = 1
                    ) -> Latency:
    """Time `fn(wave)` on each wave, one thread; median over utterances and repeats."""
    return side_by_side({"fn": fn}, waves, repeats, sample_rate, warmup)["fn"]

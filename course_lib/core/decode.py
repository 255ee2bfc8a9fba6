"""Greedy CTC decoding (chapter 1; the chapter-1 lab re-implements it)."""

from __future__ import annotations

import torch

from .text import BLANK, VOCAB


def collapse(ids: list[int], blank: int = BLANK) -> list[int]:
    """CTC's many-to-one map: merge repeated ids, then drop blanks."""
    out, prev = [], None
    for i in ids:
        if i != prev and i != blank:
            out.append(i)
        prev = i
    return out


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """(B, T, V) log-probs and (B,) lengths -> B strings (best path, collapsed)."""
    best = log_probs.argmax(-1)  # (B, T)
    texts = []
    for b in range(best.shape[0]):
        ids = collapse(best[b, : int(lengths[b])].tolist())
        texts.append("".join(VOCAB[i] for i in ids))
    return texts


def snap_to_vocabulary(text: str, vocabulary: list[str]) -> str:
    """Replace each out-of-vocabulary word by the nearest vocabulary word (edits).

    A command recognizer knows its vocabulary: 'schol' -> 'school'. Uses rapidfuzz
    (jiwer's own dependency); ties go to the word listed first.
    """
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    known = set(vocabulary)
    words = []
    for w in text.split():
        if w not in known:
            w = process.extractOne(w, vocabulary, scorer=Levenshtein.distance)[0]
        words.append(w)
    return " ".join(words)

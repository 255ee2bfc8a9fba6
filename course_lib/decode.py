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

"""A word n-gram language model written as an ARPA file (chapter 1).

The lexicon decoder (`core.lexicon`) can weigh each word sequence by a language
model: log P(hyp) = log P_acoustic + lm_weight * log P_LM + word_score * words.
We estimate the LM from the training transcripts with Witten-Bell smoothing
(Witten and Bell 1991; Chen and Goodman 1999, section 2.5), interpolated:

    P(w | h) = (c(h, w) + T(h) P(w | h')) / (c(h) + T(h))

where h' is h without its oldest word, c(h) counts h as a history and T(h) is the
number of distinct words seen after h. Unigrams back off to the uniform
distribution over the vocabulary (plus </s>), so every lexicon word has a
probability. ARPA stores log10 P(w | h) for every seen n-gram and one backoff
weight per history; for interpolated Witten-Bell that weight is exactly
T(h) / (c(h) + T(h)), the mass left for unseen words. No pip package writes ARPA
files (KenLM's `lmplz` is a C++ tool), so these sixty lines are the course's own.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Iterable

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def ngram_counts(sentences: Iterable[str], order: int
                 ) -> list[Counter[tuple[str, ...]]]:
    """counts[k][(w1, ..., wk+1)]: how often each (k+1)-gram occurs, with <s>/</s>."""
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    counts: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order)]
    for sentence in sentences:
        words = [BOS] + sentence.split() + [EOS]
        for i in range(1, len(words)):  # every predicted word (never <s>)
            for k in range(order):
                if i - k < 0:
                    break
                counts[k][tuple(words[i - k:i + 1])] += 1
    return counts


def witten_bell(sentences: Iterable[str], vocabulary: Iterable[str], order: int = 3
                ) -> tuple[list[dict[tuple[str, ...], float]], dict[tuple, float]]:
    """Interpolated Witten-Bell: ([{ngram: P(w | h)} per order], {h: backoff})."""
    counts = ngram_counts(sentences, order)
    vocab = sorted(set(vocabulary) | {w for (w,) in counts[0]} | {EOS})
    history_total: dict[tuple, int] = defaultdict(int)  # c(h)
    history_types: dict[tuple, int] = defaultdict(int)  # T(h)
    for k in range(order):
        for gram, c in counts[k].items():
            history_total[gram[:-1]] += c
            history_types[gram[:-1]] += 1
    backoff = {h: history_types[h] / (history_total[h] + history_types[h])
               for h in history_total}
    probs: list[dict[tuple[str, ...], float]] = [{} for _ in range(order)]
    uniform = 1.0 / len(vocab)
    for w in vocab:  # unigrams: every word, seen or not
        c = counts[0].get((w,), 0)
        probs[0][(w,)] = (c + history_types[()] * uniform) / (
            history_total[()] + history_types[()])
    for k in range(1, order):
        for gram, c in counts[k].items():
            h = gram[:-1]
            lower = _prob(probs, backoff, gram[1:])
            probs[k][gram] = (c + history_types[h] * lower) / (
                history_total[h] + history_types[h])
    return probs, backoff


def _prob(probs: list[dict], backoff: dict, gram: tuple[str, ...]) -> float:
    """P(gram[-1] | gram[:-1]) by backing off to shorter histories."""
    if gram in probs[len(gram) - 1]:
        return probs[len(gram) - 1][gram]
    return backoff.get(gram[:-1], 1.0) * _prob(probs, backoff, gram[1:])


def arpa_text(sentences: Iterable[str], vocabulary: Iterable[str], order: int = 3
              ) -> str:
    """The ARPA file of an interpolated Witten-Bell model of `sentences`."""
    probs, backoff = witten_bell(sentences, vocabulary, order)
    probs[0][(BOS,)] = 0.0  # <s> is never predicted: log10 0 is written as -99
    probs[0][(UNK,)] = 0.0  # nor is a word outside the vocabulary
    lines = ["\\data\\"] + [f"ngram {k + 1}={len(p)}" for k, p in enumerate(probs)]
    for k, table in enumerate(probs):
        lines += ["", f"\\{k + 1}-grams:"]
        for gram in sorted(table):
            p = table[gram]
            logp = math.log10(p) if p > 0 else -99.0
            line = f"{logp:.6f}\t{' '.join(gram)}"
            if k + 1 < len(probs) and gram in backoff:
                line += f"\t{math.log10(backoff[gram]):.6f}"
            lines.append(line)
    return "\n".join(lines + ["", "\\end\\", ""])

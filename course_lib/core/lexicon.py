"""The lexicon decoder: CTC beam search that spells only vocabulary words (ch. 1).

Greedy decoding takes the best symbol in every frame; it can spell words that do
not exist ("fiv"). A command recognizer knows its vocabulary, so it searches for
the most probable *sequence of vocabulary words* instead: a beam search over the
CTC lattice in which every word must follow a spelling of the lexicon. We use
torchaudio's `ctc_decoder` (flashlight-text's lexicon decoder, Kahn et al. 2022)
with the grammar's words as the lexicon and no language model: every word
sequence is allowed, so isolated words and free strings are not pushed towards
the templates. Our tokens map onto flashlight's: the blank is "-", the space "|".
"""

from __future__ import annotations

import functools

import torch
from torchaudio.models.decoder import CTCDecoder, ctc_decoder

from .corpus.grammar import vocabulary
from .text import BLANK, VOCAB
from .utils import atomic_write_bytes, cache_dir, config_hash

BLANK_TOKEN, WORD_END = "-", "|"  # flashlight's names for the blank and the space
TOKENS = [BLANK_TOKEN if i == BLANK else WORD_END if c == " " else c
          for i, c in enumerate(VOCAB)]  # index i is our token id i


def lexicon_lines(words: list[str]) -> list[str]:
    """The lexicon file's lines: each word, then its spelling and a word end."""
    bad = [w for w in words if not w or any(c not in VOCAB[2:] for c in w)]
    if bad:
        raise ValueError(f"lexicon words must be spelled with {''.join(VOCAB[2:])!r}"
                         f" only: {bad[:5]}")
    return [f"{w} {' '.join(w)} {WORD_END}" for w in words]


@functools.cache
def lexicon_decoder(words: tuple[str, ...] | None = None, beam_size: int = 50,
                    word_score: float = 0.0) -> CTCDecoder:
    """A flashlight lexicon decoder over `words` (default: the grammar's vocabulary).

    `word_score` is added per word (negative: fewer insertions). Built once per
    argument set; its lexicon file is written to the cache, named by its content.
    """
    lines = "\n".join(lexicon_lines(list(words or vocabulary()))) + "\n"
    path = cache_dir() / "lexicon" / f"{config_hash(lines)}.txt"
    if not path.exists():
        atomic_write_bytes(path, lines.encode())
    return ctc_decoder(lexicon=str(path), tokens=TOKENS, lm=None, nbest=1,
                       beam_size=beam_size, word_score=word_score,
                       blank_token=BLANK_TOKEN, sil_token=WORD_END)


def lexicon_decode(log_probs: torch.Tensor, lengths: torch.Tensor,
                   decoder: CTCDecoder | None = None) -> list[str]:
    """(B, T, V) log-probs and (B,) lengths -> B transcripts of vocabulary words."""
    decoder = decoder or lexicon_decoder()
    emissions = log_probs.detach().to(torch.float32).contiguous().cpu()
    results = decoder(emissions, lengths.to(torch.int32).cpu())
    return [" ".join(hyps[0].words) if hyps else "" for hyps in results]

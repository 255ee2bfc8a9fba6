"""The lexicon decoder: CTC beam search that spells only vocabulary words (ch. 1).

Greedy decoding takes the best symbol in every frame; it can spell words that do
not exist ("fiv"). A command recognizer knows its vocabulary, so it searches for
the most probable *sequence of vocabulary words* instead: a beam search over the
CTC lattice in which every word must follow a spelling of the lexicon. We use
torchaudio's `ctc_decoder` (flashlight-text's lexicon decoder, Kahn et al. 2022)
with the grammar's words as the lexicon and, by default, a word trigram of
corpus v2's training transcripts (`core.ngram`, `grammar_lm`) as language model.
In the session that chose `LM_WEIGHT` and `WORD_SCORE` (the best on dev of weights
0.5 to 4 and word scores 0 to 2), the trigram cut the v2 baseline's lexicon WER on
the test set from 19.1 % to 14.2 % (greedy: 35.8 %); `lexicon_decoder()` with no
arguments has no LM.
Our tokens map onto flashlight's: the blank is "-", the space "|".
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path

import torch
from torchaudio.models.decoder import CTCDecoder, ctc_decoder

from .corpus.build import CORPUS_V2, plan_corpus
from .corpus.grammar import vocabulary
from .ngram import arpa_text
from .text import BLANK, VOCAB
from .utils import atomic_write_bytes, cache_dir, config_hash

BLANK_TOKEN, WORD_END = "-", "|"  # flashlight's names for the blank and the space
LM_WEIGHT, WORD_SCORE = 2.0, 2.0  # tuned on corpus v2's dev set (see above)
TOKENS = [BLANK_TOKEN if i == BLANK else WORD_END if c == " " else c
          for i, c in enumerate(VOCAB)]  # index i is our token id i


def lexicon_lines(words: list[str]) -> list[str]:
    """The lexicon file's lines: each word, then its spelling and a word end."""
    bad = [w for w in words if not w or any(c not in VOCAB[2:] for c in w)]
    if bad:
        raise ValueError(f"lexicon words must be spelled with {''.join(VOCAB[2:])!r}"
                         f" only: {bad[:5]}")
    return [f"{w} {' '.join(w)} {WORD_END}" for w in words]


def _cached_text(folder: str, text: str, suffix: str) -> Path:
    """`text` written once to `<cache>/<folder>/<its hash><suffix>`; the path."""
    path = cache_dir() / folder / f"{config_hash(text)}{suffix}"
    if not path.exists():
        atomic_write_bytes(path, text.encode())
    return path


def grammar_lm(order: int = 3) -> Path:
    """The ARPA file of a Witten-Bell word `order`-gram of corpus v2's training
    transcripts (text only: nothing is synthesized), cached by content."""
    texts = [p["text"] for p in plan_corpus(CORPUS_V2) if p["split"] == "train"]
    return _cached_text("lm", arpa_text(texts, vocabulary(), order), ".arpa")


@contextlib.contextmanager
def _silent_stderr():
    """Send the process's own stderr (file descriptor 2) to the null device for a
    moment: KenLM prints "Loading the LM will be faster if you build a binary file"
    there each time it reads an ARPA file (its `build_binary` is not on pip), which
    would otherwise land in every notebook that builds a decoder. Errors still
    arrive as Python exceptions."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.cache
def lexicon_decoder(words: tuple[str, ...] | None = None, beam_size: int = 50,
                    word_score: float = 0.0, lm_weight: float | None = None
                    ) -> CTCDecoder:
    """A flashlight lexicon decoder over `words` (default: the grammar's vocabulary).

    `word_score` is added per word (negative: fewer insertions); `lm_weight`, if
    given, weighs the grammar's trigram (`grammar_lm`). Built once per argument
    set; its files are written to the cache, named by their content.
    """
    lexicon = "\n".join(lexicon_lines(list(words or vocabulary()))) + "\n"
    lm = None if lm_weight is None else str(grammar_lm())
    with _silent_stderr() if lm else contextlib.nullcontext():
        return ctc_decoder(lexicon=str(_cached_text("lexicon", lexicon, ".txt")),
                           tokens=TOKENS, lm=lm, lm_weight=lm_weight or 0.0, nbest=1,
                           beam_size=beam_size, word_score=word_score,
                           blank_token=BLANK_TOKEN, sil_token=WORD_END)


def decoder_key() -> str:
    """What `lexicon_decode`'s default decoder is, for the transcript caches' keys."""
    return f"beam+trigram:{LM_WEIGHT}:{WORD_SCORE}"


def lexicon_decode(log_probs: torch.Tensor, lengths: torch.Tensor,
                   decoder: CTCDecoder | None = None) -> list[str]:
    """(B, T, V) log-probs and (B,) lengths -> B transcripts of vocabulary words,
    by `decoder` (default: the vocabulary with the grammar's trigram)."""
    decoder = decoder or lexicon_decoder(lm_weight=LM_WEIGHT, word_score=WORD_SCORE)
    emissions = log_probs.detach().to(torch.float32).contiguous().cpu()
    results = decoder(emissions, lengths.to(torch.int32).cpu())
    return [" ".join(hyps[0].words) if hyps else "" for hyps in results]

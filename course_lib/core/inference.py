"""Running a trained model: length-batched forward passes, transcripts (chapter 1).

`transcribe` and `recognize` are the recognizer every chapter scores: greedy CTC
decoding, or a decoder that knows the command vocabulary (`lexicon`): "snap"
replaces each unknown word of the greedy transcript by the nearest known one,
"beam" is the lexicon decoder's beam search with the grammar's trigram
(`core.lexicon`); `lexicon=True` is the running example's choice, `LEXICON`.
`recognize` takes any waveform a user may hand it and says what it does with each
(`recognize`'s docstring).
"""

from __future__ import annotations

from typing import Iterator

import torch

from .audio import AudioError, check_waveform
from .batching import Example, collate, length_batches
from .corpus.grammar import vocabulary
from .decode import greedy_decode, snap_to_vocabulary
from .example import EXAMPLE
from .features import FeatureConfig, log_mel
from .lexicon import decoder_key, lexicon_decode

Lexicon = bool | str  # False (greedy), "snap", "beam", or True (= LEXICON)
# What lexicon=True means: the running example's recognizer (`EXAMPLE.lexicon`), the
# lexicon beam search with the grammar's trigram (`lexicon_decode`).
LEXICON = EXAMPLE.lexicon
# What the ledger's primary WER decodes with: greedy CTC (the acoustic model's own).
PRIMARY: Lexicon = EXAMPLE.primary


@torch.no_grad()
def batched_forward(model: torch.nn.Module, examples: list[Example],
                    batch_size: int = 64
                    ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """(indices, log-probs (B, T', V), lengths (B,)) for batches of similar length.

    The model is put in eval mode; padding never changes a result (chapter 1).
    """
    model.eval()
    for idx in length_batches([e.feats.shape[0] for e in examples], batch_size):
        batch = collate([examples[i] for i in idx])
        log_probs, out_lengths = model(batch["feats"], batch["lengths"])
        yield idx, log_probs, out_lengths


def snap_all(hyps: list[str]) -> list[str]:
    """Each transcript snapped to the command vocabulary (`snap_to_vocabulary`)."""
    vocab = vocabulary()
    return [snap_to_vocabulary(h, vocab) for h in hyps]


def decoder_name(lexicon: Lexicon) -> str:
    """The decoder `lexicon` asks for: "greedy", "snap" or "beam"."""
    kind = LEXICON if lexicon is True else lexicon or "greedy"
    if kind not in ("greedy", "snap", "beam"):
        raise ValueError(f"lexicon={lexicon!r}: use False, True, 'snap' or 'beam'")
    return kind


def decoder_id(lexicon: Lexicon) -> str:
    """`decoder_name`, with the beam's settings: what a transcript cache is keyed by."""
    kind = decoder_name(lexicon)
    return decoder_key() if kind == "beam" else kind


def decode(log_probs: torch.Tensor, lengths: torch.Tensor, lexicon: Lexicon = False
           ) -> list[str]:
    """(B, T, V) log-probs, (B,) lengths -> B transcripts, decoded as `lexicon` says."""
    kind = decoder_name(lexicon)
    if kind == "beam":
        return lexicon_decode(log_probs, lengths)
    texts = greedy_decode(log_probs, lengths)
    return snap_all(texts) if kind == "snap" else texts


def transcribe(model: torch.nn.Module, examples: list[Example], batch_size: int = 64,
               lexicon: Lexicon = False) -> list[str]:
    """Transcripts of `examples`, in their order (batched by length): greedy, or
    with the vocabulary as `lexicon` says (`decode`)."""
    return transcribe_each(model, examples, (lexicon,), batch_size)[0]


def transcribe_each(model: torch.nn.Module, examples: list[Example],
                    lexicons: tuple[Lexicon, ...], batch_size: int = 64
                    ) -> list[list[str]]:
    """`transcribe` with each decoder of `lexicons`, from one forward pass (ch. 2)."""
    hyps = [[""] * len(examples) for _ in lexicons]
    for idx, log_probs, out_lengths in batched_forward(model, examples, batch_size):
        for texts, lexicon in zip(hyps, lexicons):
            for i, text in zip(idx, decode(log_probs, out_lengths, lexicon)):
                texts[i] = text
    return hyps


def frame_log_probs(model: torch.nn.Module, examples: list[Example],
                    batch_size: int = 64) -> list[torch.Tensor]:
    """Each utterance's CTC log-probabilities (frames, V), valid frames only (3.3)."""
    out: list[torch.Tensor] = [torch.empty(0)] * len(examples)
    for idx, log_probs, lengths in batched_forward(model, examples, batch_size):
        for j, i in enumerate(idx):
            out[i] = log_probs[j, : lengths[j]]
    return out


MIN_SECONDS = 0.1  # shorter audio cannot hold a word (and is shorter than an FFT)
SILENCE_PEAK = 1e-4  # -80 dBFS: below any speech, above rounding noise


@torch.no_grad()
def recognize(model: torch.nn.Module, wav: torch.Tensor,
              feat_cfg: FeatureConfig = FeatureConfig(), lexicon: Lexicon = False,
              sample_rate: int | None = None) -> str:
    """Waveform (samples,) -> transcript: features, model, decoding (greedy, or
    with the vocabulary as `lexicon` says: `decode`).

    What it does with unusual input (chapter 1): audio at another `sample_rate` is
    resampled; clipped or very long audio is recognized like any other; silence (a
    peak below -80 dBFS) gives "" without running the model. A waveform that is not
    1-D (average the channels first, as `load_audio` does), empty, shorter than
    0.1 s, or with NaN/inf samples raises `AudioError`.
    """
    wav = check_waveform(torch.as_tensor(wav), sample_rate or feat_cfg.sample_rate,
                         feat_cfg.sample_rate)
    if wav.numel() < MIN_SECONDS * feat_cfg.sample_rate:
        raise AudioError(f"<waveform>: {wav.numel()} samples "
                         f"({1000 * wav.numel() / feat_cfg.sample_rate:.1f} ms) is too "
                         f"short to recognize: at least {MIN_SECONDS} s is needed")
    if float(wav.abs().max()) < SILENCE_PEAK:
        return ""
    feats = log_mel(wav, feat_cfg)[None]  # (1, frames, n_mels)
    log_probs, lengths = model(feats, torch.tensor([feats.shape[1]]))
    return decode(log_probs, lengths, lexicon)[0]

"""Featurized utterances in memory, padded batches, batches of similar length (ch. 1).

Every training and evaluation loop of the book reads its data through these: an
`Example` is one utterance's log-mel features and character targets, `collate`
pads a list of them into a batch, `length_batches` groups similar lengths (less
padding, faster), and `spec_augment` masks a training utterance.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .corpus.build import Corpus
from .features import FeatureConfig, log_mel
from .text import encode


@dataclass
class Example:
    """One featurized utterance."""

    id: str
    text: str
    feats: torch.Tensor  # (frames, n_mels)
    targets: list[int]


_FEATURE_CACHE: dict[tuple, list[Example]] = {}


def featurize(corpus: Corpus, split: str, feat_cfg: FeatureConfig = FeatureConfig(),
              limit: int | None = None, progress: bool = True) -> list[Example]:
    """Load and featurize a split (kept in memory for the rest of the session)."""
    key = (str(corpus.root), split, feat_cfg, limit)
    if key not in _FEATURE_CACHE:
        utts = corpus.split(split)
        if not utts:
            raise ValueError(f"split {split!r} is not built; call "
                             f"build_corpus(cfg, splits=({split!r},)) first")
        utts = utts[:limit] if limit else utts
        _FEATURE_CACHE[key] = [
            Example(u.id, u.text, log_mel(corpus.audio(u), feat_cfg), encode(u.text))
            for u in tqdm(utts, desc=f"features ({split})", disable=not progress)]
    return _FEATURE_CACHE[key]


def collate(examples: list[Example]) -> dict:
    """Pad a list of examples into a batch: feats (B, T, F), lengths (B,), targets."""
    lengths = torch.tensor([e.feats.shape[0] for e in examples])
    feats = torch.zeros(len(examples), int(lengths.max()), examples[0].feats.shape[1])
    for i, e in enumerate(examples):
        feats[i, : e.feats.shape[0]] = e.feats
    targets = torch.tensor([t for e in examples for t in e.targets])
    target_lengths = torch.tensor([len(e.targets) for e in examples])
    return dict(feats=feats, lengths=lengths, targets=targets,
                target_lengths=target_lengths, texts=[e.text for e in examples],
                ids=[e.id for e in examples])


def length_batches(lengths: list[int], batch_size: int, shuffle: bool = False,
                   seed: int = 0) -> list[list[int]]:
    """Index batches of similar length (less padding, faster); shuffled if asked."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        random.Random(seed).shuffle(batches)
    return batches


def spec_augment(feats: torch.Tensor, cfg, gen: torch.Generator) -> torch.Tensor:
    """SpecAugment on one utterance (frames, n_mels): two frequency, two time masks.

    `cfg` has `freq_mask` and `time_mask`, the largest widths (a `TrainConfig` or a
    `FinetuneConfig`).
    """
    x = feats.t().clone()  # (n_mels, frames), torchaudio's layout
    fill = x.mean()
    for size, axis in ((cfg.freq_mask, 0), (cfg.time_mask, 1)):
        for _ in range(2):
            width = int(torch.randint(0, size + 1, (1,), generator=gen))
            width = min(width, x.shape[axis] // 5 if axis == 1 else width)
            start = int(torch.randint(0, max(x.shape[axis] - width, 1), (1,),
                                      generator=gen))
            if axis == 0:
                x[start:start + width, :] = fill
            else:
                x[:, start:start + width] = fill
    return x.t()

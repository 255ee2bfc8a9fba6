"""The settings of a training run: from scratch (`TrainConfig`) or a fine-tune (ch. 1).

Plain values, the same whatever the running example: `core.example` says which
recipe each example's baseline and chapters use, and `core.training` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; `max_minutes` caps the wall-clock time."""

    epochs: int = 8
    batch_size: int = 32
    lr: float = 3e-3
    warmup: float = 0.05  # fraction of the steps spent warming up the learning rate
    weight_decay: float = 1e-2
    grad_clip: float = 5.0
    seed: int = 0
    sortagrad: bool = True
    specaugment: bool = True
    freq_mask: int = 10  # SpecAugment: up to 10 of 80 mel bands, twice
    time_mask: int = 20  # and up to 20 frames (200 ms), twice
    max_minutes: float | None = None
    threads: int = 2


@dataclass(frozen=True)
class FinetuneConfig:
    """A short training run that starts from a trained model (chapters 3.1-3.4)."""

    steps: int = 600
    batch_size: int = 32
    # peak; cosine decay to zero over `steps`. The recipe that passes the dense
    # control (`finetune_control`) on the running example v2: lr 3e-4, no SpecAugment.
    lr: float = 3e-4
    warmup: float = 0.0  # fraction of the steps spent warming up
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    seed: int = 0
    specaugment: bool = False
    freq_mask: int = 10
    time_mask: int = 20
    threads: int = 2

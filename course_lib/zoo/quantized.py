"""Chapter 3.2's trained results: QAT and k-means baselines, cached by configuration.

Each starts from a copy of the baseline, prepares it (fake quantization of the
weights, or shared weights), fine-tunes it on the first `TRAIN_LIMIT` training
utterances and saves it in chapter 3.2's quantized or codebook format: a re-run
of the chapter loads them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import torch

from ..core.evaluation import dev_wer, train_examples
from ..core.model import remove_parametrizations
from ..core.modelfile import read_metadata
from ..core.training import FinetuneConfig, finetune
from ..core.utils import config_hash, sha256_file
from ..techniques.quantization.quant import (QuantSpec, add_weight_fake_quant,
                                                load_codebook, load_quantized,
                                                save_codebook, save_quantized,
                                                share_weights)
from . import cached_result
from .baseline import baseline_path, load_baseline

TRAIN_LIMIT = 2000  # chapter 3.2 calibrates and fine-tunes on the first 2,000

Result = tuple[torch.nn.Module, Path, float, list[dict]]


def _finetuned(kind: str, filename: str, config: dict,
               prepare: Callable[[torch.nn.Module], object],
               save: Callable[[torch.nn.Module, Path, str, float, list[dict]], object],
               load: Callable[[Path], torch.nn.Module], desc: str, progress: bool
               ) -> Result:
    """A prepared baseline fine-tuned, cached by the baseline's sha256 and `config`.

    Making it: `prepare` a copy of the baseline, score it on dev, fine-tune it (peak
    `lr`, cosine, on `threads` threads) on the first `train_limit` training
    utterances, then `save(model, path, key, dev_wer_before, history)`. Returns the
    model `load` gives, the file, the dev WER before fine-tuning and the history.
    """
    key = config_hash(dict(baseline=sha256_file(baseline_path(False)), kind=kind,
                           **config))

    def make(path: Path) -> None:
        model = copy.deepcopy(load_baseline(progress))
        prepare(model)
        before = dev_wer(model)
        history = finetune(
            model, train_examples(config["train_limit"], progress=progress),
            FinetuneConfig(steps=config["steps"], lr=config["lr"],
                           threads=config["threads"]),
            evaluate=lambda step: dict(dev_wer=dev_wer(model)),
            eval_every=config["eval_every"], progress=progress, desc=desc)
        save(model, path, key, before, history)

    def loaded(path: Path) -> Result:
        meta = read_metadata(path, plain=("format", "sha256"))
        return load(path), path, meta["dev_wer_before"], meta["history"]

    return cached_result(kind, key, filename, make, loaded)


def qat_baseline(bits: int, steps: int, lr: float, train_limit: int = TRAIN_LIMIT,
                 eval_every: int = 25, threads: int = 2, progress: bool = True
                 ) -> Result:
    """The baseline after `steps` of `bits`-bit weight QAT (chapter 3.2).

    Weights symmetric per-channel, fake-quantized with a straight-through gradient
    while fine-tuning, then saved by `save_quantized`. Cached by the baseline's
    sha256 and the configuration. Returns the loaded model, its file, the dev WER
    before the first step (plain PTQ) and the dev WER every `eval_every` steps.
    """
    spec = QuantSpec(bits)

    def save(model, path, key, before, history):
        remove_parametrizations(model)  # bake in the quantized weights
        save_quantized(model, path, spec, qat_steps=steps, qat_lr=lr,
                       dev_wer_before=before, history=history,
                       train_limit=train_limit, result_key=key)

    config = dict(bits=bits, steps=steps, lr=lr, train_limit=train_limit,
                  eval_every=eval_every, threads=threads)
    return _finetuned("qat", "model.q", config,
                      lambda m: add_weight_fake_quant(m, spec), save, load_quantized,
                      f"QAT {bits}-bit", progress)


def shared_baseline(k: int, steps: int, lr: float = 1e-4,
                    train_limit: int = TRAIN_LIMIT, eval_every: int = 50,
                    threads: int = 2, progress: bool = True) -> Result:
    """The baseline with `k` shared values per tensor, centroids fine-tuned (3.2).

    k-means on each weight tensor (`share_weights`), then `steps` of fine-tuning
    the centroids (the indices stay fixed), saved by `save_codebook`. Cached by the
    baseline's sha256 and the configuration. Returns the loaded model, its file, the
    dev WER before fine-tuning and the dev WER every `eval_every` steps.
    """
    def save(model, path, key, before, history):
        save_codebook(model, path, k=k, steps=steps, dev_wer_before=before,
                      history=history, train_limit=train_limit, result_key=key)

    config = dict(k=k, steps=steps, lr=lr, train_limit=train_limit,
                  eval_every=eval_every, threads=threads)
    return _finetuned("kmeans", "model.cb", config, lambda m: share_weights(m, k),
                      save, load_codebook, "k-means fine-tune", progress)

"""Chapter 3.4's neuron-pruned baseline: units removed, fine-tuned, cached, shipped."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from ..core.evaluation import dev_wer, train_examples
from ..core.model import CTCModel
from ..core.modelfile import save_model
from ..core.utils import config_hash, sha256_file
from ..techniques.neurons.units import NeuronPruneConfig, prune_units_finetune
from . import cached_result, load_with_history
from .baseline import baseline_path, load_baseline


def result_key(cfg: NeuronPruneConfig, train_limit: int | None, eval_every: int,
               baseline_file: Path) -> str:
    """Hash of everything a neuron-pruned model depends on (baseline file included)."""
    return config_hash(dict(baseline=sha256_file(baseline_file), prune=asdict(cfg),
                            train_limit=train_limit, eval_every=eval_every))


def neuron_pruned_baseline(cfg: NeuronPruneConfig = NeuronPruneConfig(),
                           train_limit: int | None = None, eval_every: int = 50,
                           progress: bool = True, allow_shipped: bool = True
                           ) -> tuple[CTCModel, Path, list[dict]]:
    """The baseline shrunk by `cfg`, saved as a (smaller, dense) model file (3.4).

    Cached by the baseline's sha256 and the configuration. With the default
    configuration on the shipped baseline, the package carries the result
    (`course_lib/artifacts/neurons.safetensors`, made by `python -m course_lib
    prune-neurons --ship`, about 12 minutes on 2 cores); it is used only when its
    recorded key equals this call's. The history holds the parameter count and
    the dev WER along the way.
    """
    base = baseline_path(progress)
    key = result_key(cfg, train_limit, eval_every, base)

    def make(path: Path) -> None:
        examples = train_examples(train_limit, progress=progress)
        t0 = time.perf_counter()
        model, history = prune_units_finetune(
            load_baseline(progress), examples, cfg,
            evaluate=lambda m: dict(dev_wer=dev_wer(m)), eval_every=eval_every,
            progress=progress)
        save_model(model, path, prune_config=asdict(cfg), history=history,
                   seconds=round(time.perf_counter() - t0, 1), result_key=key,
                   baseline_sha256=sha256_file(base), train_limit=train_limit)

    return cached_result("neurons", key, "model.safetensors", make, load_with_history,
                         shipped="neurons" if allow_shipped else None)

"""Latency of the compressed models side by side, in one run (chapter 4's benchmark).

Speed is never asserted in a test: it depends on the machine. It is measured here,
every model on the same utterances, one thread, in rounds that visit every model
in turn (so that a slow phase of the machine hits all of them), and reported as
ratios to the baseline measured in the same run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..core.evaluation import latency_waves
from ..core.inference import PRIMARY, recognize
from ..core.metrics import Latency, side_by_side
from ..techniques.distillation.students import DistillConfig
from ..techniques.export.onnx import OnnxModel, export_onnx
from ..techniques.quantization.quant import int8_engine
from ..zoo.baseline import load_baseline
from ..zoo.deepcomp import deep_compressed_baseline, deep_compressed_student
from ..zoo.lowrank import lowrank_baseline
from ..zoo.neurons import neuron_pruned_baseline
from ..zoo.students import distilled_student


def table(latency: dict[str, Latency], reference: str = "baseline") -> str:
    """A text table: ms per utterance, RTF and the speed ratio to `reference`."""
    ref = latency[reference].median_ms
    width = max(len(n) for n in latency)
    lines = [f"{'model':{width}s} {'ms/utt':>8s} {'RTF':>8s} {'speed':>7s}"]
    for name, lat in latency.items():
        lines.append(f"{name:{width}s} {lat.median_ms:8.2f} {lat.rtf:8.4f} "
                     f"{ref / lat.median_ms:6.2f}x")
    return "\n".join(lines)


def package_models(progress: bool = False) -> dict[str, torch.nn.Module]:
    """Every model the package can give without training: the baseline and the
    shipped results of chapters 3.3, 3.4, 4 (both routes) and 5, each also on int8
    kernels."""
    models = {"baseline": load_baseline(progress)}
    models["student (sequence KD)"] = distilled_student(DistillConfig("sequence"),
                                                        progress=progress)[0]
    models["neuron-pruned"] = neuron_pruned_baseline(progress=progress)[0]
    models["low-rank"] = lowrank_baseline(progress=progress)[0]
    models["deep-compressed (decoded)"] = deep_compressed_baseline(progress=progress)[0]
    models["student route (decoded)"] = deep_compressed_student(progress=progress)[0]
    for name in list(models):
        models[f"{name} + int8"] = int8_engine(models[name])
    return models


def run(n: int = 24, rounds: int = 3, onnx: bool = True) -> str:
    """The benchmark: every package model (and ONNX Runtime runs), side by side."""
    models: dict = package_models()
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        if onnx:
            for name in ("baseline", "student route (decoded)"):
                models[f"{name}, ONNX Runtime"] = OnnxModel(
                    export_onnx(models[name], Path(tmp) / f"{len(models)}.onnx"))
        # what the ledger times: snapping in v1, greedy in v2 (`example`)
        recognizers = {name: (lambda w, m=m: recognize(m, w, lexicon=PRIMARY))
                       for name, m in models.items()}
        lat = side_by_side(recognizers, latency_waves(n), rounds)
    return (f"{n} test utterances, {rounds} rounds, one thread, "
            f"torch {torch.__version__}\n" + table(lat))

"""Latency of the compressed models side by side, in one run (chapter 4's benchmark).

Speed is never asserted in a test: it depends on the machine. It is measured here,
every model on the same utterances, one thread, in rounds that visit every model
in turn (so that a slow phase of the machine hits all of them), and reported as
ratios to the baseline measured in the same run.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from .metrics import Latency, one_thread

Recognizer = Callable[[torch.Tensor], object]  # waveform -> transcript


def side_by_side(recognizers: dict[str, Recognizer], waves: list[torch.Tensor],
                 rounds: int = 3, sample_rate: int = 16000) -> dict[str, Latency]:
    """Median ms per utterance and RTF of each recognizer, timed in interleaved rounds."""
    times: dict[str, list[float]] = {name: [] for name in recognizers}
    rtfs: dict[str, list[float]] = {name: [] for name in recognizers}
    with one_thread(), torch.inference_mode():
        for fn in recognizers.values():  # warm-up: first calls set up kernels
            fn(waves[0])
        for _ in range(rounds):
            for name, fn in recognizers.items():
                for w in waves:
                    t0 = time.perf_counter()
                    fn(w)
                    dt = time.perf_counter() - t0
                    times[name].append(dt)
                    rtfs[name].append(dt / (w.numel() / sample_rate))
    return {name: Latency(1000 * statistics.median(times[name]),
                          statistics.median(rtfs[name]), rounds) for name in recognizers}


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
    shipped results of chapters 3.3, 3.4, 4 and 5, each also on int8 kernels."""
    from .baseline import load_baseline
    from .deepcomp import deep_compressed_baseline
    from .distill import DistillConfig, distilled_student
    from .lowrank import lowrank_baseline
    from .neurons import neuron_pruned_baseline
    from .quantize import int8_engine

    models = {"baseline": load_baseline(progress)}
    models["student (sequence KD)"] = distilled_student(DistillConfig("sequence"),
                                                        progress=progress)[0]
    models["neuron-pruned"] = neuron_pruned_baseline(progress=progress)[0]
    models["low-rank"] = lowrank_baseline(progress=progress)[0]
    models["deep-compressed (decoded)"] = deep_compressed_baseline(progress=progress)[0]
    for name in list(models):
        models[f"{name} + int8"] = int8_engine(models[name])
    return models


def run(n: int = 24, rounds: int = 3, onnx: bool = True) -> str:
    """The benchmark: every package model (and ONNX Runtime runs), side by side."""
    import tempfile
    from pathlib import Path

    from .baseline import latency_waves
    from .decode import snap_to_vocabulary
    from .grammar import vocabulary
    from .train import recognize

    vocab = vocabulary()
    models: dict = package_models()
    if onnx:
        from .export import OnnxModel, export_onnx

        tmp = Path(tempfile.mkdtemp(prefix="bench-onnx-"))
        for name in ("baseline", "deep-compressed (decoded)"):
            models[f"{name}, ONNX Runtime"] = OnnxModel(
                export_onnx(models[name], tmp / f"{len(models)}.onnx"))
    recognizers = {name: (lambda w, m=m: snap_to_vocabulary(recognize(m, w), vocab))
                   for name, m in models.items()}
    lat = side_by_side(recognizers, latency_waves(n), rounds)
    return (f"{n} test utterances, {rounds} rounds, one thread, "
            f"torch {torch.__version__}\n" + table(lat))

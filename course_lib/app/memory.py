"""Peak memory of loading and running a model, measured in a fresh process (ch. 3.5).

Chapter 3.5's claim, that loading a sharded model part by part holds less memory
at once than loading it whole, is measured here on the operating system's own
counter (the resident set's high-water mark, Linux), in a fresh Python process
per measurement, so that nothing the notebook already holds is counted or reused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import asdict, replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..core.model import CTCModel, ModelConfig
from ..core.modelfile import build_model, load_model, read_metadata, save_model
from ..techniques.splitting.shards import (OnDemand, load_sharded, read_index,
                                           write_shards)


def _status_kib(field: str) -> int | None:
    """A field of /proc/self/status in KiB (Linux), or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_memory_supported() -> bool:
    """Whether `peak_memory` can measure here: it needs Linux's /proc (chapter 3.5)."""
    return Path("/proc/self/status").exists() and Path("/proc/self/clear_refs").exists()


def child_peak(mode: str, folder: str, inputs: str) -> dict:
    """In a fresh process: the rise of peak RSS while loading and running once."""
    torch.set_num_threads(1)
    batch = load_file(inputs)
    feats, lengths = batch["feats"], batch["lengths"]

    about = read_metadata(folder) if mode == "load_model" else read_index(folder)
    cfg = ModelConfig(**about["model_config"])
    with torch.no_grad(), tempfile.TemporaryDirectory() as tiny:
        # One-time costs that are not the model's: PyTorch sets up its kernels for
        # these shapes (random weights, then freed), and every loading path imports
        # its modules (on a tiny model).
        build_model(asdict(cfg), about.get("low_rank")).eval()(feats, lengths)
        small = CTCModel(replace(cfg, conv_channels=8, rnn_hidden=4))
        write_shards(small, tiny)
        save_model(small, Path(tiny) / "model.safetensors")
        load_sharded(tiny)(feats, lengths)
        OnDemand(tiny)(feats, lengths)
        load_model(Path(tiny) / "model.safetensors")(feats, lengths)
    clear = Path("/proc/self/clear_refs")
    clear.write_text("5")  # reset the high-water mark to the current RSS (Linux)
    rss0 = _status_kib("VmHWM")  # = the RSS at the reset: every rise is from here

    def high_water() -> int:
        return _status_kib("VmHWM") or 0

    highest, stage_peaks = 0, {}
    tracemalloc.start()  # Python's own allocations only: tensors are not among them
    t0 = time.perf_counter()
    with torch.no_grad():
        if mode == "load_model":  # the usual way: random init, then a copy
            out = load_model(folder)(feats, lengths)[0]
        elif mode == "full":
            out = load_sharded(folder)(feats, lengths)[0]
        elif mode == "on-demand":  # stage by stage, with each stage's own peak
            runner, (out, n) = OnDemand(folder), (feats, lengths)
            for stage in runner.stages:
                highest = max(highest, high_water())
                clear.write_text("5")
                out, n = runner.run_stages([stage], out, n)
                stage_peaks[stage] = 1024 * (high_water() - rss0)
        else:
            raise ValueError(f"mode must be 'load_model', 'full' or 'on-demand', got "
                             f"{mode!r}")
    seconds = time.perf_counter() - t0
    highest = max(highest, high_water())
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return dict(mode=mode, peak_rise_bytes=1024 * (highest - rss0),
                rss_before_bytes=1024 * rss0, stage_peak_rise_bytes=stage_peaks,
                tracemalloc_peak_bytes=traced, seconds=seconds,
                checksum=float(out.double().sum()))


def peak_memory(folder: str | os.PathLike, feats: torch.Tensor, lengths: torch.Tensor,
                mode: str) -> dict:
    """Peak memory of loading and running a model once, measured in a fresh Python
    process (chapter 3.5). `mode`: "full" (`load_sharded`) or "on-demand"
    (`OnDemand`) on a shard folder, or "load_model" on a single model file.

    A fresh process, so that nothing loaded before (by the notebook, by an earlier
    run) is counted or reused; the result is the rise of the resident set's peak
    over the process's size just before loading, after PyTorch has warmed up. Linux
    only (`peak_memory_supported`): it resets the kernel's high-water mark, whose
    counters are batched, so the result is accurate to a few hundred KB.
    """
    if not peak_memory_supported():
        raise RuntimeError("peak_memory needs Linux's /proc/self/status and "
                           "/proc/self/clear_refs, which this system does not have")
    with tempfile.TemporaryDirectory() as work:
        inputs = os.path.join(work, "inputs.safetensors")
        save_file({"feats": feats.contiguous(), "lengths": lengths.contiguous()},
                  inputs)
        code = ("import json, sys; from course_lib.app.memory import child_peak; "
                "print(json.dumps(child_peak(*sys.argv[1:4])))")
        # A fixed malloc threshold: glibc then maps every large tensor on its own and
        # unmaps it when freed, so the freed warm-up model is not reused (Linux).
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
        run = subprocess.run([sys.executable, "-c", code, mode, str(folder), inputs],
                             capture_output=True, text=True, timeout=300, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"peak-memory process failed: {run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])

"""Deep Compression (Han, Mao and Dally, 2016): prune, share, entropy-code (chapter 4).

The three stages compose because each removes a different redundancy:
1. pruning (chapter 3.1) leaves a few weights per matrix, stored by position as
   relative indices: each kept weight's gap from the previous one, in `gap_bits`
   bits, with filler entries for longer gaps;
2. weight sharing (chapter 3.2) replaces the kept values of each matrix by k
   centroids (k-means on the non-zero weights only), so each entry stores a
   log2(k + 1)-bit index (the extra symbol marks a filler); the centroids are then
   fine-tuned, the mask and the assignments fixed;
3. Huffman coding (chapter 5) codes the gap stream and the index stream with
   codes fitted to their frequencies.
Biases and normalization parameters are stored as they are (float16 or float32).
A matrix with no zero (a dense model whose weights were shared, chapter 4's
student route) stores no positions at all, only its codebook indices.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .quantize import _Shared, kmeans_1d, remove_weight_fake_quant
from .train import FinetuneConfig

FORMAT = "course_lib.deepcomp/1"
PLAIN = ("format", "sha256")  # metadata stored as text; the rest is JSON


class _SparseShared(_Shared):
    """Parametrization W = centroids[indices] * mask (chapter 3.2's, with a mask)."""

    def __init__(self, centroids: torch.Tensor, indices: torch.Tensor,
                 mask: torch.Tensor) -> None:
        super().__init__(centroids, indices)
        self.register_buffer("mask", mask)

    def forward(self, _w: torch.Tensor) -> torch.Tensor:
        """The shared weights; pruned entries stay exactly 0."""
        return super().forward(_w) * self.mask


def share_pruned_weights(model: nn.Module, k: int = 16) -> dict[str, int]:
    """Cluster the non-zero weights of each 2-D+ matrix into k shared values, in place.

    Returns {name: kept weights}. Fine-tune with `train.finetune` to train the
    centroids (the gradient of a centroid is the sum over the weights that share
    it), then `bake` to make the weights plain tensors again.
    """
    from torch.nn.utils import parametrize

    out = {}
    for name, p in list(model.named_parameters()):
        if p.ndim >= 2:
            mask = p.detach() != 0
            kept = int(mask.sum())
            if kept == 0:  # a matrix pruned away entirely: nothing to share
                continue
            centroids, assign = kmeans_1d(p.detach()[mask], min(k, kept))
            idx = torch.zeros(p.shape, dtype=torch.long)
            idx[mask] = assign
            module_name, _, attr = name.rpartition(".")
            parametrize.register_parametrization(
                model.get_submodule(module_name), attr,
                _SparseShared(centroids, idx, mask), unsafe=True)
            out[name] = int(mask.sum())
    return out


def bake(model: nn.Module) -> nn.Module:
    """Replace the parametrizations by the weights they compute (in place).

    Bake the model itself, not a `copy.deepcopy` of it: the copy shares PyTorch's
    generated parametrized classes, and removing them from one breaks the other.
    """
    remove_weight_fake_quant(model)  # removes any parametrization, not only QAT's
    return model


def _streams(model: nn.Module, gap_bits: int
             ) -> tuple[dict, dict[str, torch.Tensor], np.ndarray, np.ndarray]:
    """Layout, codebooks, and the gap and index streams of every 2-D+ weight."""
    from .sparse_io import relative_entries

    layout, books, gaps, symbols = {}, {}, [np.zeros(0, np.int64)], []
    for name, w in model.state_dict().items():
        if w.ndim < 2:
            continue
        flat = w.detach().float().reshape(-1).numpy()
        pos = np.flatnonzero(flat)
        book, idx = np.unique(flat[pos], return_inverse=True)  # the shared values
        books[f"{name}/codebook"] = torch.from_numpy(book.astype(np.float32))
        if len(pos) == flat.size:  # no zero: every position is implied
            layout[name] = dict(shape=list(w.shape), entries=len(pos), k=len(book),
                                dense=True)
            symbols.append(idx.astype(np.int64))
            continue
        codes, last = relative_entries(pos, gap_bits)
        sym = np.full(len(codes), len(book), dtype=np.int64)  # fillers: the last symbol
        sym[last] = idx
        layout[name] = dict(shape=list(w.shape), entries=len(codes), k=len(book))
        gaps.append(codes)
        symbols.append(sym)
    return layout, books, np.concatenate(gaps), np.concatenate(symbols)


def save_deep(model: nn.Module, path: str | os.PathLike, gap_bits: int = 5,
              huffman: bool = True, dense_dtype: str = "float16",
              **meta: object) -> Path:
    """Write a pruned, weight-shared model: relative indices + codebook indices.

    With `huffman`, both streams are Huffman-coded; without, they are packed at a
    fixed width (`gap_bits`, and log2(max k + 1) bits). Safetensors container with
    a payload sha256, written atomically.
    """
    from .entropy import encode, stream_tensors
    from .models import config_header
    from .sparse_io import pack_bits, write_container

    if any(".parametrizations." in k for k in model.state_dict()):
        raise ValueError("the model still has parametrizations: call `bake` first")
    if dense_dtype not in ("float16", "float32"):
        raise ValueError(f"dense_dtype must be float16 or float32, got {dense_dtype!r}")
    layout, tensors, gaps, symbols = _streams(model, gap_bits)
    sym_bits = max(1, math.ceil(math.log2(max(v["k"] for v in layout.values()) + 1)))
    if sym_bits > 8:
        raise ValueError(f"{sym_bits}-bit indices: at most 255 shared values per "
                         "matrix (share the weights first: `share_pruned_weights`)")
    for name, w in model.state_dict().items():
        if w.ndim < 2:
            tensors[f"{name}/dense"] = w.detach().to(getattr(torch, dense_dtype)
                                                     ).contiguous()
            layout[name] = dict(shape=list(w.shape))
    if huffman:
        if len(gaps):  # none when every matrix is dense
            tensors.update(stream_tensors(encode(gaps), "gaps"))
        tensors.update(stream_tensors(encode(symbols), "symbols"))
    else:
        tensors["gaps/packed"] = torch.from_numpy(pack_bits(gaps, gap_bits))
        tensors["symbols/packed"] = torch.from_numpy(pack_bits(symbols, sym_bits))
    header = dict(format=FORMAT, layout=json.dumps(layout), gap_bits=str(gap_bits),
                  sym_bits=str(sym_bits), huffman=json.dumps(huffman),
                  **config_header(model))
    return write_container(path, tensors, header, **meta)


def load_deep(path: str | os.PathLike) -> nn.Module:
    """Load `save_deep`'s file as a plain CTCModel (refuses a corrupted file)."""
    from .entropy import decode, tensors_stream
    from .models import build_model
    from .sparse_io import read_container, unpack_bits

    tensors, meta = read_container(path, FORMAT)
    layout = json.loads(meta["layout"])
    model = build_model(json.loads(meta["model_config"]),
                        json.loads(meta.get("low_rank", "null")))
    gap_bits, sym_bits = int(meta["gap_bits"]), int(meta["sym_bits"])
    n = sum(v.get("entries", 0) for v in layout.values())
    n_gaps = sum(v.get("entries", 0) for v in layout.values() if not v.get("dense"))
    if json.loads(meta["huffman"]):
        gaps = (decode(tensors_stream(tensors, "gaps")) if n_gaps
                else np.zeros(0, np.int64))
        symbols = decode(tensors_stream(tensors, "symbols"))
    else:
        gaps = unpack_bits(tensors["gaps/packed"].numpy(), gap_bits, n_gaps
                           ).astype(np.int64)
        symbols = unpack_bits(tensors["symbols/packed"].numpy(), sym_bits, n
                              ).astype(np.int64)
    if len(gaps) != n_gaps or len(symbols) != n:
        raise ValueError(f"{path}: {len(gaps)} gaps and {len(symbols)} indices, the "
                         f"layout needs {n_gaps} and {n}")
    state, start, gap_start = {}, 0, 0
    for name, info in layout.items():
        shape = tuple(info["shape"])
        if "entries" not in info:
            state[name] = tensors[f"{name}/dense"].float().view(shape)
            continue
        end = start + info["entries"]
        s = symbols[start:end]
        start = end
        if info.get("dense"):  # every position, in order
            if int(np.prod(shape)) != len(s) or (len(s) and s.max() >= info["k"]):
                raise ValueError(f"{path}: the indices of {name} do not fit its "
                                 "shape and codebook")
            book = tensors[f"{name}/codebook"].numpy()
            state[name] = torch.from_numpy(book[s].astype(np.float32)).view(shape)
            continue
        g = gaps[gap_start:gap_start + info["entries"]]
        gap_start += info["entries"]
        pos = np.cumsum(g + 1) - 1
        real = s < info["k"]  # fillers carry the symbol k
        flat = np.zeros(int(np.prod(shape)), dtype=np.float32)
        if len(pos) and pos[-1] >= flat.size:
            raise ValueError(f"{path}: relative indices of {name} run past its end")
        flat[pos[real]] = tensors[f"{name}/codebook"].numpy()[s[real]]
        state[name] = torch.from_numpy(flat).view(shape)
    model.load_state_dict(state, strict=True)
    return model.eval()


# ----------------------------------------------------------------------------------
# The chapter's pipeline on the baseline, cached and shipped.

def _default_share() -> FinetuneConfig:
    return FinetuneConfig(steps=400, lr=3e-4, seed=1)


@dataclass(frozen=True)
class DeepConfig:
    """Start from the long-budget pruned baseline (`pruning.LONG`, 90 %), share k
    values per matrix and fine-tune the centroids with the dense model as teacher,
    then store (chapter 4)."""

    k: int = 16
    share: FinetuneConfig = field(default_factory=_default_share)
    alpha: float = 0.5  # KD weight while fine-tuning the centroids
    temperature: float = 2.0
    gap_bits: int = 8  # with Huffman coding, long gaps beat fillers (exercise 4.1)
    dense_dtype: str = "float16"


SHIPPED = Path(__file__).parent / "artifacts" / "deepcomp.dc"


def result_key(cfg: DeepConfig, baseline_file: Path) -> str:
    """Hash of everything the compressed model depends on (baseline file included)."""
    from .pruning import LONG
    from .utils import config_hash, sha256_file

    return config_hash(dict(baseline=sha256_file(baseline_file), deep=asdict(cfg),
                            prune=asdict(LONG)))


def deep_compressed_baseline(cfg: DeepConfig = DeepConfig(), eval_every: int = 250,
                             progress: bool = True, allow_shipped: bool = True
                             ) -> tuple[nn.Module, Path, list[dict]]:
    """The baseline through the whole pipeline, as a Huffman-coded `save_deep` file.

    Cached by the baseline's sha256 and the configuration; the package carries the
    default result (`python -m course_lib deep-compress --ship`: the pruning run,
    about an hour on 2 cores, then the sharing), used only when its
    recorded key equals this call's. History: sparsity and dev WER during pruning,
    then dev WER while the centroids are fine-tuned (entries with "stage": "share").
    """
    from .baseline import baseline_path
    from .models import cached_or_shipped
    from .pruning import long_pruned_baseline
    from .utils import cache_dir

    base = baseline_path(progress)
    key = result_key(cfg, base)
    path = cache_dir() / "models" / f"deepcomp-{key}" / "model.dc"
    if cached_or_shipped(path, SHIPPED if allow_shipped else None, key, PLAIN):
        return load_deep(path), path, _meta(path)["history"]
    model, _, history = long_pruned_baseline(progress)  # 3.1's method, longer
    return _share_and_save(model, cfg, path, history, eval_every, progress,
                           result_key=key)


STUDENT_SHIPPED = Path(__file__).parent / "artifacts" / "student-deep.dc"
# The student route fine-tunes its centroids on plain CTC (alpha = 0): the
# sequence-level student places its characters a frame earlier than the teacher
# (chapter 3.3), and a frame-level KL term would pull its alignment apart.
STUDENT_DEEP = DeepConfig(alpha=0.0, share=FinetuneConfig(steps=400, lr=1e-3, seed=1))


def student_key(cfg: DeepConfig, baseline_file: Path, student_file: Path) -> str:
    """Hash of everything the student route depends on (both model files included)."""
    from .utils import config_hash, sha256_file

    return config_hash(dict(baseline=sha256_file(baseline_file), deep=asdict(cfg),
                            student=sha256_file(student_file)))


def deep_compressed_student(cfg: DeepConfig = STUDENT_DEEP, eval_every: int = 250,
                            progress: bool = True, allow_shipped: bool = True
                            ) -> tuple[nn.Module, Path, list[dict]]:
    """Chapter 4's student route: chapter 3.3's sequence-level student
    (`distill.distilled_student`), its weights shared (k values per matrix, centroids
    fine-tuned) and Huffman-coded, unpruned, so the file stores no positions.

    Cached and shipped like `deep_compressed_baseline` (`python -m course_lib
    deep-compress --ship` makes both). History: dev WER while the centroids train.
    """
    from .baseline import baseline_path
    from .distill import DistillConfig, distilled_student
    from .models import cached_or_shipped
    from .utils import cache_dir, sha256_file

    base = baseline_path(progress)
    student, student_file, _ = distilled_student(DistillConfig("sequence"),
                                                 progress=progress)
    key = student_key(cfg, base, student_file)
    path = cache_dir() / "models" / f"student-deep-{key}" / "model.dc"
    if cached_or_shipped(path, STUDENT_SHIPPED if allow_shipped else None, key, PLAIN):
        return load_deep(path), path, _meta(path)["history"]
    return _share_and_save(student, cfg, path, [], eval_every, progress,
                           result_key=key, student_sha256=sha256_file(student_file))


def _share_and_save(model: nn.Module, cfg: DeepConfig, path: Path, history: list[dict],
                    eval_every: int, progress: bool, **meta: object
                    ) -> tuple[nn.Module, Path, list[dict]]:
    """Share k values per matrix, fine-tune the centroids (CTC mixed with KL to the
    baseline, weight `cfg.alpha`), bake, and save Huffman-coded; the loaded model,
    its path, the history."""
    from .baseline import baseline_path, dev_wer, load_baseline, train_examples
    from .distill import DistillLoss
    from .train import finetune
    from .utils import sha256_file

    teacher = load_baseline(progress)
    examples = train_examples(progress=progress)
    t0 = time.perf_counter()
    share_pruned_weights(model, cfg.k)
    shared = [dict(step=0, stage="share", dev_wer=dev_wer(model))]
    shared += finetune(model, examples, cfg.share,
                       loss_fn=DistillLoss(teacher, cfg.alpha, cfg.temperature),
                       evaluate=lambda step: dict(dev_wer=dev_wer(model)),
                       eval_every=eval_every // 2, progress=progress, desc="centroids")
    for h in shared:
        h["stage"] = "share"
    bake(model)
    save_deep(model, path, cfg.gap_bits, True, cfg.dense_dtype,
              history=history + shared, seconds=round(time.perf_counter() - t0, 1),
              baseline_sha256=sha256_file(baseline_path(progress)), config=asdict(cfg),
              **meta)
    return load_deep(path), path, history + shared


def _meta(path: Path) -> dict:
    """The JSON metadata of a `save_deep` file (weights not read)."""
    from .models import read_metadata

    return read_metadata(path, plain=PLAIN)

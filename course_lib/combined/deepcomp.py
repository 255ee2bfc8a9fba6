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
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.model import (is_weight_matrix, parametrize_matrices,
                          remove_parametrizations)
from ..core.modelfile import (build_model, config_header, pack_bits, read_container,
                              read_metadata, unpack_bits, write_container)
from ..techniques.entropy.huffman import decode, encode, stream_tensors, tensors_stream
from ..techniques.pruning.sparse_io import relative_entries
from ..techniques.quantization.quant import Shared, kmeans_1d

FORMAT = "course_lib.deepcomp/1"
PLAIN = ("format", "sha256")  # metadata stored as text; the rest is JSON


class SparseShared(Shared):
    """Parametrization W = centroids[indices] * mask (chapter 3.2's, with a mask)."""

    def __init__(self, centroids: torch.Tensor, indices: torch.Tensor,
                 mask: torch.Tensor) -> None:
        super().__init__(centroids, indices)
        self.register_buffer("mask", mask)

    def forward(self, _w: torch.Tensor) -> torch.Tensor:
        """The shared weights; pruned entries stay exactly 0."""
        return super().forward(_w) * self.mask


def share_pruned_weights(model: nn.Module, k: int = 16) -> dict[str, int]:
    """Cluster the non-zero weights of each weight matrix into k shared values, in
    place.

    Returns {name: kept weights}. Fine-tune with `finetune` to train the
    centroids (the gradient of a centroid is the sum over the weights that share
    it), then `bake` to make the weights plain tensors again.
    """
    def make(name: str, w: torch.Tensor) -> SparseShared | None:
        mask = w != 0
        kept = int(mask.sum())
        if kept == 0:  # a matrix pruned away entirely: nothing to share
            return None
        centroids, assign = kmeans_1d(w[mask], min(k, kept))
        idx = torch.zeros(w.shape, dtype=torch.long)
        idx[mask] = assign
        return SparseShared(centroids, idx, mask)

    shared = parametrize_matrices(model, make)
    return {name: int(p.mask.sum()) for name, p in shared.items()}


def bake(model: nn.Module) -> nn.Module:
    """Replace the parametrizations by the weights they compute (in place).

    Bake the model itself, not a `copy.deepcopy` of it: the copy shares PyTorch's
    generated parametrized classes, and removing them from one breaks the other.
    """
    remove_parametrizations(model)
    return model


def weight_streams(model: nn.Module, gap_bits: int
             ) -> tuple[dict, dict[str, torch.Tensor], np.ndarray, np.ndarray]:
    """Layout, codebooks, and the gap and index streams of every weight matrix."""
    layout, books, gaps, symbols = {}, {}, [np.zeros(0, np.int64)], []
    for name, w in model.state_dict().items():
        if not is_weight_matrix(w):
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
    if any(".parametrizations." in k for k in model.state_dict()):
        raise ValueError("the model still has parametrizations: call `bake` first")
    if dense_dtype not in ("float16", "float32"):
        raise ValueError(f"dense_dtype must be float16 or float32, got {dense_dtype!r}")
    layout, tensors, gaps, symbols = weight_streams(model, gap_bits)
    sym_bits = max(1, math.ceil(math.log2(max(v["k"] for v in layout.values()) + 1)))
    if sym_bits > 8:
        raise ValueError(f"{sym_bits}-bit indices: at most 255 shared values per "
                         "matrix (share the weights first: `share_pruned_weights`)")
    for name, w in model.state_dict().items():
        if not is_weight_matrix(w):
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


def deep_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata of a `save_deep` file (weights not read)."""
    return read_metadata(path, plain=PLAIN)

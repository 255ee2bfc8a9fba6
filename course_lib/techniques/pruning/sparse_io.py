"""Sparse model files that really are smaller than the dense ones (chapter 3.1).

A pruned model saved densely is as large as before: a zero in float32 still takes
4 bytes. These encodings store only the kept weights plus where they are:

- "bitmask":  one bit per weight (kept or not), then the kept values;
- "csr":      compressed sparse rows: row pointers, column indices, values;
- "relative": Deep Compression's relative indices (Han et al., 2016): for each kept
              weight, the distance from the previous one in `bits` bits; a gap too
              long for `bits` gets filler entries (value 0).

The container is safetensors (no pickle, so loading cannot run code), with the
format version, the encoding, the model configuration and a sha256 of the payload
in its metadata: a corrupted, truncated or foreign file is refused with a clear
error before any weight is used.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from ...core.model import CTCModel, is_weight_matrix
from ...core.modelfile import (build_model, config_header, pack_bits, read_container,
                                read_metadata, unpack_bits, write_container)

FORMAT = "course_lib.sparse"
VERSION = 1
ENCODINGS = ("bitmask", "csr", "relative")
PLAIN = ("format", "version", "bits", "sha256")  # metadata kept as text (rest is JSON)


# ----------------------------------------------------------------------------------
# The three encodings of one weight tensor. Each returns named numpy arrays.

def relative_entries(pos: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Deep Compression's relative indices of the sorted positions `pos`.

    Returns (codes, last): one `bits`-bit code per entry, and the entry of each
    position (the others are fillers). Entry i advances by codes[i] + 1; a gap
    longer than 2**bits gets filler entries that advance 2**bits each.
    """
    gaps = np.diff(pos, prepend=-1)  # >= 1: distance from the previous kept one
    span = 1 << bits  # the longest step one code can make
    fillers = (gaps - 1) // span  # extra entries for gaps longer than `span`
    codes = np.full(len(pos) + int(fillers.sum()), span - 1, dtype=np.int64)
    last = np.cumsum(fillers + 1) - 1  # where each real weight's entry goes
    codes[last] = gaps - fillers * span - 1
    return codes, last


def encode(w: torch.Tensor, encoding: str, bits: int = 4) -> dict[str, np.ndarray]:
    """Encode a (mostly zero) tensor; `bits` is for "relative" only."""
    flat = w.detach().reshape(-1).numpy().astype(np.float32)
    if encoding == "bitmask":
        keep = flat != 0
        return dict(mask=np.packbits(keep), values=flat[keep])
    if encoding == "csr":
        rows = w.reshape(w.shape[0], -1).detach().numpy().astype(np.float32)
        r, c = np.nonzero(rows)
        index_type = np.int16 if rows.shape[1] <= np.iinfo(np.int16).max else np.int32
        indptr = np.searchsorted(r, np.arange(rows.shape[0] + 1)).astype(np.int32)
        return dict(indptr=indptr, indices=c.astype(index_type), values=rows[r, c])
    if encoding == "relative":
        pos = np.flatnonzero(flat)
        codes, last = relative_entries(pos, bits)
        values = np.zeros(len(codes), dtype=np.float32)
        values[last] = flat[pos]
        return dict(codes=pack_bits(codes, bits), values=values)
    raise ValueError(f"unknown encoding {encoding!r}; choose from {ENCODINGS}")


def decode(parts: dict[str, np.ndarray], shape: tuple[int, ...], encoding: str,
           bits: int = 4) -> torch.Tensor:
    """Inverse of `encode`: the dense float32 tensor."""
    n = int(np.prod(shape))
    flat = np.zeros(n, dtype=np.float32)
    if encoding == "bitmask":
        keep = np.unpackbits(parts["mask"])[:n].astype(bool)
        if keep.sum() != len(parts["values"]):
            raise ValueError(f"bitmask keeps {keep.sum()} weights but "
                             f"{len(parts['values'])} values are stored")
        flat[keep] = parts["values"]
    elif encoding == "csr":
        indptr = parts["indptr"].astype(np.int64)
        cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        flat[rows * cols + parts["indices"].astype(np.int64)] = parts["values"]
    elif encoding == "relative":
        codes = unpack_bits(parts["codes"], bits, len(parts["values"])).astype(np.int64)
        pos = np.cumsum(codes + 1) - 1
        if len(pos) and pos[-1] >= n:
            raise ValueError("relative indices run past the end of the tensor")
        flat[pos] = parts["values"]
    else:
        raise ValueError(f"unknown encoding {encoding!r}; choose from {ENCODINGS}")
    return torch.from_numpy(flat).view(shape)


# ----------------------------------------------------------------------------------
# Whole models.

def save_sparse(model: CTCModel, path: str | os.PathLike, encoding: str = "relative",
                bits: int = 4, **meta: object) -> Path:
    """Save `model` with its 2-D+ weights in a sparse `encoding` (atomic write)."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; choose from {ENCODINGS}")
    tensors: dict[str, torch.Tensor] = {}
    layout: dict[str, dict] = {}
    for name, w in model.state_dict().items():
        if is_weight_matrix(w):
            for part, arr in encode(w, encoding, bits).items():
                tensors[f"{name}/{part}"] = torch.from_numpy(np.ascontiguousarray(arr))
            layout[name] = dict(shape=list(w.shape), encoding=encoding)
        else:
            tensors[f"{name}/dense"] = w.detach().float().contiguous()
            layout[name] = dict(shape=list(w.shape), encoding="dense")
    header = dict(format=FORMAT, version=str(VERSION), bits=str(bits),
                  layout=json.dumps(layout), **config_header(model))
    return write_container(path, tensors, header, **meta)


def load_sparse(path: str | os.PathLike, model: CTCModel | None = None) -> CTCModel:
    """Load a file written by `save_sparse` into `model` (or a new CTCModel).

    Refuses, with the reason: a file that is not a sparse model file, another
    format version, a payload whose sha256 differs (corruption), and tensors that do
    not fit the model (named, with both shapes).
    """
    path = Path(path)
    tensors, meta = read_container(path, FORMAT)
    if meta.get("version") != str(VERSION):
        raise ValueError(f"{path}: format version {meta.get('version')}, this "
                         f"course_lib reads version {VERSION}")
    if model is None:
        model = build_model(json.loads(meta["model_config"]),
                            json.loads(meta.get("low_rank", "null")))
    layout = json.loads(meta["layout"])
    bits = int(meta["bits"])
    expected = model.state_dict()
    unknown = sorted(set(layout) - set(expected))
    missing = sorted(set(expected) - set(layout))
    if unknown or missing:
        raise ValueError(f"{path}: tensors do not match the model: in the file but not "
                         f"the model {unknown}, in the model but not the file "
                         f"{missing}")
    state = {}
    for name, info in layout.items():
        shape = tuple(info["shape"])
        if shape != tuple(expected[name].shape):
            raise ValueError(f"{path}: tensor {name} has shape {shape} in the file but "
                             f"{tuple(expected[name].shape)} in the model")
        parts = {k.split("/", 1)[1]: v.numpy() for k, v in tensors.items()
                 if k.split("/", 1)[0] == name}
        if info["encoding"] == "dense":
            state[name] = torch.from_numpy(parts["dense"].copy()).view(shape)
        else:
            state[name] = decode(parts, shape, info["encoding"], bits)
    model.load_state_dict(state, strict=True)
    return model.eval()


def sparse_metadata(path: str | os.PathLike) -> dict:
    """The metadata of a sparse model file, JSON fields decoded (weights not read)."""
    return read_metadata(path, plain=PLAIN)

"""Model files: safetensors with the model's configuration, loaded safely (chapter 1).

Every file the course writes is safetensors (no pickle, so loading cannot run code):
a plain model (`save_model`), or a *container* whose metadata names its format
and holds a sha256 of its payload (`write_container`: the sparse, quantized,
codebook and Deep Compression files of chapters 3.1-5), so that a truncated,
corrupted or foreign file is refused with its name before any weight is used.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load, load_file, save

from .model import CTCModel, ModelConfig, factorized_shapes
from .utils import atomic_write_bytes, sha256_bytes

FORMAT = "course_lib.ctc/1"


def config_header(model: CTCModel) -> dict[str, str]:
    """What a file needs to rebuild `model`'s shapes: its config (and ranks, ch. 5)."""
    header = {"model_config": json.dumps(asdict(model.cfg))}
    if getattr(model, "low_rank", None):  # the ranks of a factorized model
        header["low_rank"] = json.dumps(model.low_rank)
    return header


def build_model(config: dict, low_rank: dict | None = None) -> CTCModel:
    """A fresh CTCModel with the shapes `config_header` recorded."""
    model = CTCModel(ModelConfig(**config))
    if low_rank:  # give the model the factorized shapes (chapter 5)
        factorized_shapes(model, low_rank)
    return model


def save_model(model: CTCModel, path: str | os.PathLike, **meta: object) -> Path:
    """Save weights as safetensors (atomically) with the config in the metadata."""
    header = {"format": FORMAT, **config_header(model)}
    header.update({k: json.dumps(v) for k, v in meta.items()})
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    return atomic_write_bytes(path, save(state, metadata=header))


def read_metadata(path: str | os.PathLike, plain: tuple[str, ...] = ("format",)
                  ) -> dict:
    """The metadata of a saved model, without loading the weights.

    Every value is JSON-decoded except the keys in `plain`, which are stored as text.
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except Exception as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from exc
    return {k: (v if k in plain else json.loads(v)) for k, v in raw.items()}


def load_model(path: str | os.PathLike, expect: ModelConfig | None = None) -> CTCModel:
    """Load a model saved by `save_model`; refuse files of another architecture."""
    path = Path(path)
    meta = read_metadata(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    cfg = ModelConfig(**meta["model_config"])
    if expect is not None and cfg != expect:
        raise ValueError(f"{path}: checkpoint is for another architecture: {cfg} "
                         f"!= expected {expect}")
    model = build_model(meta["model_config"], meta.get("low_rank"))
    state = load_file(str(path))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit the model ({exc})") from exc
    return model.eval()


def safetensors_header(data: bytes | memoryview) -> tuple[dict, int]:
    """(header, payload offset) of safetensors bytes: an 8-byte little-endian length,
    then a JSON header (tensor name -> dtype, shape, data offsets; "__metadata__")."""
    n = int.from_bytes(data[:8], "little")
    return json.loads(bytes(data[8:8 + n])), 8 + n


# ----------------------------------------------------------------------------------
# The container: safetensors + metadata with a format name and a payload sha256.
# Chapter 3.1's sparse files, 3.2's quantized and codebook files and chapter 4's
# Deep Compression files use it.

def payload_hash(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name and bytes, in name order."""
    blob = b"".join(k.encode() + tensors[k].numpy().tobytes() for k in sorted(tensors))
    return sha256_bytes(blob)


def write_container(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                    header: dict[str, str], **meta: object) -> Path:
    """Write tensors + header (+ JSON-encoded `meta`) with a payload sha256, atomic."""
    header = dict(header, sha256=payload_hash(tensors))
    header.update({k: json.dumps(v) for k, v in meta.items()})
    return atomic_write_bytes(path, save(tensors, metadata=header))


def read_container(path: str | os.PathLike, fmt: str
                   ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a container of format `fmt`; refuse unreadable, foreign or corrupt files."""
    path = Path(path)
    data = path.read_bytes()
    try:
        tensors = load(data)
        meta = safetensors_header(data)[0].get("__metadata__", {})
    except Exception as exc:
        raise ValueError(f"{path}: not a readable {fmt} file (truncated or "
                         f"corrupted?): {exc}") from exc
    if meta.get("format") != fmt:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected {fmt!r}")
    if payload_hash(tensors) != meta.get("sha256"):
        raise ValueError(f"{path}: checksum mismatch, the file is corrupted")
    return tensors, meta


def container_model(path: str | os.PathLike, fmt: str, decode) -> CTCModel:
    """A CTCModel from a container whose "layout" lists every tensor's shape.

    A tensor stored as it is sits under `<name>/dense`; any other is rebuilt by
    `decode(name, shape, tensors, meta)` (chapters 3.2 and 5).
    """
    tensors, meta = read_container(path, fmt)
    model = build_model(json.loads(meta["model_config"]),
                        json.loads(meta.get("low_rank", "null")))
    state = {}
    for name, shape in json.loads(meta["layout"]).items():
        dense = tensors.get(f"{name}/dense")
        state[name] = (dense.view(shape) if dense is not None
                       else decode(name, shape, tensors, meta))
    model.load_state_dict(state, strict=True)
    return model.eval()


# ----------------------------------------------------------------------------------
# Bit packing: n codes of `bits` bits each -> bytes, and back (chapters 3.1-4).

def pack_bits(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned integers < 2**bits, `bits` bits each, into a uint8 array."""
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be 1..8, got {bits}")
    codes = np.asarray(codes)
    if codes.size and (int(codes.max()) >= 1 << bits or int(codes.min()) < 0):
        raise ValueError(f"a code does not fit in {bits} bits")
    codes = codes.astype(np.uint8)
    planes = np.unpackbits(codes[:, None], axis=1)[:, 8 - bits:]  # (n, bits), MSB first
    return np.packbits(planes.reshape(-1))


def unpack_bits(packed: np.ndarray, bits: int, n: int) -> np.ndarray:
    """Inverse of `pack_bits`: the first `n` codes."""
    planes = np.unpackbits(packed)[: n * bits].reshape(n, bits)
    full = np.zeros((n, 8), dtype=np.uint8)
    full[:, 8 - bits:] = planes
    return np.packbits(full, axis=1).reshape(-1)

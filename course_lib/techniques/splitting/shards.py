"""Model splitting (模型剪裁): shards, an index manifest, on-demand loading (ch. 3.5).

Splitting does not make a model smaller: its shards add up to the same bytes. It
lets a program hold only the part it is running, which lowers peak memory and the
time before the first layer can start. A sharded model is a folder:

    index.json          the manifest: format, model config, model id and, for each
                        part in execution order, its file, bytes, sha256 and
                        tensors (name -> shape, dtype, bytes)
    conv0.safetensors   the first convolution and its LayerNorm (convs.0.*, norms.0.*)
    conv1.safetensors   the second, if the model has two
    rnn0.safetensors    GRU layer 0, both directions (rnn.fwd.0.*, rnn.bwd.0.*)
    ...
    head.safetensors    the CTC head

A model of another chapter shards the same way: the index records the ranks of a
low-rank model (chapter 5), and a *codec* (`write_shards(..., codec=...)`) can
store each tensor another way, decoded when its part is loaded: chapter 3.2's
integer codes with their scales (`course_lib.combined.quantized_shards`).

`verify_shards` checks everything (files present, checksums, tensor names, shapes,
one model id) before any computation, and `OnDemand` runs the model stage by stage
(`CTCModel.stage`),
loading each part just before its first use and freeing it after its last.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Protocol

import torch
from safetensors import safe_open
from safetensors.torch import save
from torch import nn

from ...core.model import CTCModel, ModelConfig
from ...core.modelfile import build_model, safetensors_header
from ...core.utils import (atomic_write_bytes, atomic_write_json, sha256_bytes,
                           sha256_file)

FORMAT = "course_lib.shards/1"
INDEX = "index.json"


class ShardError(ValueError):
    """A sharded model that must not be used; the message says which file and why."""


# ----------------------------------------------------------------------------------
# Which tensors go together.

def stage_prefixes(cfg: ModelConfig) -> dict[str, tuple[str, ...]]:
    """`CTCModel.stage_prefixes` for a configuration, without allocating weights."""
    with torch.device("meta"):
        return CTCModel(cfg).stage_prefixes()


def stage_parts(model: CTCModel) -> dict[str, list[str]]:
    """One part per execution stage (the chapter's split): part -> tensor names."""
    keys = list(model.state_dict())
    return {stage: [k for k in keys if k.startswith(prefixes)]
            for stage, prefixes in stage_prefixes(model.cfg).items()}


def size_parts(model: CTCModel, max_bytes: int) -> dict[str, list[str]]:
    """Parts of at most `max_bytes` each, filled in state-dict order (the
    `max_shard_size` convention of large-model libraries); a larger tensor gets a
    part of its own."""
    parts: dict[str, list[str]] = {}
    size = max_bytes + 1
    for name, t in model.state_dict().items():
        nbytes = t.numel() * t.element_size()
        if size + nbytes > max_bytes:
            parts[f"part{len(parts):03d}"] = []
            size = 0
        parts[f"part{len(parts) - 1:03d}"].append(name)
        size += nbytes
    return parts


def meta_model(index: dict) -> CTCModel:
    """The model an index describes, on the meta device (shapes, no memory)."""
    try:
        config = ModelConfig(**index["model_config"])
    except TypeError as exc:
        raise ShardError(f"{INDEX}: bad model config ({exc})") from exc
    with torch.device("meta"):
        return build_model(asdict(config), index.get("low_rank")).eval()


class Codec(Protocol):
    """How shards store a model's tensors when not as they are (chapter 3.5).

    A stored tensor named `<name>/<anything>` belongs to the model tensor `<name>`
    and travels in the same part. The index records `config()` under `key`, and
    `register_codec(key, factory)` tells a reader how to rebuild the codec from it.
    """

    key: str

    def config(self) -> dict:
        """What the index records, for `register_codec`'s factory."""

    def encode(self, model: CTCModel) -> dict[str, torch.Tensor]:
        """The model's state dict as stored: name -> tensor."""

    def decode(self, stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One part's stored tensors -> the model's tensors."""

    def stored_shapes(self, name: str, t: torch.Tensor
                      ) -> dict[str, tuple[list[int], str]]:
        """Stored name -> (shape, dtype) that the model tensor `name` becomes."""


_CODECS: dict[str, Callable[[dict], Codec]] = {}


def register_codec(key: str, factory: Callable[[dict], Codec]) -> None:
    """Let readers decode shards whose index records a codec's config under `key`."""
    _CODECS[key] = factory


def codec_of(index: dict) -> Codec | None:
    """The codec a sharded model was written with, or None for plain tensors."""
    for key, factory in _CODECS.items():
        if index.get(key):
            try:
                return factory(index[key])
            except (TypeError, ValueError) as exc:
                raise ShardError(f"{INDEX}: bad {key!r} entry ({exc})") from exc
    return None


def stored_tensors(model: CTCModel, codec: Codec | None = None
                   ) -> dict[str, torch.Tensor]:
    """What the shards store for `model`: its state dict, or what `codec` makes."""
    if codec is not None:
        return codec.encode(model)
    return {k: v.detach().contiguous() for k, v in model.state_dict().items()}


def model_tensors(stored: dict[str, torch.Tensor], codec: Codec | None
                  ) -> dict[str, torch.Tensor]:
    """A part's stored tensors -> the model's (decoded by `codec`, if any)."""
    return stored if codec is None else codec.decode(stored)


def _owner(name: str) -> str:
    """The model tensor a stored tensor belongs to ('w/scale' -> 'w')."""
    return name.rsplit("/", 1)[0] if name.endswith(("/scale", "/zero")) else name


def model_id(state: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes: one model's identity."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# ----------------------------------------------------------------------------------
# Writing and checking.

def write_shards(model: CTCModel, folder: str | os.PathLike,
                 parts: dict[str, list[str]] | None = None,
                 codec: Codec | None = None) -> Path:
    """Write `model` as one safetensors file per part plus `index.json`; return it.

    `parts` maps part names to the model's tensor names (default: one part per
    stage). With a `codec`, the tensors are stored as it encodes them
    (`stored_tensors`), each stored tensor in its model tensor's part. Every shard
    records the model id, so shards of two models cannot be mixed. The index is
    written last: a folder without one is an unfinished write.
    """
    folder = Path(folder)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    parts = parts if parts is not None else stage_parts(model)
    listed = [k for keys in parts.values() for k in keys]
    if sorted(listed) != sorted(state):
        missing = set(state) - set(listed)
        twice = {k for k in listed if listed.count(k) > 1}
        raise ValueError(f"the parts must hold every tensor exactly once; missing "
                         f"{sorted(missing)}, repeated {sorted(twice)}, unknown "
                         f"{sorted(set(listed) - set(state))}")
    stored = stored_tensors(model, codec)
    mid = model_id(stored)
    index = dict(format=FORMAT, model_config=asdict(model.cfg),
                 low_rank=getattr(model, "low_rank", None) or None)
    for key in _CODECS:  # which codec wrote the shards (None: plain tensors)
        index[key] = None
    if codec is not None:
        index[codec.key] = codec.config()
    index.update(model_id=mid, parts=[])
    for name, keys in parts.items():  # a list: JSON keeps the execution order
        names = [k for k in stored if _owner(k) in keys]
        data = save({k: stored[k] for k in names},
                    metadata={"format": FORMAT, "part": name, "model_id": mid})
        atomic_write_bytes(folder / f"{name}.safetensors", data)
        index["parts"].append(dict(
            name=name, file=f"{name}.safetensors", bytes=len(data),
            sha256=sha256_bytes(data),
            tensors={k: dict(shape=list(stored[k].shape), dtype=_dtype_name(stored[k]),
                             bytes=stored[k].numel() * stored[k].element_size())
                     for k in names}))
    return atomic_write_json(folder / INDEX, index)


def read_index(folder: str | os.PathLike) -> dict:
    """The manifest of a sharded model folder, with its format checked."""
    path = Path(folder) / INDEX
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise ShardError(f"{path}: no index (not a sharded model, or an unfinished "
                         "write)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ShardError(f"{path}: unreadable index ({exc})") from exc
    fmt = index.get("format") if isinstance(index, dict) else None
    if fmt != FORMAT:
        raise ShardError(f"{path}: format {fmt!r}, expected {FORMAT!r}")
    try:  # in memory: name -> part, still in execution order
        index["parts"] = {p["name"]: p for p in index["parts"]}
    except (KeyError, TypeError) as exc:
        raise ShardError(f"{path}: malformed list of parts ({exc!r})") from exc
    return index


def _dtype_name(t: torch.Tensor) -> str:
    """'float32' for a torch.float32 tensor: the dtype as the index writes it."""
    return str(t.dtype).removeprefix("torch.")


def _expected_tensors(index: dict) -> dict[str, tuple[list[int], str]]:
    """Stored tensor -> (shape, dtype) that the index's model and codec need."""
    model, codec = meta_model(index), codec_of(index)
    out = {}
    for k, v in model.state_dict().items():
        if codec is not None:
            out.update(codec.stored_shapes(k, v))
        else:
            out[k] = (list(v.shape), _dtype_name(v))
    return out


def verify_shards(folder: str | os.PathLike, expect: ModelConfig | None = None
                  ) -> dict:
    """Check a sharded model completely before any computation; return its index.

    Refused, with a `ShardError` naming the file: a missing shard, a wrong checksum,
    a manifest that names a tensor the architecture does not have (or misses one),
    a shard whose tensors differ from the manifest, and shards of another model.
    """
    folder = Path(folder)
    index = read_index(folder)
    try:
        cfg = ModelConfig(**index["model_config"])
        codec_of(index)
    except (TypeError, ValueError) as exc:
        raise ShardError(f"{folder / INDEX}: bad model config or codec "
                         f"({exc})") from exc
    if expect is not None and cfg != expect:
        raise ShardError(f"{folder / INDEX}: a model of another architecture: {cfg} "
                         f"!= expected {expect}")
    want = _expected_tensors(index)
    seen: dict[str, str] = {}
    for name, part in index["parts"].items():
        path = folder / part["file"]
        unknown = sorted(set(part["tensors"]) - set(want))
        if unknown:
            raise ShardError(f"{folder / INDEX}: part {name!r} names tensors this "
                             f"architecture does not have: {unknown}")
        twice = sorted(k for k in part["tensors"] if k in seen)
        if twice:
            raise ShardError(f"{folder / INDEX}: tensors {twice} are in parts "
                             f"{seen[twice[0]]!r} and {name!r}")
        seen.update(dict.fromkeys(part["tensors"], name))
        if not path.is_file():
            raise ShardError(f"{path}: missing shard (part {name!r})")
        digest = sha256_file(path)
        if digest != part["sha256"]:
            raise ShardError(f"{path}: checksum mismatch (sha256 {digest[:12]}..., the "
                             f"index says {part['sha256'][:12]}...): the shard was "
                             "changed or damaged")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta, shapes = f.metadata() or {}, {k: f.get_slice(k).get_shape()
                                                    for k in f.keys()}
        except Exception as exc:
            raise ShardError(f"{path}: not a readable safetensors file ({exc})"
                             ) from exc
        if meta.get("model_id") != index["model_id"]:
            raise ShardError(f"{path}: a shard of another model (model id "
                             f"{str(meta.get('model_id'))[:12]}..., the index says "
                             f"{index['model_id'][:12]}...)")
        if set(shapes) != set(part["tensors"]):
            raise ShardError(f"{path}: holds {sorted(shapes)}, the index says "
                             f"{sorted(part['tensors'])}")
        for k, info in part["tensors"].items():
            if (list(shapes[k]) != info["shape"] or info["shape"] != want[k][0]
                    or info["dtype"] != want[k][1]):
                raise ShardError(f"{path}: tensor {k} is {list(shapes[k])} "
                                 f"{info['dtype']}, the model needs {want[k][0]} "
                                 f"{want[k][1]}")
    missing = sorted(set(want) - set(seen))
    if missing:
        raise ShardError(f"{folder / INDEX}: no part holds {missing}")
    return index


def load_part(folder: str | os.PathLike, index: dict, name: str
              ) -> dict[str, torch.Tensor]:
    """The model tensors of one part (decoded if stored by a codec), read
    through a memory map of its file."""
    path = Path(folder) / index["parts"][name]["file"]
    with safe_open(str(path), framework="pt") as f:
        return model_tensors({k: f.get_tensor(k) for k in f.keys()}, codec_of(index))


_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
              "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
              "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}


def map_part(folder: str | os.PathLike, index: dict, name: str
             ) -> dict[str, torch.Tensor]:
    """The tensors of one part as views of a memory map of its file: no copy.

    A safetensors file is an 8-byte little-endian header length, a JSON header
    (name -> dtype, shape, byte offsets) and the raw bytes. The OS reads the pages
    when a tensor is first touched and can drop them again; nothing is held twice.
    The map is private (copy-on-write), so the file is never changed.
    """
    path = Path(folder) / index["parts"][name]["file"]
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    header, offset = safetensors_header(mm)
    header.pop("__metadata__", None)
    out = {}
    for key, info in header.items():
        start, end = info["data_offsets"]
        dtype = _ST_DTYPES[info["dtype"]]
        count = (end - start) // torch.empty(0, dtype=dtype).element_size()
        t = torch.frombuffer(mm, dtype=dtype, count=count, offset=offset + start)
        out[key] = t.view(info["shape"])
    return out


def load_sharded(folder: str | os.PathLike, expect: ModelConfig | None = None
                 ) -> CTCModel:
    """The whole model from its shards (checked first), in eval mode."""
    index = verify_shards(folder, expect)
    model = meta_model(index)  # no random initial weights to overwrite
    state = {}
    for name in index["parts"]:
        state.update(load_part(folder, index, name))
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


# ----------------------------------------------------------------------------------
# Running part by part.

class OnDemand(nn.Module):
    """A sharded `CTCModel` that holds only the parts of the stage it is running.

    The model is built on PyTorch's "meta" device (shapes, no memory). Before each
    stage (each conv, each GRU layer, the head) the parts holding its tensors are
    loaded; after the last stage that needs a part, its tensors go back to "meta"
    and their memory is freed. `events` records every load and free, in order.
    """

    def __init__(self, folder: str | os.PathLike, verify: bool = True) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.index = verify_shards(folder) if verify else read_index(folder)
        self.model = meta_model(self.index)
        self.codec = codec_of(self.index)
        self.stages = self.model.stage_prefixes()
        owner = {_owner(k): p for p, part in self.index["parts"].items()
                 for k in part["tensors"]}
        # For each stage, the parts it reads; a part is freed after its last stage.
        self.needs = {s: sorted({owner[k] for k in owner if k.startswith(pre)},
                                key=list(self.index["parts"]).index)
                      for s, pre in self.stages.items()}
        self.last_use = {p: s for s, parts in self.needs.items() for p in parts}
        self.events: list[tuple[str, str]] = []
        self.loaded: dict[str, int] = {}  # part -> bytes of its loaded tensors
        self.peak_bytes = 0  # most tensor bytes held at once (a logical count)
        self.trace: list[tuple[str, int]] = []  # (stage, bytes held while it runs)

    def _load(self, part: str) -> None:
        tensors = model_tensors(map_part(self.folder, self.index, part), self.codec)
        self.model.load_state_dict(tensors, strict=False, assign=True)
        self.loaded[part] = sum(t.numel() * t.element_size() for t in tensors.values())
        self.events.append(("load", part))
        self.peak_bytes = max(self.peak_bytes, self.held_bytes())

    def _free(self, part: str) -> None:
        for name in dict.fromkeys(map(_owner, self.index["parts"][part]["tensors"])):
            module_name, _, attr = name.rpartition(".")
            module = self.model.get_submodule(module_name)
            old = getattr(module, attr)
            # requires_grad as before: PyTorch's CPU GRU picks its kernel by it, and
            # the two kernels round differently (about 1e-6).
            setattr(module, attr, nn.Parameter(torch.empty_like(old, device="meta"),
                                               requires_grad=old.requires_grad))
        del self.loaded[part]
        self.events.append(("free", part))

    def held_bytes(self) -> int:
        """Bytes of the model tensors loaded now (dequantized, for quantized shards)."""
        return sum(self.loaded.values())

    def run_stage(self, stage: str, *args: torch.Tensor):
        """Run one stage with its parts loaded; free the parts it used last."""
        for part in self.needs[stage]:
            if part not in self.loaded:
                self._load(part)
        self.trace.append((stage, self.held_bytes()))
        out = self.model.stage(stage, *args)
        for part in self.needs[stage]:
            if self.last_use[part] == stage:
                self._free(part)
        return out

    def run_stages(self, stages: list[str], x: torch.Tensor, lengths: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run consecutive stages on (x, lengths); return the last one's output."""
        for stage in stages:
            out = self.run_stage(stage, x, lengths)
            x, lengths = out if isinstance(out, tuple) else (out, lengths)
        return x, lengths

    @torch.no_grad()
    def forward(self, feats: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, n_mels), lengths (B,) -> log-probs, lengths: the model's."""
        return self.run_stages(list(self.stages), feats, lengths)

"""Model splitting (模型剪裁): shards, an index manifest, on-demand loading (ch. 3.5).

Splitting does not make a model smaller: its shards add up to the same bytes. It
lets a program hold only the part it is running, which lowers peak memory and the
time before the first layer can start. A sharded model is a folder:

    index.json          the manifest: format, model config, model id and, for each
                        part in execution order, its file, bytes, sha256 and
                        tensors (name -> shape, dtype, bytes)
    conv0.safetensors   the first convolution and its LayerNorm (convs.0.*, norms.0.*)
    conv1.safetensors   the second
    rnn0.safetensors    GRU layer 0, both directions (rnn.fwd.0.*, rnn.bwd.0.*)
    ...
    head.safetensors    the CTC head

A model of another chapter shards the same way: the index records the ranks of a
low-rank model (chapter 5), and `write_shards(..., spec=...)` stores each weight
as its integer codes with their scales (chapter 3.2), dequantized when the part is
loaded.

`verify_shards` checks everything (files present, checksums, tensor names, shapes,
one model id) before any computation, and `OnDemand` runs the model stage by stage
(`CTCModel.stage`),
loading each part just before its first use and freeing it after its last.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

from .models import CTCModel, ModelConfig, build_model
from .quantize import QuantSpec, dequantize_codes, weight_codes
from .utils import atomic_write_bytes, atomic_write_json, sha256_bytes, sha256_file

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


def _spec(index: dict) -> QuantSpec | None:
    """The quantization of a sharded model's weights, or None for float weights."""
    return QuantSpec(**index["quant"]) if index.get("quant") else None


def stored_tensors(model: CTCModel, spec: QuantSpec | None = None
                   ) -> dict[str, torch.Tensor]:
    """What the shards store for `model`: its state dict, or with `spec` (chapter
    3.2) each 2-D+ weight as codes q - qmin (uint8, one per byte, so that a part is
    used straight from its memory map) plus `<name>/scale` and `<name>/zero`."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if spec is None:
        return state
    if spec.qmax - spec.qmin > 255:
        raise ValueError(f"shards hold codes of at most 8 bits, got {spec.bits}")
    codes = weight_codes(model, spec)  # the codes chapter 3.2's files hold
    out = {}
    for name, t in state.items():
        if name in codes:
            q, scale, zero = codes[name]
            out[name] = q.to(torch.uint8).contiguous()
            out[f"{name}/scale"] = scale.flatten().float().contiguous()
            out[f"{name}/zero"] = zero.flatten().float().contiguous()
        else:
            out[name] = t
    return out


def model_tensors(stored: dict[str, torch.Tensor], spec: QuantSpec | None
                  ) -> dict[str, torch.Tensor]:
    """A part's stored tensors -> the model's: codes dequantized, ŵ = s (q + qmin - z),
    exactly as `quantize.load_quantized` does; float tensors as they are."""
    out = {}
    for name, t in stored.items():
        if name.endswith(("/scale", "/zero")):
            continue
        if f"{name}/scale" in stored:  # one float32 copy, no int64 one
            t = dequantize_codes(t, stored[f"{name}/scale"], stored[f"{name}/zero"],
                                 spec)
        out[name] = t
    return out


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
                 spec: QuantSpec | None = None) -> Path:
    """Write `model` as one safetensors file per part plus `index.json`; return it.

    `parts` maps part names to the model's tensor names (default: one part per
    stage). With `spec`, the weights are stored quantized (`stored_tensors`), each
    with its scale and zero point in the same part. Every shard records the model
    id, so shards of two models cannot be mixed. The index is written last: a
    folder without one is an unfinished write.
    """
    from safetensors.torch import save

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
    stored = stored_tensors(model, spec)
    mid = model_id(stored)
    index = dict(format=FORMAT, model_config=asdict(model.cfg),
                 low_rank=getattr(model, "low_rank", None) or None,
                 quant=asdict(spec) if spec else None, model_id=mid, parts=[])
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
    """Stored tensor -> (shape, dtype) that the index's model and quantization need."""
    model, spec = meta_model(index), _spec(index)
    out = {}
    for k, v in model.state_dict().items():
        if spec is not None and v.ndim >= 2:  # codes, and a scale and zero per row
            out[k] = (list(v.shape), "uint8")
            channels = [v.shape[0] if spec.per_channel else 1]
            out[f"{k}/scale"] = out[f"{k}/zero"] = (channels, "float32")
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
    from safetensors import safe_open

    folder = Path(folder)
    index = read_index(folder)
    try:
        cfg = ModelConfig(**index["model_config"])
        _spec(index)
    except (TypeError, ValueError) as exc:
        raise ShardError(f"{folder / INDEX}: bad model config or quantization "
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
    """The model tensors of one part (dequantized if stored quantized), read
    through a memory map of its file."""
    from safetensors import safe_open

    path = Path(folder) / index["parts"][name]["file"]
    with safe_open(str(path), framework="pt") as f:
        return model_tensors({k: f.get_tensor(k) for k in f.keys()}, _spec(index))


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
    import mmap

    path = Path(folder) / index["parts"][name]["file"]
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    n = int.from_bytes(mm[:8], "little")
    header = json.loads(mm[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for key, info in header.items():
        start, end = info["data_offsets"]
        dtype = _ST_DTYPES[info["dtype"]]
        count = (end - start) // torch.empty(0, dtype=dtype).element_size()
        t = torch.frombuffer(mm, dtype=dtype, count=count, offset=8 + n + start)
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
        self.spec = _spec(self.index)
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
        tensors = model_tensors(map_part(self.folder, self.index, part), self.spec)
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


# ----------------------------------------------------------------------------------
# Peak memory, measured in a fresh process.

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


def _peak_child(mode: str, folder: str, inputs: str) -> dict:
    """In a fresh process: the rise of peak RSS while loading and running once."""
    import tempfile
    import time
    import tracemalloc

    from safetensors.torch import load_file

    from .models import load_model, read_metadata, save_model

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
    import subprocess
    import sys
    import tempfile

    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as work:
        inputs = os.path.join(work, "inputs.safetensors")
        save_file({"feats": feats.contiguous(), "lengths": lengths.contiguous()},
                  inputs)
        code = ("import json, sys; from course_lib.shards import _peak_child; "
                "print(json.dumps(_peak_child(*sys.argv[1:4])))")
        # A fixed malloc threshold: glibc then maps every large tensor on its own and
        # unmaps it when freed, so the freed warm-up model is not reused (Linux).
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
        run = subprocess.run([sys.executable, "-c", code, mode, str(folder), inputs],
                             capture_output=True, text=True, timeout=300, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"peak-memory process failed: {run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])

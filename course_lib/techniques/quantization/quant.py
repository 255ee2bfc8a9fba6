"""Uniform affine quantization (量化) from scratch (chapter 3.2).

A real number w is stored as an integer q with a scale s and a zero point z:

    q = clamp(round(w / s) + z, q_min, q_max),        ŵ = s (q - z).

Asymmetric (unsigned) b-bit: the range [lo, hi] (stretched to include 0, so that 0
is exact: padding and pruned weights stay 0) maps to 0 .. 2^b - 1, with
s = (hi - lo) / (2^b - 1) and z = round(-lo / s). Symmetric (signed): z = 0 and
s = max|w| / (2^(b-1) - 1), q in [-(2^(b-1) - 1), 2^(b-1) - 1]. Per-channel
quantization uses one (s, z) per output row instead of one per tensor.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

from ...core.batching import collate
from ...core.model import (is_weight_matrix, parametrize_matrices,
                           remove_parametrizations)
from ...core.modelfile import (config_header, container_model, pack_bits, unpack_bits,
                               write_container)


@dataclass(frozen=True)
class QuantSpec:
    """How to quantize one tensor."""

    bits: int = 8
    symmetric: bool = True
    per_channel: bool = True  # one scale per output channel (dim 0)
    # Symmetric only: use the code -2^(b-1) too, with s = max|w| / (2^b - 1) * 2, the
    # convention of PyTorch's qint8 weight observers (s = max|w| / 127.5 at 8 bits).
    full_range: bool = False

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 16:
            raise ValueError(f"bits must be in 2..16, got {self.bits}")
        if self.full_range and not self.symmetric:
            raise ValueError("full_range applies to symmetric quantization only")

    @property
    def qmin(self) -> int:
        """Smallest integer code."""
        if not self.symmetric:
            return 0
        half = 2 ** (self.bits - 1)
        return -half if self.full_range else -(half - 1)

    @property
    def qmax(self) -> int:
        """Largest integer code."""
        return 2 ** (self.bits - 1) - 1 if self.symmetric else 2 ** self.bits - 1


def _ranges(w: torch.Tensor, per_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(min, max) of w, per row (keepdim, broadcastable) or for the whole tensor."""
    if per_channel and w.ndim >= 2:
        flat = w.reshape(w.shape[0], -1)
        shape = (w.shape[0],) + (1,) * (w.ndim - 1)
        return flat.min(1).values.view(shape), flat.max(1).values.view(shape)
    return w.min(), w.max()


def qparams(w: torch.Tensor, spec: QuantSpec, lo: torch.Tensor | float | None = None,
            hi: torch.Tensor | float | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point for `w` (or for a given clipping range [lo, hi])."""
    w = w.detach().float()
    if lo is None or hi is None:
        lo, hi = _ranges(w, spec.per_channel)
    lo = torch.clamp(torch.as_tensor(lo, dtype=torch.float32), max=0.0)  # 0 in range
    hi = torch.clamp(torch.as_tensor(hi, dtype=torch.float32), min=0.0)
    tiny = torch.finfo(torch.float32).tiny
    if spec.symmetric:
        scale = torch.maximum(-lo, hi) / ((spec.qmax - spec.qmin) / 2)
        zero = torch.zeros_like(scale)
    else:
        scale = (hi - lo) / (spec.qmax - spec.qmin)
        zero = torch.round(-lo / scale.clamp(min=tiny))
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # all-zero tensor
    return scale, zero


def quantize(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor,
             spec: QuantSpec) -> torch.Tensor:
    """q = clamp(round(w / s) + z, q_min, q_max), as int32 codes.

    w / s is computed as w * (1 / s) in float32, as PyTorch's int8 kernels do, so the
    codes agree with theirs bit for bit (a division rounds differently in about 0.3 %
    of the entries that sit near a rounding boundary).
    """
    q = torch.round(w * (1.0 / scale)) + zero
    return q.clamp(spec.qmin, spec.qmax).to(torch.int32)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor
               ) -> torch.Tensor:
    """ŵ = s (q - z)."""
    return scale * (q.float() - zero)


def dequantize_codes(codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor,
                     spec: QuantSpec) -> torch.Tensor:
    """Stored codes q - qmin (any integer dtype) -> float32 ŵ = s (q - z), with one
    scale and zero per row (`spec.per_channel`) or one for the whole tensor.

    `dequantize`'s operations, done in place on one float32 copy: small integers
    are exact in float32, so the result is the same (chapters 3.2 and 3.5).
    """
    rows = (codes.shape[0],) + (1,) * (codes.ndim - 1) if spec.per_channel else ()
    w = codes.to(torch.float32).add_(spec.qmin)
    return w.sub_(zero.view(rows)).mul_(scale.view(rows))


def fake_quantize(w: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Quantize and dequantize: the float values an integer model computes with."""
    scale, zero = qparams(w, spec)
    return dequantize(quantize(w.detach().float(), scale, zero, spec), scale, zero)


class _STE(torch.autograd.Function):
    """Straight-through estimator: forward rounds, backward passes the gradient."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor,
                qmin: int, qmax: int) -> torch.Tensor:
        q = torch.round(w * (1.0 / scale)) + zero
        ctx.save_for_backward((q >= qmin) & (q <= qmax))
        return scale * (q.clamp(qmin, qmax) - zero)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None, None  # no gradient where clipped


def fake_quantize_ste(w: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Differentiable fake quantization for quantization-aware training (QAT)."""
    scale, zero = qparams(w, spec)
    return _STE.apply(w, scale, zero, spec.qmin, spec.qmax)


def quantization_error(w: torch.Tensor, spec: QuantSpec) -> dict[str, float]:
    """Mean squared error and signal-to-quantization-noise ratio (dB) of `spec` on w."""
    err = fake_quantize(w, spec) - w.detach().float()
    mse = float((err ** 2).mean())
    power = float((w.detach().float() ** 2).mean())
    sqnr = 10 * torch.log10(torch.tensor(power / max(mse, 1e-30))).item()
    return dict(mse=mse, sqnr_db=sqnr)


def naive_power_of_two(w: torch.Tensor, bits: int) -> torch.Tensor:
    """The source article's `Q = round(W / 2^b)`: shown in chapter 3.2 to be wrong."""
    return torch.round(w / 2 ** bits)


# ----------------------------------------------------------------------------------
# A real int8 engine, and quantized model files (chapter 3.2).

ENGINE_SPEC = QuantSpec(8, symmetric=True, per_channel=True, full_range=True)
QFORMAT = "course_lib.quantized/1"
CFORMAT = "course_lib.codebook/1"


def int8_engine(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` whose GRU and Linear layers run PyTorch's int8 kernels.

    Dynamic quantization (`torch.ao.quantization.quantize_dynamic`, fbgemm/x86):
    weights are int8 per output channel (`ENGINE_SPEC`), activations are quantized
    on the fly per batch. The convolutions stay float32: `quantize_dynamic`'s
    default set covers Linear and recurrent layers only (a dynamic Conv1d exists).
    """
    with warnings.catch_warnings():  # torch.ao.quantization is marked deprecated
        warnings.simplefilter("ignore")
        return quantize_dynamic(
            copy.deepcopy(model).eval(),
            {torch.nn.GRU: per_channel_dynamic_qconfig,
             torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


def engine_weights(engine: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The int8 codes the engine really stores, named like the float model's weights."""
    out = {}
    for name, mod in engine.named_modules():
        if hasattr(mod, "get_weight"):  # dynamic GRU: {"weight_ih_l0": qtensor, ...}
            for k, w in mod.get_weight().items():
                out[f"{name}.{k}"] = w.int_repr()
        elif callable(getattr(mod, "weight", None)):  # dynamic Linear
            out[f"{name}.weight"] = mod.weight().int_repr()
    return out


def weight_codes(model: torch.nn.Module, spec: QuantSpec = QuantSpec()
                 ) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Every weight matrix as (codes - qmin >= 0, scale, zero) (chapters 3.2 and 5)."""
    out = {}
    for name, w in model.state_dict().items():
        if is_weight_matrix(w):
            scale, zero = qparams(w, spec)
            q = quantize(w.detach().float(), scale, zero, spec) - spec.qmin
            out[name] = (q.to(torch.int64), scale, zero)
    return out


def quantized_tensors(model: torch.nn.Module, spec: QuantSpec, packed: bool = True
                      ) -> tuple[dict[str, torch.Tensor], dict[str, str],
                                 dict[str, tuple[torch.Tensor, ...]]]:
    """(tensors, header, codes) of a quantized file: every weight matrix's scales and
    zeros, its `spec.bits`-bit codes packed (unless `packed` is false: then the
    caller stores `codes` its own way), and every other tensor as float32."""
    if spec.bits > 8:
        raise ValueError("save_quantized packs codes of at most 8 bits")
    tensors: dict[str, torch.Tensor] = {}
    layout: dict[str, list[int]] = {}
    codes = weight_codes(model, spec)
    for name, w in model.state_dict().items():
        layout[name] = list(w.shape)
        if name in codes:
            q, scale, zero = codes[name]
            if packed:
                tensors[f"{name}/codes"] = torch.from_numpy(
                    pack_bits(q.flatten().numpy(), spec.bits))
            tensors[f"{name}/scale"] = scale.flatten().float().contiguous()
            tensors[f"{name}/zero"] = zero.flatten().float().contiguous()
        else:
            tensors[f"{name}/dense"] = w.detach().float().contiguous()
    header = dict(format=QFORMAT, spec=json.dumps(asdict(spec)),
                  layout=json.dumps(layout), **config_header(model))
    return tensors, header, codes


def save_quantized(model: torch.nn.Module, path, spec: QuantSpec = QuantSpec(),
                   **meta: object) -> Path:
    """Save every weight matrix as `spec.bits`-bit codes (packed) + scales + zeros.

    Biases and normalization parameters stay float32. Safetensors, atomically,
    with the format, the spec, the model configuration and a payload sha256.
    (Chapter 5 codes the same codes with Huffman's code instead of fixed-width
    fields: `course_lib.combined.huffman_int8`.)
    """
    tensors, header, _ = quantized_tensors(model, spec)
    return write_container(path, tensors, header, **meta)


CodesReader = Callable[[dict[str, torch.Tensor], dict[str, str]],
                       dict[str, np.ndarray]]


def load_quantized(path, read_codes: CodesReader | None = None) -> torch.nn.Module:
    """Load `save_quantized`'s file: a CTCModel whose weights are ŵ = s (q - z).

    `read_codes(tensors, metadata)` gives every weight's codes by name, for a file
    that does not store them packed (chapter 5's Huffman-coded file).
    """
    coded: dict[str, np.ndarray] = {}  # every weight's codes, read once

    def decode(name, shape, tensors, meta):
        spec = QuantSpec(**json.loads(meta["spec"]))
        if read_codes is not None:
            if not coded:
                coded.update(read_codes(tensors, meta))
            codes = coded[name]
        elif f"{name}/codes" not in tensors:
            raise ValueError(f"{path}: {name} has no packed codes (a Huffman-coded "
                             "file? load it with combined.huffman_int8)")
        else:
            codes = unpack_bits(tensors[f"{name}/codes"].numpy(), spec.bits,
                                int(np.prod(shape)))
        return dequantize_codes(torch.from_numpy(codes).view(shape),
                                tensors[f"{name}/scale"], tensors[f"{name}/zero"], spec)

    return container_model(path, QFORMAT, decode)


# ----------------------------------------------------------------------------------
# Post-training quantization of activations: calibration on training data (3.2).

def _quant_inputs(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The layers whose *input* activations an integer engine would quantize."""
    kinds = (torch.nn.Conv1d, torch.nn.GRU, torch.nn.Linear)
    return {n: m for n, m in model.named_modules() if isinstance(m, kinds)}


@torch.no_grad()
def collect_activations(model: torch.nn.Module, examples: list,
                        max_values: int = 200_000, seed: int = 0
                        ) -> dict[str, torch.Tensor]:
    """A random sample of each quantized layer's input values on `examples`.

    Use training (calibration) utterances, never test ones. Padded frames are zero
    and are dropped from the sample so they do not pull the ranges towards 0.
    """
    gen = torch.Generator().manual_seed(seed)
    seen: dict[str, list[torch.Tensor]] = {n: [] for n in _quant_inputs(model)}
    hooks = [m.register_forward_pre_hook(
        lambda mod, args, name=n: seen[name].append(args[0].detach().flatten()))
        for n, m in _quant_inputs(model).items()]
    try:
        model.eval()
        for i in range(0, len(examples), 16):
            batch = collate(examples[i:i + 16])
            model(batch["feats"], batch["lengths"])
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for n, chunks in seen.items():
        x = torch.cat(chunks)
        x = x[x != 0]
        if x.numel() > max_values:
            x = x[torch.randperm(x.numel(), generator=gen)[:max_values]]
        out[n] = x
    return out


def calibrate(sample: torch.Tensor, spec: QuantSpec, method: str = "minmax"
              ) -> tuple[float, float]:
    """Clipping range [lo, hi] for activations from a sample.

    "minmax": the observed extremes. "percentile": the 0.01 and 99.99 percentiles.
    "mse": the range (shrunk from min/max in 5 % steps) whose fake quantization of
    the sample has the lowest mean squared error.
    """
    lo, hi = float(sample.min()), float(sample.max())
    if method == "minmax":
        return lo, hi
    if method == "percentile":
        q = torch.quantile(sample.float(), torch.tensor([1e-4, 1 - 1e-4]))
        return float(q[0]), float(q[1])
    if method == "mse":
        best, best_range = float("inf"), (lo, hi)
        tensor_spec = QuantSpec(spec.bits, spec.symmetric, per_channel=False,
                                full_range=spec.full_range)
        for k in range(20):
            f = 1.0 - 0.05 * k
            s, z = qparams(sample, tensor_spec, lo * f, hi * f)
            err = float(((dequantize(quantize(sample, s, z, tensor_spec), s, z)
                          - sample) ** 2).mean())
            if err < best:
                best, best_range = err, (lo * f, hi * f)
        return best_range
    raise ValueError(f"unknown calibration method {method!r}: minmax, percentile, mse")


class ActivationQuantizer:
    """Fake-quantizes each quantized layer's input with calibrated ranges (a context).

    `with ActivationQuantizer(model, ranges, spec): model(...)` runs the model as an
    integer engine would see its activations; outside the block it is unchanged.
    """

    def __init__(self, model: torch.nn.Module, ranges: dict[str, tuple[float, float]],
                 spec: QuantSpec = QuantSpec(8, symmetric=False, per_channel=False)
                 ) -> None:
        self.model, self.ranges, self.spec = model, ranges, spec
        self.hooks: list = []

    def _hook(self, name: str):
        spec = QuantSpec(self.spec.bits, self.spec.symmetric, per_channel=False,
                         full_range=self.spec.full_range)
        s, z = qparams(torch.zeros(1), spec, *self.ranges[name])

        def pre(mod, args):
            x = args[0]
            return (dequantize(quantize(x, s, z, spec), s, z).to(x.dtype),) + args[1:]
        return pre

    def __enter__(self) -> "ActivationQuantizer":
        for n, m in _quant_inputs(self.model).items():
            self.hooks.append(m.register_forward_pre_hook(self._hook(n)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self.hooks:
            h.remove()
        self.hooks = []


# ----------------------------------------------------------------------------------
# Quantization-aware training (3.2): weights fake-quantized in every forward pass.

class _FakeQuant(torch.nn.Module):
    def __init__(self, spec: QuantSpec) -> None:
        super().__init__()
        self.spec = spec

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return fake_quantize_ste(w, self.spec)


def add_weight_fake_quant(model: torch.nn.Module, spec: QuantSpec) -> None:
    """Make every weight matrix of `model` fake-quantized on use (in place, for QAT).

    Uses `torch.nn.utils.parametrize`: training updates the float "latent" weights,
    the forward pass sees their quantized values, and the straight-through estimator
    carries the gradient across the rounding. `remove_weight_fake_quant` (or
    `core.model.remove_parametrizations`) bakes the quantized weights in.
    """
    parametrize_matrices(model, lambda name, w: _FakeQuant(spec), unsafe=False)


remove_weight_fake_quant = remove_parametrizations  # after QAT: bake the weights in


# ----------------------------------------------------------------------------------
# k-means weight sharing (Deep Compression, 3.2).

def kmeans_1d(w: torch.Tensor, k: int, iters: int = 30) -> tuple[torch.Tensor,
                                                                   torch.Tensor]:
    """Cluster the values of w into k shared values; return (centroids, indices).

    Linear initialization between min and max (Han et al. found it keeps the rare
    large weights, which matter most), then Lloyd iterations.
    """
    x = w.detach().flatten().float()
    centroids = torch.linspace(float(x.min()), float(x.max()), k)
    for _ in range(iters):
        idx = (x[:, None] - centroids[None, :]).abs().argmin(1)
        sums = torch.zeros(k).index_add_(0, idx, x)
        counts = torch.zeros(k).index_add_(0, idx, torch.ones_like(x))
        moved = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
        if torch.equal(moved, centroids):
            break
        centroids = moved
    idx = (x[:, None] - centroids[None, :]).abs().argmin(1)
    return centroids, idx.view(w.shape)


class Shared(torch.nn.Module):
    """W = centroids[indices]: gradients reach each centroid summed over its weights."""

    def __init__(self, centroids: torch.Tensor, indices: torch.Tensor) -> None:
        super().__init__()
        self.centroids = torch.nn.Parameter(centroids.clone())
        self.register_buffer("indices", indices.clone())

    def forward(self, _w: torch.Tensor) -> torch.Tensor:
        return self.centroids[self.indices]


def share_weights(model: torch.nn.Module, k: int = 16) -> dict[str, int]:
    """Replace every weight matrix by k shared values (in place; trainable centroids).

    Returns {name: number of distinct values}. Fine-tune with `finetune` to train
    the centroids (the indices stay fixed), then `save_codebook` to store it.
    """
    shared = parametrize_matrices(model, lambda name, w: Shared(*kmeans_1d(w, k)))
    return {name: int(p.centroids.numel()) for name, p in shared.items()}


def save_codebook(model: torch.nn.Module, path, **meta: object):
    """Store a weight-shared model: per tensor a codebook (fp32) + packed indices."""
    tensors: dict[str, torch.Tensor] = {}
    layout: dict[str, list[int]] = {}
    shared = {}
    for mname, module in model.named_modules():
        for attr, plist in getattr(module, "parametrizations", {}).items():
            for p in plist:
                if isinstance(p, Shared):
                    shared[f"{mname}.{attr}".lstrip(".")] = p
    for name, w in model.state_dict().items():
        if ".parametrizations." in name:
            continue
        layout[name] = list(w.shape)
        tensors[f"{name}/dense"] = w.detach().float().contiguous()
    for name, p in shared.items():
        bits = max(1, math.ceil(math.log2(p.centroids.numel())))
        layout[name] = list(p.indices.shape)
        tensors[f"{name}/codebook"] = p.centroids.detach().float().contiguous()
        tensors[f"{name}/indices"] = torch.from_numpy(
            pack_bits(p.indices.flatten().numpy(), bits))
    header = dict(format=CFORMAT, layout=json.dumps(layout), **config_header(model))
    return write_container(path, tensors, header, **meta)


def load_codebook(path) -> torch.nn.Module:
    """Load `save_codebook`'s file as a plain CTCModel (weights = codebook[indices])."""
    def decode(name, shape, tensors, meta):
        book = tensors[f"{name}/codebook"]
        bits = max(1, math.ceil(math.log2(book.numel())))
        idx = unpack_bits(tensors[f"{name}/indices"].numpy(), bits, int(np.prod(shape)))
        return book[torch.from_numpy(idx.astype(np.int64))].view(shape)

    return container_model(path, CFORMAT, decode)

"""Shards of chapter 3.2's int8 model: quantized codes, split for on-demand loading.

A codec for chapter 3.5's shards (`splitting.shards.Codec`): each weight matrix
is stored as its codes q - qmin (uint8, one per byte, so that a part is used
straight from its memory map) plus `<name>/scale` and `<name>/zero` in the same
part, the codes that chapter 3.2's file holds (`quantization.weight_codes`); a
part is dequantized to float32 when it is loaded, ŵ = s (q + qmin - z), exactly
as `quantization.load_quantized` does. Importing this module registers the codec,
so every reader of shards (the verifier, `OnDemand`, the pipeline) decodes them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..core.model import CTCModel, is_weight_matrix
from ..techniques.quantization.quant import QuantSpec, dequantize_codes, weight_codes
from ..techniques.splitting.shards import register_codec, write_shards

KEY = "quant"  # the index field that records the quantization


@dataclass(frozen=True)
class QuantCodec:
    """Weight matrices as `spec`'s integer codes with their scales and zeros."""

    spec: QuantSpec
    key: str = KEY

    def config(self) -> dict:
        """The quantization, as the index records it."""
        return asdict(self.spec)

    def encode(self, model: CTCModel) -> dict[str, torch.Tensor]:
        """Every weight matrix as codes + scale + zero; other tensors as they are."""
        if self.spec.qmax - self.spec.qmin > 255:
            raise ValueError(f"shards hold codes of at most 8 bits, got "
                             f"{self.spec.bits}")
        codes = weight_codes(model, self.spec)  # the codes chapter 3.2's files hold
        out = {}
        for name, t in model.state_dict().items():
            if name in codes:
                q, scale, zero = codes[name]
                out[name] = q.to(torch.uint8).contiguous()
                out[f"{name}/scale"] = scale.flatten().float().contiguous()
                out[f"{name}/zero"] = zero.flatten().float().contiguous()
            else:
                out[name] = t.detach().contiguous()
        return out

    def decode(self, stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A part's stored tensors -> the model's: codes dequantized (one float32
        copy, no int64 one), float tensors as they are."""
        out = {}
        for name, t in stored.items():
            if name.endswith(("/scale", "/zero")):
                continue
            if f"{name}/scale" in stored:
                t = dequantize_codes(t, stored[f"{name}/scale"], stored[f"{name}/zero"],
                                     self.spec)
            out[name] = t
        return out

    def stored_shapes(self, name: str, t: torch.Tensor
                      ) -> dict[str, tuple[list[int], str]]:
        """Codes (uint8) and a scale and zero per row, or the tensor as it is."""
        if not is_weight_matrix(t):
            return {name: (list(t.shape), str(t.dtype).removeprefix("torch."))}
        channels = [t.shape[0] if self.spec.per_channel else 1]
        return {name: (list(t.shape), "uint8"), f"{name}/scale": (channels, "float32"),
                f"{name}/zero": (channels, "float32")}


register_codec(KEY, lambda config: QuantCodec(QuantSpec(**config)))


def write_quantized_shards(model: CTCModel, folder: str | os.PathLike,
                           spec: QuantSpec, parts: dict[str, list[str]] | None = None
                           ) -> Path:
    """`write_shards` with every weight matrix stored as `spec`'s codes (ch. 3.5)."""
    return write_shards(model, folder, parts, codec=QuantCodec(spec))

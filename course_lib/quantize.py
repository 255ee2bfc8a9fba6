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

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class QuantSpec:
    """How to quantize one tensor."""

    bits: int = 8
    symmetric: bool = True
    per_channel: bool = True  # one scale per output channel (dim 0)

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 16:
            raise ValueError(f"bits must be in 2..16, got {self.bits}")

    @property
    def qmin(self) -> int:
        """Smallest integer code."""
        return -(2 ** (self.bits - 1) - 1) if self.symmetric else 0

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
        scale = torch.maximum(-lo, hi) / spec.qmax
        zero = torch.zeros_like(scale)
    else:
        scale = (hi - lo) / (spec.qmax - spec.qmin)
        zero = torch.round(-lo / scale.clamp(min=tiny))
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # all-zero tensor
    return scale, zero


def quantize(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor,
             spec: QuantSpec) -> torch.Tensor:
    """q = clamp(round(w / s) + z, q_min, q_max), as int32 codes."""
    q = torch.round(w / scale) + zero
    return q.clamp(spec.qmin, spec.qmax).to(torch.int32)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor
               ) -> torch.Tensor:
    """ŵ = s (q - z)."""
    return scale * (q.float() - zero)


def fake_quantize(w: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Quantize and dequantize: the float values an integer model really computes with."""
    scale, zero = qparams(w, spec)
    return dequantize(quantize(w.detach().float(), scale, zero, spec), scale, zero)


class _STE(torch.autograd.Function):
    """Straight-through estimator: forward rounds, backward passes the gradient."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor,
                qmin: int, qmax: int) -> torch.Tensor:
        q = torch.round(w / scale) + zero
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

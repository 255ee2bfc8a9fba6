"""Lab 3.2's checks: the affine quantizer, dequantization, fake quantization.

Each check runs the student's function on small hand-made cases (`run_cases`) and
raises `CheckFailed` with the first failing case (spec §5).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ...core.checking import run_cases
from . import quant as reference  # the package's own functions, to compare with
from .quant import QuantSpec, qparams


def _codes_close(got: Any, want: tuple) -> bool:
    """(q, scale, zero) agree with the reference `want` = (q, s, z, w): scales within
    1e-6, zeros equal, codes equal, except that a code may differ by one where w / s
    sits on a rounding boundary (w / s and w * (1 / s) round differently there)."""
    if not (isinstance(got, tuple) and len(got) == 3):
        return False
    q, s, z = (torch.as_tensor(t) for t in got)
    wq, ws, wz, w = want
    if q.shape != wq.shape or s.numel() != ws.numel() or z.numel() != wz.numel():
        return False
    if not torch.allclose(s.flatten().double(), ws.flatten().double(), rtol=1e-6):
        return False
    if not torch.equal(z.flatten().round().long(), wz.flatten().round().long()):
        return False
    scaled = w.double() / ws.double().reshape(ws.shape + (1,) * (w.ndim - ws.ndim))
    boundary = ((scaled - scaled.floor()) - 0.5).abs() < 1e-4  # x.5: either way
    diff = (q.long() - wq.long()).abs()
    return bool((diff == 0).all() or ((diff <= 1) & boundary)[diff > 0].all())


def check_quantize(quantize: Callable[[torch.Tensor, int, bool], tuple]) -> None:
    """Lab 3.2: `quantize(w, bits, per_channel) -> (q, scale, zero)`, asymmetric."""
    def ref(w: torch.Tensor, bits: int, pc: bool) -> tuple:  # (q, s, z, w)
        spec = QuantSpec(bits, symmetric=False, per_channel=pc)
        s, z = qparams(w, spec)
        return reference.quantize(w, s, z, spec), s, z, w

    gen = torch.Generator().manual_seed(0)
    w = torch.randn(5, 7, generator=gen) * torch.tensor([0.1, 1, 3, 0.5, 2])[:, None]

    def via_torch(pc: bool) -> tuple:  # torch's own kernels on the same (s, z)
        s, z = ref(w, 8, pc)[1:3]
        if pc:
            q = torch.quantize_per_channel(w, s.flatten().double(), z.flatten().long(),
                                           0, torch.quint8)
        else:
            q = torch.quantize_per_tensor(w, float(s), int(z), torch.quint8)
        return q.int_repr().to(torch.int32), s, z, w

    hand = torch.tensor([-1.0, 0.0, 0.6, 2.0])
    cases = [
        ("4-bit on [-1, 2]: s = 3/15, z = 5", (hand, 4, False),
         (torch.tensor([0, 5, 8, 15]), torch.tensor(0.2), torch.tensor(5.0), hand)),
        ("a constant positive tensor (range widened to include 0)",
         (torch.full((3,), 0.7), 8, False), ref(torch.full((3,), 0.7), 8, False)),
        ("an all-negative tensor", (-torch.rand(4, 3, generator=gen) - 0.5, 6, False),
         None),
        ("an all-zero tensor (zero range: no division by zero)",
         (torch.zeros(2, 3), 8, True), ref(torch.zeros(2, 3), 8, True)),
        ("8-bit per-tensor matches torch.quantize_per_tensor", (w, 8, False),
         via_torch(False)),
        ("8-bit per-channel matches torch.quantize_per_channel", (w, 8, True),
         via_torch(True)),
    ]
    cases[2] = (cases[2][0], cases[2][1], ref(*cases[2][1]))
    for bits in (2, 3, 5, 7):
        cases.append((f"{bits}-bit per-channel on random rows", (w, bits, True),
                      ref(w, bits, True)))
    run_cases("quantize", quantize, cases, compare=_codes_close)


def check_dequantize(dequantize: Callable[..., torch.Tensor]) -> None:
    """Lab 3.2: `dequantize(q, scale, zero) -> s (q - z)`, and the s/2 error bound."""
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(4, 9, generator=gen)
    spec = QuantSpec(5, symmetric=False, per_channel=True)
    s, z = qparams(w, spec)
    q = reference.quantize(w, s, z, spec)

    def bound(got: Any, _: Any) -> bool:
        return isinstance(got, torch.Tensor) and bool(
            ((got - w).abs() <= s / 2 + 1e-6).all())

    cases = [("codes [0, 5, 8, 15], s = 0.2, z = 5",
              (torch.tensor([0, 5, 8, 15]), torch.tensor(0.2), torch.tensor(5.0)),
              torch.tensor([-1.0, 0.0, 0.6, 2.0]))]
    run_cases("dequantize", dequantize, cases,
              compare=lambda g, e: isinstance(g, torch.Tensor) and torch.allclose(
                  g.float(), e, atol=1e-6))
    run_cases("dequantize (round trip)", dequantize,
              [("5-bit per-channel round trip is within s/2 of w", (q, s, z), None)],
              compare=bound)


def check_fake_quant_ste(fake_quant: Callable[..., torch.Tensor]) -> None:
    """Lab 3.2: `fake_quant(w, scale, zero, qmin, qmax)`: round forward, STE back."""

    def trial(values: list[float], scale: float, zero: float, qmin: int, qmax: int
              ) -> tuple:
        w = torch.tensor(values, requires_grad=True)
        out = fake_quant(w, torch.tensor(scale), torch.tensor(zero), qmin, qmax)
        out.sum().backward()
        grad = None if w.grad is None else [round(g, 6) for g in w.grad.tolist()]
        return [round(v, 6) for v in out.detach().tolist()], grad

    cases = [
        ("forward rounds to the grid", ([0.26, -0.49, 0.04], 0.1, 0.0, -10, 10),
         ([0.3, -0.5, 0.0], [1.0, 1.0, 1.0])),
        ("gradient passes straight through rounding", ([0.12, 0.77], 0.5, 0.0, -4, 4),
         ([0.0, 1.0], [1.0, 1.0])),
        ("clipped values get no gradient", ([-3.0, 0.2, 5.0], 0.1, 0.0, -10, 10),
         ([-1.0, 0.2, 1.0], [0.0, 1.0, 0.0])),
        # codes 0..15 with z = 3 represent [-0.3, 1.2]: the zero point moves the
        # clipping range (w / s + z is clipped, then z is subtracted again)
        ("a zero point z = 3 shifts the clipping range",
         ([0.26, -0.49, 1.3], 0.1, 3.0, 0, 15), ([0.3, -0.3, 1.2], [1.0, 0.0, 0.0])),
    ]
    run_cases("fake_quant", trial, cases)

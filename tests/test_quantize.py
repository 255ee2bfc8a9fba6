"""Chapter 3.2: affine quantization from scratch, checked against PyTorch's kernels."""

import pytest
import torch

from course_lib import quantize as Q

GEN = torch.Generator().manual_seed(0)
W = torch.randn(6, 10, generator=GEN) * torch.linspace(0.1, 2.0, 6)[:, None]


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_round_trip_error_is_at_most_half_a_step(symmetric, per_channel, bits):
    spec = Q.QuantSpec(bits, symmetric, per_channel)
    scale, zero = Q.qparams(W, spec)
    q = Q.quantize(W, scale, zero, spec)
    assert int(q.min()) >= spec.qmin and int(q.max()) <= spec.qmax
    err = (Q.dequantize(q, scale, zero) - W).abs()
    assert bool((err <= scale / 2 + 1e-6).all())
    zero_code = Q.quantize(torch.zeros(1), scale.flatten()[0], zero.flatten()[0], spec)
    assert Q.dequantize(zero_code, scale.flatten()[0], zero.flatten()[0]).item() == 0.0


def test_codes_and_ranges():
    assert (Q.QuantSpec(8, True).qmin, Q.QuantSpec(8, True).qmax) == (-127, 127)
    assert (Q.QuantSpec(4, False).qmin, Q.QuantSpec(4, False).qmax) == (0, 15)
    with pytest.raises(ValueError, match="bits"):
        Q.QuantSpec(1)
    s, z = Q.qparams(torch.tensor([0.5, 2.0]), Q.QuantSpec(8, False, False))
    # the range is stretched to include 0: [0, 2] over 255 steps
    assert s.item() == pytest.approx(2.0 / 255) and z.item() == 0
    s, z = Q.qparams(torch.zeros(3, 4), Q.QuantSpec(8))  # all-zero rows stay exact
    assert torch.equal(Q.fake_quantize(torch.zeros(3, 4), Q.QuantSpec(8)),
                       torch.zeros(3, 4))


def test_agrees_with_torch_quantize_per_tensor_and_per_channel():
    spec = Q.QuantSpec(8, symmetric=False, per_channel=False)
    s, z = Q.qparams(W, spec)
    ref = torch.quantize_per_tensor(W, float(s), int(z), torch.quint8).int_repr()
    assert torch.equal(Q.quantize(W, s, z, spec), ref.to(torch.int32))
    spec = Q.QuantSpec(8, symmetric=True, per_channel=True)
    s, z = Q.qparams(W, spec)
    ref = torch.quantize_per_channel(W, s.flatten().double(), z.flatten().long(), 0,
                                     torch.qint8).int_repr()
    assert torch.equal(Q.quantize(W, s, z, spec), ref.to(torch.int32))


def test_straight_through_estimator():
    w = torch.tensor([-3.0, -0.4, 0.2, 0.9, 5.0], requires_grad=True)
    out = Q._STE.apply(w, torch.tensor(0.1), torch.tensor(0.0), -10, 10)
    assert out.tolist() == pytest.approx([-1.0, -0.4, 0.2, 0.9, 1.0])
    out.sum().backward()
    assert w.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # clipped ends get no gradient
    v = W.clone().requires_grad_(True)
    Q.fake_quantize_ste(v, Q.QuantSpec(4)).pow(2).sum().backward()
    assert v.grad is not None and torch.isfinite(v.grad).all()


def test_error_falls_with_bits_and_the_articles_formula_is_not_quantization():
    errs = [Q.quantization_error(W, Q.QuantSpec(b))["sqnr_db"] for b in (2, 4, 6, 8)]
    assert errs == sorted(errs) and errs[-1] - errs[-2] > 9  # ~6 dB per bit
    per_tensor = Q.quantization_error(W, Q.QuantSpec(4, per_channel=False))["mse"]
    assert Q.quantization_error(W, Q.QuantSpec(4))["mse"] < per_tensor
    assert not Q.naive_power_of_two(0.3 * W, 8).any()  # round(W / 2^8): all zeros

"""Chapter 3.2: affine quantization from scratch, checked against PyTorch's kernels."""


import pytest
import torch

from course_lib import quantization as Q
from course_lib.techniques.quantization import quant
from course_lib.zoo import quantized

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
    out = quant._STE.apply(w, torch.tensor(0.1), torch.tensor(0.0), -10, 10)
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


def small_model():
    import course_lib as cl

    torch.manual_seed(0)
    return cl.CTCModel(cl.ModelConfig(conv_channels=16, rnn_hidden=12,
                                      rnn_layers=2)).eval()


def test_our_codes_equal_the_int8_engines():
    model = small_model()
    engine = Q.int8_engine(model)
    codes = Q.engine_weights(engine)
    params = dict(model.named_parameters())
    assert len(codes) == 2 * 2 * 2 + 1  # GRU ih/hh x 2 directions x 2 layers + head
    for name, q in codes.items():
        w = params[name].detach()
        s, z = Q.qparams(w, Q.ENGINE_SPEC)
        assert torch.equal(Q.quantize(w, s, z, Q.ENGINE_SPEC), q.to(torch.int32)), name
    x, n = torch.randn(2, 40, 80), torch.tensor([40, 25])
    with torch.no_grad():
        gap = (engine(x, n)[0] - model(x, n)[0]).abs().max()
    assert 0 < gap < 0.5  # int8 kernels: close to float, not identical


@pytest.mark.parametrize("spec", [Q.QuantSpec(8), Q.QuantSpec(4, symmetric=False),
                                  Q.QuantSpec(3, per_channel=False)],
                         ids=["int8", "4bit-asym", "3bit-per-tensor"])
def test_quantized_file_round_trip_and_size(tmp_path, spec):
    import course_lib as cl

    model = small_model()
    path = Q.save_quantized(model, tmp_path / "m.q", spec)
    back = Q.load_quantized(path)
    for name, w in model.state_dict().items():
        want = Q.fake_quantize(w, spec) if w.ndim >= 2 else w
        assert torch.allclose(back.state_dict()[name], want, atol=1e-6), name
    # bits/32 of the weights, plus per-row scales, float biases and the header
    dense = cl.save_model(model, tmp_path / "d.safetensors").stat().st_size
    weights = sum(w.numel() for w in model.state_dict().values() if w.ndim >= 2)
    rows = sum(w.shape[0] for w in model.state_dict().values() if w.ndim >= 2)
    assert path.stat().st_size < spec.bits / 8 * weights + 8 * rows + (
        dense - 4 * weights) + 4096


def test_bad_quantized_files_are_refused(tmp_path):
    path = Q.save_quantized(small_model(), tmp_path / "m.q")
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF
    (tmp_path / "bad.q").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        Q.load_quantized(tmp_path / "bad.q")
    (tmp_path / "cut.q").write_bytes(bytes(data[:100]))
    with pytest.raises(ValueError, match="truncated or corrupted"):
        Q.load_quantized(tmp_path / "cut.q")


def test_kmeans_weight_sharing_round_trips_through_its_file(tmp_path):
    c, idx = Q.kmeans_1d(torch.tensor([0.0, 0.1, 5.0, 5.1, 0.05]), 2)
    assert c.tolist() == pytest.approx([0.05, 5.05]) and idx.tolist() == [0, 0, 1, 1, 0]
    model = small_model()
    Q.share_weights(model, 4)
    x, n = torch.randn(2, 30, 80), torch.tensor([30, 20])
    with torch.no_grad():
        want = model(x, n)[0]
    back = Q.load_codebook(Q.save_codebook(model, tmp_path / "m.cb"))
    for name, p in back.named_parameters():
        if p.ndim >= 2:
            assert torch.unique(p).numel() <= 4, name
    with torch.no_grad():
        assert torch.allclose(back(x, n)[0], want, atol=1e-6)


def test_qat_parametrization_bakes_weights_onto_the_grid():
    model = small_model()
    spec = Q.QuantSpec(3)
    Q.add_weight_fake_quant(model, spec)
    Q.remove_weight_fake_quant(model)
    for name, p in model.named_parameters():
        if p.ndim >= 2:
            rows = p.detach().reshape(p.shape[0], -1)
            assert max(torch.unique(r).numel() for r in rows) <= 7, name  # codes -3..3


@pytest.mark.parametrize("run", ["qat", "kmeans"])
def test_trained_results_are_cached_by_config(cache, tiny_corpus, monkeypatch, run):
    # The tiny corpus stands in for the training data and a constant for the dev WER,
    # so that only the caching contract is under test: train once, then load.
    import course_lib as cl

    examples = cl.featurize(tiny_corpus, "train", limit=8, progress=False)
    monkeypatch.setattr(quantized, "train_examples", lambda limit, progress: examples)
    monkeypatch.setattr(quantized, "dev_wer", lambda model: 0.5)

    def make(steps):
        if run == "qat":
            return quantized.qat_baseline(4, steps, 1e-4, eval_every=1, progress=False)
        return quantized.shared_baseline(4, steps, eval_every=1, progress=False)

    model, path, before, history = make(2)
    assert before == 0.5 and [h["step"] for h in history] == [1, 2]
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    monkeypatch.setattr(quantized, "finetune",
                        lambda *a, **k: pytest.fail("trained"))
    again, path2, _, history2 = make(2)  # loaded from the file, not trained again
    assert path2 == path and history2 == history
    assert all(torch.equal(p, weights[n]) for n, p in again.named_parameters())
    with pytest.raises(pytest.fail.Exception, match="trained"):
        make(3)  # another budget is another result: it trains

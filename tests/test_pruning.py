"""Chapter 3.1: magnitude masks, the cubic schedule, pruning-aware fine-tuning and
sparse files (sizes, round trips, refusal of bad files)."""

import numpy as np
import pytest
import torch

import course_lib as cl
from course_lib import pruning as P
from course_lib import sparse_io as S

SMALL = cl.ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=2)


def small_model(seed: int = 0) -> cl.CTCModel:
    torch.manual_seed(seed)
    return cl.CTCModel(SMALL).eval()


def test_mask_prunes_smallest_magnitudes_exactly():
    w = torch.tensor([[0.5, -0.1, 2.0], [-3.0, 0.05, -0.2]])
    keep = P.magnitude_mask(w, 0.5)
    assert keep.tolist() == [[True, False, True], [True, False, False]]
    assert P.magnitude_mask(w, 0.0).all() and not P.magnitude_mask(w, 1.0).any()


def test_mask_ties_are_broken_by_position():
    w = torch.ones(2, 4)  # all equal: the first half (by flat index) goes first
    assert P.magnitude_mask(w, 0.5).flatten().tolist() == [False] * 4 + [True] * 4
    with pytest.raises(ValueError, match="sparsity"):
        P.magnitude_mask(w, 1.5)


def test_layerwise_vs_global():
    weights = {"a": torch.tensor([1.0, 2.0, 3.0, 4.0]),
               "b": torch.tensor([10.0, 20.0, 30.0, 40.0])}
    lw = P.layerwise_masks(weights, 0.5)
    assert lw["a"].sum() == 2 and lw["b"].sum() == 2
    gl = P.global_masks(weights, 0.5)  # the four smallest are all in "a"
    assert gl["a"].sum() == 0 and gl["b"].all()
    assert P.threshold(weights, gl) == 4.0
    assert P.sparsity_of(gl) == 0.5


def test_masks_agree_with_torch_prune():
    import torch.nn.utils.prune as tp

    model = small_model()
    mine = P.masks_for(model, 0.7, "global")
    ref = small_model()
    params = [(m, n) for m in ref.modules()
              for n, p in m.named_parameters(recurse=False) if p.ndim >= 2]
    tp.global_unstructured(params, pruning_method=tp.L1Unstructured, amount=0.7)
    names = {id(m): prefix for prefix, m in ref.named_modules()}
    for m, n in params:
        full = f"{names[id(m)]}.{n}".lstrip(".")
        assert torch.equal(getattr(m, n + "_mask").bool(), mine[full]), full
    for name, mask in P.masks_for(model, 0.3, "layer").items():
        module, _, attr = name.rpartition(".")
        w = dict(model.named_parameters())[name].detach().clone()
        holder = torch.nn.Module()
        holder.weight = torch.nn.Parameter(w)
        tp.l1_unstructured(holder, "weight", amount=0.3)
        assert torch.equal(holder.weight_mask.bool(), mask), name


def test_biases_and_norms_are_untouched():
    model = small_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    masks = P.prune_oneshot(model, 0.9, "layer")
    for n, p in model.named_parameters():
        if p.ndim < 2:
            assert n not in masks and torch.equal(p, before[n]), n
    assert abs(P.model_sparsity(model) - 0.9) < 0.01


def test_cubic_schedule():
    s = [P.cubic_sparsity(t, 0.0, 0.9, t0=10, n=4, dt=5) for t in range(0, 45)]
    assert s[0] == s[9] == 0.0 and s[10] == 0.0
    assert s[30] == pytest.approx(0.9) and s[44] == pytest.approx(0.9)
    assert all(a <= b for a, b in zip(s, s[1:]))  # never decreases
    assert s[12] == s[10] and s[15] > s[14]  # changes only every dt steps
    # s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3 at t = t0 + dt
    assert s[15] == pytest.approx(0.9 - 0.9 * (1 - 5 / 20) ** 3)


def test_prune_finetune_keeps_masks_and_reaches_target(tiny_corpus):
    train = cl.featurize(tiny_corpus, "train", progress=False)
    for schedule in ("cubic", "oneshot"):
        model = small_model()
        cfg = P.PruneConfig(sparsity=0.8, schedule=schedule, every=2,
                            finetune=cl.FinetuneConfig(steps=8, batch_size=8, lr=1e-2,
                                                       threads=1))
        masks, hist = P.prune_finetune(model, train, cfg, eval_every=4, progress=False)
        assert [h["step"] for h in hist] == [4, 8]
        assert hist[-1]["sparsity"] == pytest.approx(0.8, abs=1e-3)
        for n, p in P.prunable(model).items():
            assert not p[~masks[n]].any(), n  # pruned weights stayed exactly zero
    assert hist[0]["sparsity"] == pytest.approx(0.8, abs=1e-3)  # oneshot: from step 1


@pytest.mark.parametrize("bits", [1, 3, 4, 8])
def test_pack_bits_round_trip(bits):
    codes = np.random.default_rng(bits).integers(0, 1 << bits, size=37)
    packed = S.pack_bits(codes, bits)
    assert len(packed) == -(-37 * bits // 8)
    assert S.unpack_bits(packed, bits, 37).tolist() == codes.tolist()
    with pytest.raises(ValueError, match="fit"):
        S.pack_bits(np.array([1 << bits]), bits)


@pytest.mark.parametrize("encoding", S.ENCODINGS)
def test_encodings_round_trip(encoding):
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(20, 7, 3, generator=gen)
    w[torch.rand(w.shape, generator=gen) < 0.9] = 0.0
    w[0] = 0.0  # an empty row, and a gap longer than any 4-bit code
    w[-1, -1, -1] = 1.5  # the very last entry
    for bits in (2, 4):
        assert torch.equal(S.decode(S.encode(w, encoding, bits), tuple(w.shape),
                                    encoding, bits), w)
    assert torch.equal(S.decode(S.encode(torch.zeros(3, 4), encoding), (3, 4),
                                encoding), torch.zeros(3, 4))


def test_relative_indices_insert_fillers():
    w = torch.zeros(40)
    w[[0, 1, 35]] = torch.tensor([1.0, 2.0, 3.0])
    parts = S.encode(w, "relative", bits=4)  # steps of at most 16
    # gaps 1, 1, 34 -> 34 = 16 + 16 + 2: two fillers before the third weight
    assert parts["values"].tolist() == [1.0, 2.0, 0.0, 0.0, 3.0]
    assert S.unpack_bits(parts["codes"], 4, 5).tolist() == [0, 0, 15, 15, 1]


def test_sparse_file_is_smaller_and_loads_back(tmp_path):
    model = small_model()
    P.prune_oneshot(model, 0.9, "global")
    dense = cl.save_model(model, tmp_path / "dense.safetensors").stat().st_size
    x, n = torch.randn(2, 50, 80), torch.tensor([50, 31])
    for enc in S.ENCODINGS:
        path = S.save_sparse(model, tmp_path / f"{enc}.sparse", encoding=enc, note="x")
        assert path.stat().st_size < 0.4 * dense, enc
        back = S.load_sparse(path)
        for (k, a), b in zip(model.state_dict().items(), back.state_dict().values()):
            assert torch.equal(a, b), (enc, k)
        assert torch.equal(back(x, n)[0], model(x, n)[0])


def test_bad_sparse_files_are_refused(tmp_path):
    model = small_model()
    P.prune_oneshot(model, 0.8)
    path = S.save_sparse(model, tmp_path / "m.sparse")
    data = path.read_bytes()
    bad = tmp_path / "bad.sparse"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        S.load_sparse(bad)
    flipped = bytearray(data)
    flipped[-3] ^= 0xFF  # a byte of the last tensor's payload
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="checksum mismatch"):
        S.load_sparse(bad)
    with pytest.raises(ValueError, match="format"):
        S.load_sparse(cl.save_model(model, tmp_path / "dense.safetensors"))
    other = cl.CTCModel(cl.ModelConfig(conv_channels=16, rnn_hidden=10, rnn_layers=2))
    with pytest.raises(ValueError, match=r"tensor rnn\.fwd\.0\.weight_ih_l0 has shape"):
        S.load_sparse(path, model=other)
    deeper = cl.CTCModel(cl.ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=3))
    with pytest.raises(ValueError,
                       match=r"in the model but not the file\s+\['rnn\.bwd\.2"):
        S.load_sparse(path, model=deeper)


def test_a_schedule_that_cannot_reach_the_target_is_refused():
    cfg = P.PruneConfig(sparsity=0.8, every=10,
                        finetune=cl.FinetuneConfig(steps=8, threads=1))
    with pytest.raises(ValueError, match="lower `every`"):
        P.prune_finetune(small_model(), [], cfg, progress=False)
    with pytest.raises(ValueError, match="scope"):
        P.PruneConfig(scope="rows")

"""Chapter 4: Deep Compression (prune, share the kept weights, Huffman-code the
relative indices and the codebook indices), saved and loaded exactly."""

import dataclasses

import pytest
import torch

import course_lib as cl
from course_lib import deepcomp as D, pruning
from course_lib.core.losses import ctc_loss
from course_lib.zoo import deepcomp as Z, shipped_file

SHIPPED, STUDENT_SHIPPED = shipped_file("deepcomp"), shipped_file("student-deep")

SMALL = cl.ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=2)


def pruned_shared(k: int = 4, sparsity: float = 0.8) -> cl.CTCModel:
    torch.manual_seed(0)
    m = cl.CTCModel(SMALL).eval()
    pruning.prune_oneshot(m, sparsity, "layer")
    D.share_pruned_weights(m, k)
    return m


def test_sharing_keeps_the_mask_and_k_values_per_matrix():
    m = pruned_shared(k=4)
    baked = D.bake(m)
    for name, w in pruning.prunable(baked).items():
        nz = w[w != 0]
        assert torch.unique(nz).numel() <= 4, name
    assert abs(pruning.model_sparsity(baked) - 0.8) < 0.01


def test_centroids_train_and_pruned_weights_stay_zero():
    m = pruned_shared(k=4)
    w0 = m.convs[1].weight.detach().clone()  # (no deepcopy: see `bake`)
    torch.manual_seed(1)
    x, n = torch.randn(2, 40, 80), torch.tensor([40, 30])
    batch = dict(feats=x, lengths=n, targets=torch.tensor([3, 4, 5, 3, 4]),
                 target_lengths=torch.tensor([3, 2]))
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    m.train()
    ctc_loss(m, batch).backward()
    opt.step()
    w1 = D.bake(m).state_dict()["convs.1.weight"]
    assert torch.equal(w0 == 0, w1 == 0)  # the same mask
    assert not torch.equal(w0, w1)  # the shared values moved
    assert torch.unique(w1[w1 != 0]).numel() <= 4


@pytest.mark.parametrize("huffman", [True, False])
def test_round_trip_is_exact(tmp_path, huffman):
    m = D.bake(pruned_shared())
    path = D.save_deep(m, tmp_path / "m.dc", gap_bits=3, huffman=huffman,
                       dense_dtype="float32")
    back = D.load_deep(path)
    got = back.state_dict()
    for k, a in m.state_dict().items():
        assert torch.equal(a, got[k]), k


def test_float16_dense_parts_and_a_smaller_huffman_file(tmp_path):
    m = D.bake(pruned_shared())
    fixed = D.save_deep(m, tmp_path / "a.dc", huffman=False)
    coded = D.save_deep(m, tmp_path / "b.dc", huffman=True)
    assert coded.stat().st_size < fixed.stat().st_size
    back = D.load_deep(coded)
    got = back.state_dict()
    for k, a in m.state_dict().items():
        b = got[k]
        tol = 0 if a.ndim >= 2 else 1e-3 * (1 + a.abs().max().item())
        assert (a - b).abs().max().item() <= tol, k


@pytest.mark.parametrize("huffman", [True, False])
def test_a_dense_shared_model_stores_no_positions(tmp_path, huffman):
    torch.manual_seed(0)
    m = cl.CTCModel(SMALL).eval()
    D.share_pruned_weights(m, 8)  # no zero anywhere: every weight is kept
    D.bake(m)
    path = D.save_deep(m, tmp_path / "d.dc", huffman=huffman, dense_dtype="float32")
    back = D.load_deep(path).state_dict()
    for k, a in m.state_dict().items():
        assert torch.equal(a, back[k]), k
    tensors, meta = cl.modelfile.read_container(path, D.FORMAT)
    assert not any(k.startswith("gaps/") and v.numel() for k, v in tensors.items())
    # one stored index per weight, nothing for positions: k = 8 values take 3 bits
    # (Huffman) or a 4-bit field (log2(k + 1): one code is reserved for fillers)
    n = sum(w.numel() for w in m.state_dict().values() if w.ndim >= 2)
    data = tensors["symbols/data" if huffman else "symbols/packed"]
    assert 8 * data.numel() <= (3 if huffman else 4) * n + 8
    # a mixed model: sparse and dense matrices in one file
    torch.manual_seed(0)
    mixed = cl.CTCModel(SMALL).eval()
    pruning.prune_oneshot(mixed, 0.8, "layer")
    with torch.no_grad():
        mixed.head.weight.normal_()  # the head dense again
    D.share_pruned_weights(mixed, 4)
    D.bake(mixed)
    back = D.load_deep(D.save_deep(mixed, tmp_path / "x.dc", huffman=huffman,
                                   dense_dtype="float32")).state_dict()
    for k, a in mixed.state_dict().items():
        assert torch.equal(a, back[k]), k


def test_bad_input_is_refused(tmp_path):
    m = pruned_shared()
    with pytest.raises(ValueError, match="bake"):
        D.save_deep(m, tmp_path / "x.dc")
    dense = cl.CTCModel(SMALL)
    with pytest.raises(ValueError, match="share the weights"):
        D.save_deep(dense, tmp_path / "x.dc")
    path = D.save_deep(D.bake(m), tmp_path / "y.dc")
    data = bytearray(path.read_bytes())
    data[-7] ^= 0x55
    (tmp_path / "z.dc").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        D.load_deep(tmp_path / "z.dc")


def test_shipped_results_match_the_shipped_baseline_and_the_defaults():
    from course_lib.core.utils import config_hash, sha256_file
    from course_lib.techniques.pruning.sparse_io import sparse_metadata
    from course_lib.zoo.pruned import LONG, LONG_EVAL_EVERY

    PRUNED = shipped_file("pruned90")

    assert PRUNED.exists() and SHIPPED.exists(), \
        "run `python -m course_lib deep-compress --ship`"
    pruned_key = config_hash(dict(
        baseline=sha256_file(shipped_file("baseline")), prune=dataclasses.asdict(LONG),
        train_limit=None, encoding="relative", bits=8, eval_every=LONG_EVAL_EVERY))
    assert sparse_metadata(PRUNED)["result_key"] == pruned_key, (
        "the shipped pruned model was made from another baseline or recipe: remake it "
        "with `python -m course_lib deep-compress --ship`")
    want = Z.result_key(Z.DeepConfig(), shipped_file("baseline"))
    assert D.deep_metadata(SHIPPED)["result_key"] == want, (
        "the shipped Deep Compression model was made from another baseline or recipe: "
        "remake it with `python -m course_lib deep-compress --ship`")
    assert Z.result_key(Z.DeepConfig(k=8), shipped_file("baseline")) != want
    model = D.load_deep(SHIPPED)
    assert pruning.model_sparsity(model) == pytest.approx(LONG.sparsity, abs=0.005)


def test_the_shipped_result_is_copied_into_the_cache(cache):
    want = Z.result_key(Z.DeepConfig(), shipped_file("baseline"))
    if D.deep_metadata(SHIPPED).get("result_key") != want:  # never train in a unit test
        pytest.fail("the shipped Deep Compression model is stale (see the test above)")
    model, path, history = Z.deep_compressed_baseline(progress=False)
    assert path.read_bytes() == SHIPPED.read_bytes()
    assert [h.get("stage") for h in history][-1] == "share"


def test_the_shipped_student_route_matches_its_student_and_the_defaults():
    student = shipped_file("student-sequence")  # test_distill checks its own key
    assert STUDENT_SHIPPED.exists(), "run `python -m course_lib deep-compress --ship`"
    want = Z.student_key(Z.STUDENT_DEEP, shipped_file("baseline"), student)
    assert D.deep_metadata(STUDENT_SHIPPED)["result_key"] == want, (
        "the shipped student route was made from another student or recipe: remake "
        "it with `python -m course_lib deep-compress --ship`")
    model = D.load_deep(STUDENT_SHIPPED)
    assert model.cfg == cl.distillation.STUDENT
    tensors, meta = cl.modelfile.read_container(STUDENT_SHIPPED, D.FORMAT)
    assert "gaps/data" not in tensors  # unpruned: no positions stored
    for name, w in model.state_dict().items():  # at most k values per matrix
        if w.ndim >= 2:
            assert torch.unique(w).numel() <= Z.STUDENT_DEEP.k, name


def test_the_shipped_student_route_is_copied_into_the_cache(cache):
    want = Z.student_key(Z.STUDENT_DEEP, shipped_file("baseline"),
                         shipped_file("student-sequence"))
    if D.deep_metadata(STUDENT_SHIPPED).get("result_key") != want:  # never train here
        pytest.fail("the shipped student route is stale (see the test above)")
    model, path, history = Z.deep_compressed_student(progress=False)
    assert path.read_bytes() == STUDENT_SHIPPED.read_bytes()
    assert history[0]["step"] == 0 and history[-1]["stage"] == "share"

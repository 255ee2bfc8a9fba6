"""Chapter 5: low-rank factorization by truncated SVD (exact at full rank, the
Eckart-Young error at lower rank, saved and loaded with its shapes)."""

import pytest
import torch

import course_lib as cl
from course_lib import lowrank as L
from course_lib import count_params
from course_lib.core.model import factorized_shapes
from course_lib.zoo import lowrank as Z, shipped_file
from course_lib.zoo.baseline import MODEL

SHIPPED, BASELINE = shipped_file("lowrank"), shipped_file("baseline")

SMALL = cl.ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=2)


def small_model(seed: int = 0) -> cl.CTCModel:
    torch.manual_seed(seed)
    return cl.CTCModel(SMALL).eval()


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(5)
    return torch.randn(3, 60, 80), torch.tensor([60, 41, 17])  # (batch, frames, mels)


def test_matrices_have_the_documented_shapes():
    shapes = {n: tuple(w.shape) for n, w in L.matrices(small_model()).items()}
    # conv: (C_out, C_in k); rnn: both directions' input weights stacked (2 x 3H, I)
    assert shapes == {"conv0": (16, 400), "conv1": (16, 80), "rnn0": (72, 16),
                      "rnn1": (72, 24)}


def test_full_rank_factorization_gives_the_same_outputs():
    m = small_model()
    full = {n: min(w.shape) for n, w in L.matrices(m).items()}
    f = L.factorize(m, full)
    x, n = inputs()
    torch.testing.assert_close(f(x, n)[0], m(x, n)[0], atol=1e-4, rtol=1e-4)
    assert f.low_rank == full and L.matrices(f) == {}  # nothing left to factorize


def test_truncation_error_is_the_dropped_singular_values():
    m = small_model()
    w = L.matrices(m)["conv0"]
    u, v = L.svd_factors(w, 5)
    s = torch.linalg.svdvals(w.double())
    err = torch.linalg.matrix_norm((w - u @ v).double()) ** 2
    assert err.item() == pytest.approx((s[5:] ** 2).sum().item(), rel=1e-4)


def test_energy_rank_counts_the_singular_values_needed():
    s = torch.tensor([3.0, 2.0, 1.0, 1.0, 1.0])  # energies 9, 4, 1, 1, 1 of 16
    assert L.energy_rank(s, 9 / 16) == 1
    assert L.energy_rank(s, 0.6) == 2
    assert L.energy_rank(s, 13 / 16) == 2
    assert L.energy_rank(s, 1.0) == 5
    with pytest.raises(ValueError, match="energy"):
        L.energy_rank(s, 0.0)


def test_choose_ranks_skips_matrices_below_break_even():
    m = small_model()
    ranks = L.choose_ranks(m, 0.999)
    for name, w in L.matrices(m).items():
        if name in ranks:
            assert ranks[name] < L.break_even(w)
    low = L.choose_ranks(m, 0.3)
    f = L.factorize(m, low)
    assert count_params(f) < count_params(m)


def test_saved_low_rank_model_loads_with_its_shapes(tmp_path):
    m = small_model()
    f = L.factorize(m, {"conv1": 3, "rnn0": 4})
    path = cl.save_model(f, tmp_path / "lr.safetensors")
    g = cl.load_model(path)
    x, n = inputs()
    assert g.low_rank == {"conv1": 3, "rnn0": 4}
    assert torch.equal(g(x, n)[0], f(x, n)[0])
    assert count_params(g) == count_params(f)
    assert "rnn.proj.0.weight" in g.state_dict()


def test_unknown_matrix_name_is_refused():
    with pytest.raises(ValueError, match="unknown matrix"):
        factorized_shapes(small_model(), {"head": 3})


def test_shipped_result_matches_the_shipped_baseline_and_the_default_config():
    assert SHIPPED.exists(), "run `python -m course_lib lowrank --ship`"
    meta = cl.read_metadata(SHIPPED)
    want = Z.result_key(Z.LowRankConfig(), BASELINE)
    assert meta["result_key"] == want, (
        "the shipped low-rank model was made from another baseline or recipe: "
        "remake it with `python -m course_lib lowrank --ship`")
    model = cl.load_model(SHIPPED)
    assert cl.count_params(model) <= 0.5 * cl.count_params(cl.CTCModel(MODEL))
    assert meta["history"][-1]["step"] == Z.LowRankConfig().train.steps
    assert Z.result_key(Z.LowRankConfig(energy=0.8), BASELINE) != want


def test_the_shipped_result_is_copied_into_the_cache(cache):
    want = Z.result_key(Z.LowRankConfig(), BASELINE)
    if cl.read_metadata(SHIPPED).get("result_key") != want:  # never train here
        pytest.fail("the shipped low-rank model is stale (see the test above)")
    model, path, history = Z.lowrank_baseline(progress=False)
    assert path.read_bytes() == SHIPPED.read_bytes()
    assert history == cl.read_metadata(SHIPPED)["history"]
    assert model.low_rank == cl.read_metadata(SHIPPED)["low_rank"]


def test_low_rank_models_go_through_the_quantized_and_sparse_containers(tmp_path):
    from course_lib import quantization as Q, sparse_io

    f = L.factorize(small_model(), {"conv0": 4, "rnn1": 5})
    x, n = inputs()
    q = Q.load_quantized(Q.save_quantized(f, tmp_path / "f.q"))
    assert q.low_rank == f.low_rank
    torch.testing.assert_close(q(x, n)[0], f(x, n)[0], atol=0.05, rtol=0)
    s = sparse_io.load_sparse(sparse_io.save_sparse(f, tmp_path / "f.sparse"))
    assert torch.equal(s(x, n)[0], f(x, n)[0])

"""Chapter 3.4: unit scores, physical removal of units (exact where it must be),
iterative pruning with fine-tuning."""

import dataclasses

import pytest
import torch

import course_lib as cl
from course_lib import neurons as N
from course_lib.core.batching import Example, collate
from course_lib.core.losses import ctc_loss
from course_lib.core.text import encode
from course_lib.core.training import FinetuneConfig
from course_lib.zoo import neurons as Z, shipped_file

SHIPPED, BASELINE = shipped_file("neurons"), shipped_file("baseline")

SMALL = cl.ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=2)


def small_model(cfg: cl.ModelConfig = SMALL, seed: int = 0) -> cl.CTCModel:
    torch.manual_seed(seed)
    return cl.CTCModel(cfg).eval()


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(5)
    return torch.randn(3, 60, 80), torch.tensor([60, 41, 17])  # (batch, frames, mels)


def test_groups_and_unit_rows_cover_every_incoming_weight():
    m = small_model()
    groups = N.unit_groups(m)
    assert groups == {"conv.0": 16, "conv.1": 16, "rnn.fwd.0": 12, "rnn.fwd.1": 12,
                      "rnn.bwd.0": 12, "rnn.bwd.1": 12}
    # 3 gates x (24 inputs + 12 recurrent + 2 biases)
    rows = N.unit_rows(m, "rnn.fwd.1")
    assert rows.shape == (12, 3 * (24 + 12 + 2))
    gru = m.rnn.fwd[1]
    assert torch.equal(rows[5, :24], gru.weight_ih_l0[5])  # r gate of unit 5
    assert torch.equal(rows[5, 24:48], gru.weight_ih_l0[12 + 5])  # z gate
    assert N.unit_rows(m, "conv.0").shape == (16, 80 * 5 + 1)


def test_keeping_every_unit_changes_nothing():
    m = small_model()
    x, n = inputs()
    s = N.remove_units(m, N.keep_all(m))
    assert type(s) is cl.CTCModel and s.cfg == m.cfg
    assert torch.equal(s(x, n)[0], m(x, n)[0])


def test_removing_dead_gru_units_is_exact_and_shrinks_the_model():
    m = small_model()
    x, n = inputs()
    keep = N.keep_all(m)
    for g in ("rnn.fwd.0", "rnn.bwd.0", "rnn.fwd.1", "rnn.bwd.1"):
        dead = [3, 7] if g.endswith("0") else [0, 11]
        for u in dead:
            N.zero_units(m, g, torch.tensor([u]))
        keep[g] = torch.tensor([i for i in range(12) if i not in dead])
    s = N.remove_units(m, keep)
    assert s.cfg.rnn_hidden == 10 and cl.count_params(s) < cl.count_params(m)
    assert s.rnn.fwd[1].weight_ih_l0.shape == (30, 20)  # 3 gates x 10, 2 x 10 inputs
    torch.testing.assert_close(s(x, n)[0], m(x, n)[0], atol=1e-6, rtol=0)


def test_dead_conv_channels_are_exact_without_norm_but_layernorm_couples_them():
    for norm in (False, True):
        m = small_model(dataclasses.replace(SMALL, conv_norm=norm))
        x, n = inputs()
        keep = N.keep_all(m)
        for g in ("conv.0", "conv.1"):
            N.zero_units(m, g, torch.tensor([4]))
            keep[g] = torch.tensor([i for i in range(16) if i != 4])
        if norm:  # the dead channel still enters LayerNorm's mean and variance
            with torch.no_grad():
                for nm in m.norms:
                    nm.weight[4] = 0.0
                    nm.bias[4] = 0.0
        s = N.remove_units(m, keep)
        assert s.cfg.conv_channels == 15
        diff = (s(x, n)[0] - m(x, n)[0]).abs().max().item()
        assert (diff > 1e-4) if norm else (diff < 1e-6), (norm, diff)


def test_remove_units_refuses_bad_keep_sets():
    m = small_model()
    keep = N.keep_all(m)
    with pytest.raises(ValueError, match="same number"):
        N.remove_units(m, dict(keep, **{"rnn.fwd.0": torch.arange(5)}))
    with pytest.raises(ValueError, match="distinct"):
        N.remove_units(m, dict(keep, **{"conv.0": torch.tensor([0] * 16)}))
    with pytest.raises(ValueError, match="every group"):
        N.remove_units(m, {"conv.0": torch.arange(16)})
    with pytest.raises(ValueError, match="extra_convs"):
        N.remove_units(small_model(dataclasses.replace(SMALL, extra_convs=1)), keep)


def test_keep_top_picks_the_highest_scores_and_breaks_ties_by_index():
    scores = {"conv.0": torch.tensor([0.1, 5.0, 5.0, 2.0]),
              "rnn.fwd.0": torch.tensor([1.0, 1.0, 1.0])}
    keep = N.keep_top(scores, conv_keep=2, rnn_keep=2)
    assert keep["conv.0"].tolist() == [1, 2] and keep["rnn.fwd.0"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="cannot keep"):
        N.keep_top(scores, conv_keep=5, rnn_keep=1)


def fake_examples(k: int = 6) -> list:
    gen = torch.Generator().manual_seed(0)
    return [Example(f"u{i}", "go", torch.randn(30 + 7 * i, 80, generator=gen),
                             encode("go")) for i in range(k)]


def test_activation_scores_do_not_depend_on_padding_or_batching():
    m, ex = small_model(), fake_examples()
    one = N.activation_scores(m, ex, batch_size=1)  # no padding at all
    many = N.activation_scores(m, ex, batch_size=4)  # padded batches
    for g in one:
        torch.testing.assert_close(one[g], many[g], atol=1e-5, rtol=1e-5)
        assert (one[g] >= 0).all()


def test_criteria_give_dead_units_the_lowest_scores():
    m, ex = small_model(), fake_examples()
    N.zero_units(m, "rnn.fwd.1", torch.tensor([2]))
    for crit in ("l1", "l2", "activation", "taylor"):
        s = N.scores_for(m, crit, ex)["rnn.fwd.1"]
        assert s[2] == s.min() and s[2] < 1e-6 and s.max() > 0, crit
    with pytest.raises(ValueError, match="criterion"):
        N.scores_for(m, "size", ex)


def test_taylor_score_is_the_squared_first_order_loss_change():
    m, ex = small_model(), fake_examples(2)
    s = N.taylor_scores(m, ex, batch_size=2)["rnn.bwd.0"]
    m.zero_grad()
    ctc_loss(m, collate(ex)).backward()
    w = N.unit_rows(m, "rnn.bwd.0")
    g = N.unit_rows(m, "rnn.bwd.0", grad=True)
    torch.testing.assert_close(s, (w * g).sum(1) ** 2)


def test_iterative_pruning_shrinks_stage_by_stage():
    m, ex = small_model(), fake_examples()
    cfg = N.NeuronPruneConfig(widths=((12, 10), (8, 8)), criterion="l2",
                              finetune=FinetuneConfig(steps=2, batch_size=3),
                              stage_steps=(2, 3))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    small, hist = N.prune_units_finetune(
        m, ex, cfg, evaluate=lambda mm: dict(p=cl.count_params(mm)), progress=False)
    assert (small.cfg.conv_channels, small.cfg.rnn_hidden) == (8, 8)
    assert cfg.distill > 0  # the input model is the teacher: it must stay as it was
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())
    sizes = [h["params"] for h in hist]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == cl.count_params(small)
    assert [h["step"] for h in hist if h["tuned"]] == [2, 5]
    with pytest.raises(ValueError, match="stage_steps"):
        N.NeuronPruneConfig(widths=((8, 8),), stage_steps=(1, 2))


def test_shipped_result_matches_the_shipped_baseline_and_the_default_config():
    assert SHIPPED.exists(), "run `python -m course_lib prune-neurons --ship`"
    meta = cl.read_metadata(SHIPPED)
    want = Z.result_key(N.NeuronPruneConfig(), None, 50, BASELINE)
    assert meta["result_key"] == want, (
        "the shipped neuron-pruned model was made from another baseline or recipe: "
        "remake it with `python -m course_lib prune-neurons --ship`")
    model = cl.load_model(SHIPPED)
    full = cl.count_params(cl.CTCModel(cl.baseline.MODEL))
    assert cl.count_params(model) <= 0.5 * full
    assert meta["history"] and meta["seconds"] > 0
    other = N.NeuronPruneConfig(criterion="l1")
    assert Z.result_key(other, None, 50, BASELINE) != want


def test_the_shipped_result_is_copied_into_the_cache(cache):
    model, path, history = Z.neuron_pruned_baseline(progress=False)
    assert path.read_bytes() == SHIPPED.read_bytes()
    assert history == cl.read_metadata(SHIPPED)["history"]
    assert isinstance(model, cl.CTCModel)

"""Chapter 3.5: shards with an index, integrity checks, on-demand loading, and the
model run as a pipeline of processes."""

import json

import pytest
import torch

import course_lib as cl
from course_lib import pipeline as P
from course_lib import lowrank
from course_lib import memory
from course_lib import shards as S
from course_lib.combined.quantized_shards import write_quantized_shards

SMALL = cl.ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=3)


@pytest.fixture()
def model() -> cl.CTCModel:
    torch.manual_seed(0)
    return cl.CTCModel(SMALL).eval()


@pytest.fixture()
def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(5)
    return torch.randn(3, 60, 80), torch.tensor([60, 41, 17])  # (batch, frames, mels)


def test_stages_run_one_by_one_give_the_model_output(model, inputs):
    x, n = inputs
    assert model.stages() == ["conv0", "conv1", "rnn0", "rnn1", "rnn2", "head"]
    y, m = x, n
    for stage in model.stages():
        out = model.stage(stage, y, m)
        y, m = out if isinstance(out, tuple) else (out, m)
    assert torch.equal(y, model(x, n)[0]) and torch.equal(m, model(x, n)[1])
    with pytest.raises(ValueError, match="unknown stage 'rnn3'"):
        model.stage("rnn3", y, m)


def test_shards_round_trip_with_an_index(model, inputs, tmp_path):
    S.write_shards(model, tmp_path)
    index = S.read_index(tmp_path)
    assert list(index["parts"]) == model.stages()  # one part per stage, in order
    total = sum(p["bytes"] for p in index["parts"].values())
    weights = sum(t.numel() * 4 for t in model.state_dict().values())
    assert weights < total < weights + 4096 * len(index["parts"])  # headers only
    assert index["parts"]["rnn1"]["tensors"]["rnn.fwd.1.weight_hh_l0"] == dict(
        shape=[12, 12 * 3][::-1], dtype="float32", bytes=36 * 12 * 4)
    loaded = S.load_sharded(tmp_path, expect=SMALL)
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    assert torch.equal(loaded(*inputs)[0], model(*inputs)[0])


def test_parts_by_byte_budget_cover_every_tensor_once(model, tmp_path):
    parts = S.size_parts(model, 20_000)
    names = [k for keys in parts.values() for k in keys]
    assert sorted(names) == sorted(model.state_dict()) and len(parts) > 3
    for keys in parts.values():  # within budget, unless one tensor alone is larger
        size = sum(model.state_dict()[k].numel() * 4 for k in keys)
        assert size <= 20_000 or len(keys) == 1
    with pytest.raises(ValueError, match="exactly once"):
        S.write_shards(model, tmp_path, {"a": names[1:]})


@pytest.mark.parametrize("split", ["stages", "bytes"])
def test_on_demand_is_exact_and_lazy(model, inputs, tmp_path, split):
    parts = None if split == "stages" else S.size_parts(model, 20_000)
    S.write_shards(model, tmp_path, parts)
    runner = S.OnDemand(tmp_path)
    assert runner.events == [] and runner.held_bytes() == 0  # nothing loaded yet
    for _ in range(2):  # twice: freed parts load again
        out, n = runner(*inputs)
        assert torch.equal(out, model(*inputs)[0]) and torch.equal(n, model(*inputs)[1])
    loads = [p for what, p in runner.events if what == "load"]
    assert sorted(loads) == sorted(list(runner.index["parts"]) * 2)
    assert not runner.loaded and runner.held_bytes() == 0  # all freed
    total = sum(p["bytes"] for p in runner.index["parts"].values())
    assert runner.peak_bytes < (0.5 if split == "stages" else 1.0) * total
    if split == "stages":  # each part is loaded just before its stage, freed after
        assert runner.events[:4] == [("load", "conv0"), ("free", "conv0"),
                                     ("load", "conv1"), ("free", "conv1")]


def test_memory_mapped_tensors_equal_the_library_load(model, tmp_path):
    S.write_shards(model, tmp_path)
    index = S.read_index(tmp_path)
    for part in index["parts"]:
        mapped, copied = S.map_part(tmp_path, index, part), S.load_part(tmp_path,
                                                                         index, part)
        assert mapped.keys() == copied.keys()
        assert all(torch.equal(mapped[k], copied[k]) for k in mapped)
    before = (tmp_path / "rnn0.safetensors").read_bytes()
    S.map_part(tmp_path, index, "rnn0")["rnn.fwd.0.bias_ih_l0"].add_(1.0)
    assert (tmp_path / "rnn0.safetensors").read_bytes() == before  # copy-on-write


def _corrupt(tmp_path, model, how: str) -> None:
    S.write_shards(model, tmp_path)
    index_path = tmp_path / S.INDEX
    index = json.loads(index_path.read_text())  # parts: a list, in execution order
    part = {p["name"]: p for p in index["parts"]}
    if how == "checksum":
        f = tmp_path / "rnn1.safetensors"
        data = bytearray(f.read_bytes())
        data[-5] ^= 0x01  # one flipped bit in the weights
        f.write_bytes(bytes(data))
    elif how == "missing":
        (tmp_path / "head.safetensors").unlink()
    elif how == "unknown":
        part["head"]["tensors"]["head.scale"] = dict(shape=[1], dtype="float32",
                                                     bytes=4)
        index_path.write_text(json.dumps(index))
    elif how == "other model":
        torch.manual_seed(1)
        other = tmp_path / "other"
        S.write_shards(cl.CTCModel(SMALL), other)
        (other / "rnn2.safetensors").replace(tmp_path / "rnn2.safetensors")
        part["rnn2"]["sha256"] = cl.utils.sha256_file(
            tmp_path / "rnn2.safetensors")  # even with a matching checksum
        index_path.write_text(json.dumps(index))
    elif how == "no index":
        index_path.unlink()


@pytest.mark.parametrize("how, message", [
    ("checksum", "rnn1.safetensors: checksum mismatch"),
    ("missing", "head.safetensors: missing shard"),
    ("unknown", r"names tensors this architecture does not have: \['head.scale'\]"),
    ("other model", "rnn2.safetensors: a shard of another model"),
    ("no index", "no index"),
])
def test_bad_shards_are_refused_before_any_computation(model, tmp_path, how, message):
    _corrupt(tmp_path, model, how)
    with pytest.raises(S.ShardError, match=message):
        S.OnDemand(tmp_path)
    with pytest.raises(S.ShardError, match=message):
        S.load_sharded(tmp_path)


def test_the_wrong_architecture_is_refused(model, tmp_path):
    S.write_shards(model, tmp_path)
    with pytest.raises(S.ShardError, match="another architecture"):
        S.verify_shards(tmp_path, expect=cl.ModelConfig())


def test_split_stages_is_contiguous_and_refuses_bad_sizes():
    stages = ["conv0", "conv1", "rnn0", "rnn1", "rnn2", "head"]
    assert P.split_stages(stages, 4) == [["conv0", "conv1"], ["rnn0", "rnn1"],
                                         ["rnn2"], ["head"]]
    assert sum(P.split_stages(stages, 6), []) == stages
    with pytest.raises(ValueError, match="world size"):
        P.split_stages(stages, 7)


def test_pipeline_of_two_processes_equals_the_model(model, inputs, tmp_path):
    S.write_shards(model, tmp_path)
    log_probs, lengths, ranks = P.run_pipeline(tmp_path, *inputs, world=2)
    want, want_n = model(*inputs)
    assert torch.equal(log_probs, want) and torch.equal(lengths, want_n)
    assert [r["stages"] for r in ranks] == [["conv0", "conv1", "rnn0"],
                                            ["rnn1", "rnn2", "head"]]
    assert ranks[0]["pid"] != ranks[1]["pid"]  # two real processes
    assert set(ranks[0]["loaded_parts"]).isdisjoint(ranks[1]["loaded_parts"])


@pytest.mark.skipif(not memory.peak_memory_supported(), reason="needs Linux /proc")
def test_peak_memory_is_measured_in_a_fresh_process(inputs, tmp_path, monkeypatch):
    # A model of the baseline's size (6 MB): the kernel's RSS counters are only
    # accurate to a few hundred KB, so a tiny model would measure noise.
    torch.manual_seed(0)
    model = cl.CTCModel(cl.ModelConfig()).eval()
    S.write_shards(model, tmp_path / "shards")
    cl.save_model(model, tmp_path / "model.safetensors")
    full = memory.peak_memory(tmp_path / "shards", *inputs, mode="full")
    lazy = memory.peak_memory(tmp_path / "shards", *inputs, mode="on-demand")
    usual = memory.peak_memory(tmp_path / "model.safetensors", *inputs,
                               mode="load_model")
    assert full["checksum"] == lazy["checksum"] == usual["checksum"]  # same output
    weights = sum(t.numel() * 4 for t in model.state_dict().values())
    # random init + a copy > the weights once > one stage at a time
    assert usual["peak_rise_bytes"] > 1.5 * weights
    assert 0.8 * weights < full["peak_rise_bytes"] < 1.3 * weights
    assert lazy["peak_rise_bytes"] < 0.75 * full["peak_rise_bytes"]
    assert list(lazy["stage_peak_rise_bytes"]) == model.stages()
    assert full["tracemalloc_peak_bytes"] < 0.2 * weights  # tensors bypass it
    with pytest.raises(RuntimeError, match="mode must be"):
        memory.peak_memory(tmp_path / "shards", *inputs, mode="half")
    monkeypatch.setattr(memory, "peak_memory_supported", lambda: False)
    with pytest.raises(RuntimeError, match="needs Linux"):
        memory.peak_memory(tmp_path / "shards", *inputs, mode="full")


def test_on_demand_traces_the_bytes_held_per_stage(model, inputs, tmp_path):
    S.write_shards(model, tmp_path)
    runner = S.OnDemand(tmp_path)
    runner(*inputs)
    assert [stage for stage, _ in runner.trace] == model.stages()
    sizes = {p: sum(t["bytes"] for t in part["tensors"].values())  # tensors, no header
             for p, part in runner.index["parts"].items()}
    assert [held for _, held in runner.trace] == [sizes[s] for s in model.stages()]


def test_quantized_shards_give_chapter_3_2s_quantized_model(model, inputs, tmp_path):
    spec = cl.quantization.ENGINE_SPEC  # int8, per output channel
    write_quantized_shards(model, tmp_path / "q", spec)
    index = S.verify_shards(tmp_path / "q")
    assert index["quant"]["bits"] == 8
    # each 2-D+ weight: one byte per code, a float32 scale and zero per row
    state = model.state_dict()
    want = sum(t.numel() + 8 * t.shape[0] if t.ndim >= 2 else 4 * t.numel()
               for t in state.values())
    held = [t for p in index["parts"].values() for t in p["tensors"].items()]
    assert sum(info["bytes"] for _, info in held) == want
    assert dict(held)["rnn.fwd.1.weight_hh_l0"]["dtype"] == "uint8"
    # the same weights as chapter 3.2's file, loaded whole or on demand
    ref = cl.quantization.load_quantized(cl.quantization.save_quantized(
        model, tmp_path / "model.q", spec))
    loaded = S.load_sharded(tmp_path / "q")
    for k, v in ref.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    with torch.no_grad():
        want_out = ref(*inputs)[0]
    runner = S.OnDemand(tmp_path / "q")
    assert torch.equal(runner(*inputs)[0], want_out)
    # quantized: not the float model
    assert not torch.equal(want_out, model(*inputs)[0])
    assert runner.peak_bytes == max(  # held: the dequantized float32 weights
        4 * sum(state[k].numel() for k in state if k.startswith(pre))
        for pre in model.stage_prefixes().values())


def test_an_index_that_lost_its_quantization_is_refused(model, tmp_path):
    write_quantized_shards(model, tmp_path, cl.quantization.ENGINE_SPEC)
    index = json.loads((tmp_path / S.INDEX).read_text())
    index["quant"] = None
    (tmp_path / S.INDEX).write_text(json.dumps(index))
    with pytest.raises(S.ShardError, match="does not have"):
        S.OnDemand(tmp_path)
    with pytest.raises(ValueError, match="at most 8 bits"):
        write_quantized_shards(model, tmp_path / "x",
                               cl.quantization.QuantSpec(bits=12))


def test_low_rank_and_quantized_shards_run_on_demand_and_as_a_pipeline(model, inputs,
                                                                       tmp_path):
    factored = lowrank.factorize(model, {"conv1": 4, "rnn1": 6}).eval()
    S.write_shards(factored, tmp_path / "lr")
    index = S.verify_shards(tmp_path / "lr")
    assert index["low_rank"] == {"conv1": 4, "rnn1": 6}
    assert "rnn.proj.1.weight" in index["parts"]["rnn1"]["tensors"]
    with torch.no_grad():
        want, want_n = factored(*inputs)
    assert torch.equal(S.OnDemand(tmp_path / "lr")(*inputs)[0], want)
    assert torch.equal(S.load_sharded(tmp_path / "lr")(*inputs)[0], want)
    # both at once, across two processes; each rank runs on one thread, and the
    # low-rank layers' sums come out in another order on two (about 5e-7)
    write_quantized_shards(factored, tmp_path / "lrq", cl.quantization.ENGINE_SPEC)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            ref = S.load_sharded(tmp_path / "lrq")(*inputs)
    finally:
        torch.set_num_threads(threads)
    log_probs, lengths, _ = P.run_pipeline(tmp_path / "lrq", *inputs, world=2)
    assert torch.equal(log_probs, ref[0]) and torch.equal(lengths, want_n)

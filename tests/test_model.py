"""The CTC model: padding never changes a result; safe, checked save/load."""

import pytest
import torch

import course_lib as cl
from course_lib.core.batching import Example


def _utterances(n=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lengths = [97, 150, 33, 121][:n]
    return [torch.randn(t, 80, generator=gen) * 2 - 5 for t in lengths]


def test_parameter_count_is_in_the_spec_range():
    assert 1_000_000 <= cl.count_params(cl.CTCModel()) <= 3_000_000


@pytest.mark.parametrize("cfg", [cl.ModelConfig(),
                                 cl.ModelConfig(extra_convs=2, rnn_layers=1,
                                                upsample=2)],
                         ids=["baseline", "residual-convs-upsampled"])
def test_padding_does_not_change_outputs(cfg):
    torch.manual_seed(0)
    model = cl.CTCModel(cfg).eval()
    utts = _utterances()
    examples = [Example(str(i), "a", f, [1]) for i, f in enumerate(utts)]
    batch = cl.collate(examples)
    with torch.no_grad():
        batched, lengths = model(batch["feats"], batch["lengths"])
        for i, f in enumerate(utts):
            alone, n = model(f[None], torch.tensor([f.shape[0]]))
            assert int(lengths[i]) == int(n[0])
            torch.testing.assert_close(batched[i, : int(n[0])], alone[0],
                                       rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("upsample", [1, 2])
def test_conv_lengths_match_real_output(upsample):
    model = cl.CTCModel(cl.ModelConfig(upsample=upsample)).eval()
    for t in (1, 2, 3, 4, 5, 17, 100):
        out, n = model(torch.randn(1, t, 80), torch.tensor([t]))
        expected = int(model.output_lengths(torch.tensor([t]))[0])
        assert out.shape[1] == int(n[0]) == expected


def test_save_and_load_roundtrip(tmp_path):
    model = cl.CTCModel().eval()
    path = cl.save_model(model, tmp_path / "m.safetensors", note="hello")
    loaded = cl.load_model(path, expect=cl.ModelConfig())
    x = torch.randn(1, 50, 80)
    torch.testing.assert_close(model(x, torch.tensor([50]))[0],
                               loaded(x, torch.tensor([50]))[0])
    assert cl.read_metadata(path)["note"] == "hello"


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    small = cl.CTCModel(cl.ModelConfig(rnn_hidden=32))
    path = cl.save_model(small, tmp_path / "small.safetensors")
    with pytest.raises(ValueError, match="another architecture"):
        cl.load_model(path, expect=cl.ModelConfig())


def test_tampered_weights_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    model = cl.CTCModel(cl.ModelConfig(rnn_hidden=32))
    path = cl.save_model(model, tmp_path / "m.safetensors")
    meta = cl.read_metadata(path)
    state = load_file(path)
    del state["head.bias"]
    raw = {k: (v if k == "format" else __import__("json").dumps(v))
           for k, v in meta.items()}
    save_file(state, tmp_path / "broken.safetensors", metadata=raw)
    with pytest.raises(ValueError, match="do not fit the model"):
        cl.load_model(tmp_path / "broken.safetensors")


def test_non_safetensors_file_is_refused(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x80\x04 pickle or junk")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        cl.load_model(bad)

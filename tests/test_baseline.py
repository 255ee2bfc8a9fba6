"""The shipped baseline checkpoint must match the corpus and recipe it claims."""

import pytest
import torch

import course_lib as cl
from course_lib.core.example import EXAMPLES
from course_lib.zoo import baseline, shipped_file

SHIPPED = shipped_file("baseline")


def test_shipped_checkpoint_exists_and_matches_the_current_config():
    assert SHIPPED.exists(), "run `python -m course_lib train-baseline --ship`"
    meta = cl.read_metadata(SHIPPED)
    assert meta["corpus_key"] == baseline.CORPUS.key(), (
        "the corpus configuration changed since the shipped baseline was trained: "
        "retrain it with `python -m course_lib train-baseline --ship`")
    assert meta["baseline_key"] == baseline.baseline_key()
    assert baseline.shipped_matches()


def test_a_changed_corpus_config_invalidates_the_shipped_checkpoint(monkeypatch):
    monkeypatch.setattr(baseline, "CORPUS", cl.CorpusConfig(seed=999))
    assert not baseline.shipped_matches()


def test_shipped_checkpoint_loads_safely_with_its_recorded_training():
    model = cl.load_model(SHIPPED, expect=baseline.MODEL)
    meta = cl.read_metadata(SHIPPED)
    assert cl.count_params(model) > 1_000_000
    assert meta["train_seconds"] > 0 and meta["history"]


def test_baseline_path_copies_the_shipped_file_into_the_cache(cache):
    path = cl.baseline_path(progress=False)
    assert path.read_bytes() == SHIPPED.read_bytes()
    assert cl.baseline_path(progress=False) == path  # reused


@pytest.mark.parametrize("field", ["model", "train"])
def test_recipe_changes_change_the_key(monkeypatch, field):
    key = baseline.baseline_key()
    if field == "model":
        monkeypatch.setattr(baseline, "MODEL", cl.ModelConfig(rnn_hidden=161))
    else:
        monkeypatch.setattr(baseline, "TRAIN", cl.TrainConfig(epochs=99))
    assert baseline.baseline_key() != key


def test_real_speaker_transcripts_are_cached_by_the_artifact(cache, tmp_path):
    torch.manual_seed(0)
    model = cl.CTCModel(cl.ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=1))
    path = cl.save_model(model, tmp_path / "tiny.safetensors")
    refs, hyps = cl.real_transcripts(model, path)
    assert len(refs) == len(hyps) == 500 and refs[0] == "zero"

    class Broken(torch.nn.Module):
        def forward(self, *args):
            raise AssertionError("transcribed again instead of reading the cache")

    broken = Broken()
    assert cl.real_transcripts(broken, path) == (refs, hyps)
    cl.save_model(cl.CTCModel(model.cfg), path)  # another model in the same file
    with pytest.raises(AssertionError, match="transcribed again"):
        cl.real_transcripts(broken, path)


def test_each_example_has_its_own_key_and_never_trains_on_the_unseen_speaker(
        monkeypatch):
    v2 = baseline.baseline_key()  # the default example
    # the first edition's recipe: corpus v1, 40 ms frames, 22 epochs, no real speakers
    for name, value in (("CORPUS", cl.CorpusConfig()), ("MODEL", cl.ModelConfig()),
                        ("TRAIN", cl.TrainConfig(epochs=22)), ("REAL", ())):
        monkeypatch.setattr(baseline, name, value)
    v1 = baseline.baseline_key()
    assert v2 != v1
    # the first edition's baseline, shipped for chapter 1's comparison
    assert cl.read_metadata(baseline.V1_FILE)["baseline_key"] == v1
    assert cl.real.UNSEEN_SPEAKER not in cl.real.ADAPT_SPEAKERS
    monkeypatch.setattr(baseline, "REAL", cl.real.ADAPT_SPEAKERS)
    assert baseline.baseline_key() != v1
    v3 = EXAMPLES["v3"]  # the running example v3: its own key, a third speaker
    for name, value in (("CORPUS", v3.corpus), ("MODEL", v3.model),
                        ("TRAIN", v3.train), ("REAL", v3.real_train)):
        monkeypatch.setattr(baseline, name, value)
    assert baseline.baseline_key() not in (v1, v2)
    assert cl.real.UNSEEN_SPEAKER not in v3.real_train

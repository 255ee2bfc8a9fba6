"""The v3 design study (issue 40): equal-time arms, scored on the same utterances."""

import json
from dataclasses import replace

import pytest

import course_lib as cl
from course_lib.app import study

from tinycfg import TINY

TINY_ARM = study.Arm("tiny", cl.ModelConfig(conv_channels=32, rnn_hidden=24,
                                            rnn_layers=1, n_conv=1),
                     cl.TrainConfig(batch_size=8, threads=1), TINY,
                     real=("jackson",), minutes=0.02)


def test_an_arm_trains_for_its_probed_epochs_and_is_scored_on_the_same_data(
        tiny_corpus, tmp_path):
    out = study.run_arm(TINY_ARM, tmp_path, progress=False)
    saved = json.loads((tmp_path / "tiny.json").read_text())
    assert saved["key"] == out["key"] == TINY_ARM.key()
    assert saved["plan"] == json.loads(study._plan_path(TINY_ARM, tmp_path).read_text())
    assert saved["epochs"] == len(saved["history"]) >= 1
    assert saved["dev"]["n"] == TINY.n_dev and saved["train_fit"]["n"] == TINY.n_train
    assert set(saved["real"]) == set(cl.real.SPEAKERS)  # every speaker, separately
    assert all(r["n"] == 500 and len(r["hyps"]) == 500 for r in saved["real"].values())
    assert 0 <= saved["dev"]["lo"] <= saved["dev"]["wer"] <= saved["dev"]["hi"]
    again = study.run_arm(TINY_ARM, tmp_path, progress=False)  # resumes: nothing new
    assert again["history"] == out["history"] and again["dev"] == out["dev"]
    line = study.table(tmp_path).splitlines()[1]
    assert line.startswith("tiny") and f"{out['params']:,}" in line


def test_the_study_never_trains_on_the_unseen_speaker_and_keys_differ(tmp_path):
    with pytest.raises(ValueError, match="nicolas is the unseen real speaker"):
        study.run_arm(replace(TINY_ARM, real=("nicolas",)), tmp_path, progress=False)
    sizes = [study.ARMS[n] for n in ("size-1.2M", "size-2.6M", "size-5.1M")]
    assert len({a.key() for a in sizes}) == 3
    assert [cl.count_params(cl.CTCModel(a.model)) // 100_000 for a in sizes] == [
        12, 25, 50]
    assert all(cl.real.UNSEEN_SPEAKER not in a.real for a in study.ARMS.values())


def test_other_arms_match_the_reference_arms_planned_time(tiny_corpus, tmp_path,
                                                          monkeypatch):
    wider = replace(TINY_ARM, name="wider", model=replace(TINY_ARM.model,
                                                          rnn_hidden=96))
    fewer = replace(TINY_ARM, name="fewer", real=("george",))  # the same model
    monkeypatch.setattr(study, "ARMS", {a.name: a for a in (TINY_ARM, wider, fewer)})
    monkeypatch.setattr(study, "REFERENCE", "tiny")
    examples = cl.featurize(tiny_corpus, "train", progress=False)
    ref = study.plan_epochs(TINY_ARM, examples, tmp_path)
    assert ref["how"] == "probe"
    cl.utils.atomic_write_json(study._plan_path(TINY_ARM, tmp_path), ref)
    same = study.plan_epochs(fewer, examples, tmp_path)
    assert same["how"].startswith("as tiny") and same["seconds_per_step"] == \
        ref["seconds_per_step"]
    other = study.plan_epochs(wider, examples, tmp_path)  # side by side: slower
    assert "ratio" in other["how"]
    assert other["seconds_per_step"] > ref["seconds_per_step"]

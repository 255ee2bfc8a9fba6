"""Corpus: determinism, disjoint voices, atomic cache, bad audio, real layouts."""

import dataclasses
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import course_lib as cl
from course_lib.core.corpus import build
from course_lib.core.corpus.build import plan_corpus

from tinycfg import TINY


def test_plan_is_deterministic_and_voices_disjoint():
    a, b = plan_corpus(TINY), plan_corpus(TINY)
    assert a == b
    voices = {s: {p["variant"] for p in a if p["split"] == s} for s in build.SPLITS}
    assert not voices["train"] & voices["test"]
    assert not voices["train"] & voices["dev"]
    assert not voices["dev"] & voices["test"]


def test_no_test_sentence_is_trained_on():
    plans = plan_corpus(cl.CorpusConfig())
    train = {p["text"] for p in plans if p["split"] == "train"}
    test = {p["text"] for p in plans if p["split"] == "test"}
    assert not train & test


def test_corpus_is_built_and_reused(tiny_corpus):
    assert [len(tiny_corpus.split(s)) for s in ("train", "dev", "test")] == [40, 12, 12]
    again = cl.build_corpus(TINY, progress=False)  # from the cache
    assert again.info == tiny_corpus.info
    u = tiny_corpus.split("test")[0]
    wav = tiny_corpus.audio(u)
    assert wav.ndim == 1 and wav.numel() == u.num_samples
    assert 0 < wav.abs().max() <= 1


def test_same_config_gives_same_bytes(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv(cl.utils.CACHE_ENV, str(tmp_path))
    cfg = cl.CorpusConfig(n_train=20, n_dev=12, n_test=12, chunk_size=20)
    other = cl.build_corpus(cfg, splits=("test",), progress=False)
    # Test-split plans do not depend on n_train, so the audio must be identical.
    assert [u.checksum for u in other.split("test")] == \
        [u.checksum for u in tiny_corpus.split("test")]


def test_half_written_split_is_not_taken_as_finished(tmp_path, monkeypatch):
    monkeypatch.setenv(cl.utils.CACHE_ENV, str(tmp_path))
    cfg = cl.CorpusConfig(n_train=20, n_dev=12, n_test=12, chunk_size=6)
    root = build.corpus_root(cfg)
    partial = root / ".test.partial"
    (partial / "chunks").mkdir(parents=True)
    # An interrupted run: one chunk written correctly, one file of garbage.
    first = plan_corpus(cfg)
    first = [p for p in first if p["split"] == "test"][:6]
    rows = build._render_chunk((first, str(partial), 16000))
    cl.utils.atomic_write_json(partial / "chunks" / "0000.json", rows)
    (partial / "garbage.flac").write_bytes(b"not audio")
    corpus = cl.build_corpus(cfg, splits=("test",), progress=False)
    assert len(corpus.split("test")) == 12
    assert not partial.exists()
    assert corpus.split("test")[0].checksum == rows[0]["checksum"]


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
def test_cache_files_get_the_usual_permissions(tmp_path):
    # mkstemp makes 0600 files; the cache's files get the user's usual mode instead
    old = os.umask(0o022)
    try:
        written = cl.utils.atomic_write_json(tmp_path / "a.json", {"x": 1})
        copied = cl.utils.atomic_copy(written, tmp_path / "b.json")
        os.umask(0o077)  # a private umask is kept too
        private = cl.utils.atomic_write_bytes(tmp_path / "c.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(written.stat().st_mode) == 0o644
    assert stat.S_IMODE(copied.stat().st_mode) == 0o644
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert os.umask(old) == old  # and the process's umask is unchanged


def test_damaged_file_is_named_and_repaired(tiny_corpus):
    u = tiny_corpus.split("dev")[3]
    path = tiny_corpus.root / u.path
    original = path.read_bytes()
    pcm, sr = sf.read(path, dtype="int16")
    pcm[100:200] = 0
    sf.write(path, pcm, sr, subtype="PCM_16", format="FLAC")
    with pytest.raises(cl.AudioError, match=f"{u.id}.flac: checksum mismatch"):
        tiny_corpus.audio(u)
    assert cl.repair_corpus(tiny_corpus, progress=False) == [u.id]
    assert tiny_corpus.audio(u).numel() == u.num_samples
    pcm2, _ = sf.read(path, dtype="int16")
    assert np.array_equal(pcm2, sf.read(__import__("io").BytesIO(original),
                                        dtype="int16")[0])


def test_truncated_file_is_refused(tiny_corpus, tmp_path):
    u = tiny_corpus.split("dev")[0]
    bad = tmp_path / "cut.flac"
    bad.write_bytes((tiny_corpus.root / u.path).read_bytes()[:200])
    with pytest.raises(cl.AudioError, match="cut.flac"):
        cl.load_audio(bad)


def test_corrupt_manifest_is_refused(tiny_corpus, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_corpus.root, copy)
    manifest = copy / "test" / "manifest.jsonl"
    manifest.write_text(manifest.read_text().replace("turn", "burn", 1) + "x")
    with pytest.raises(ValueError, match="manifest.jsonl: checksum mismatch"):
        cl.open_corpus(copy)


@pytest.mark.parametrize("problem, writer, message", [
    ("empty", lambda p: sf.write(p, np.zeros(0, np.float32), 16000), "empty audio"),
    ("nan", lambda p: sf.write(p, np.array([0.1, np.nan] * 50, np.float32), 16000,
                               subtype="FLOAT"), "NaN/inf"),
    ("text", lambda p: p.write_text("hello"), "unreadable"),
])
def test_bad_audio_gets_a_clear_error(tmp_path, problem, writer, message):
    path = tmp_path / f"{problem}.wav"
    writer(path)
    with pytest.raises(cl.AudioError, match=message) as info:
        cl.load_audio(path)
    assert path.name in str(info.value)


def test_wrong_sample_rate_is_resampled_or_refused(tmp_path):
    path = tmp_path / "8k.wav"
    sf.write(path, np.sin(np.arange(8000) / 5).astype(np.float32) * 0.5, 8000)
    assert cl.load_audio(path, 16000, resample=True).numel() == 16000
    with pytest.raises(cl.AudioError, match="8000 Hz, expected 16000 Hz"):
        cl.load_audio(path, 16000, resample=False)


def test_missing_split_is_explained(cache):
    corpus = cl.build_corpus(TINY, splits=("test",), progress=False)
    with pytest.raises(ValueError, match="unknown split"):
        corpus.split("validation")


def _tone(path, seconds=0.5, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)


def test_librispeech_layout(tmp_path):
    folder = tmp_path / "LibriSpeech" / "dev-clean" / "84" / "121123"
    folder.mkdir(parents=True)
    for k in range(2):
        _tone(folder / f"84-121123-{k:04d}.flac")
    (folder / "84-121123.trans.txt").write_text(
        "84-121123-0000 GO DO YOU HEAR\n84-121123-0001 BUT IN LESS THAN FIVE MINUTES\n")
    rows = build.librispeech_utterances(tmp_path, "dev-clean")
    assert [r["text"] for r in rows] == ["go do you hear",
                                         "but in less than five minutes"]
    assert cl.load_audio(rows[0]["path"]).numel() == 8000


def test_speech_commands_layout(tmp_path):
    root = tmp_path / "SpeechCommands" / "speech_commands_v0.02"
    for word in ("yes", "left"):
        (root / word).mkdir(parents=True)
        _tone(root / word / "0a7c2a8d_nohash_0.wav", 1.0)
    (root / "_background_noise_").mkdir()
    rows = build.speech_commands_utterances(tmp_path)
    assert sorted(r["text"] for r in rows) == ["left", "yes"]
    assert cl.load_audio(rows[0]["path"]).numel() == 16000


def test_synthesis_is_in_process_and_named_voice_errors():
    wav, sr = cl.synthesize("turn on the lights", cl.Voice("en-us", "m3"))
    assert sr == 22050 and wav.dtype == np.int16 and wav.size > sr // 2
    with pytest.raises(ValueError, match="no voice named"):
        cl.synthesize("hello", cl.Voice("xx-nowhere", "m1"))


# Real voices (FSDD): read from a folder (never committed), split by speaker.

def test_real_recordings_are_read_from_a_folder_and_split_by_speaker():
    from course_lib.core.corpus import real

    assert real.available(), real.missing_message()  # the test command points at them
    assert not (Path(cl.__file__).parent / "data" / "fsdd").exists()  # not shipped
    every = real.recordings(real.SPEAKERS)
    assert len(every) == 2000 and len(real.checksums()) == 2000
    assert real.verify_real() == []  # every file is the one fsdd.sha256 names
    unseen = real.recordings()  # the default: the unseen real speaker only
    assert {r.speaker for r in unseen} == {real.UNSEEN_SPEAKER} and len(unseen) == 500
    assert real.UNSEEN_SPEAKER not in real.TRAINABLE_SPEAKERS
    assert set(real.ADAPT_SPEAKERS) <= set(real.TRAINABLE_SPEAKERS)
    assert set(real.TRAINABLE_SPEAKERS) | {real.UNSEEN_SPEAKER} == set(real.SPEAKERS)
    first = unseen[0]
    assert (first.id, first.text) == ("0_nicolas_0", "zero")
    assert {r.text for r in unseen} == set(cl.grammar.DIGITS)
    assert all(r.text in cl.grammar.vocabulary() for r in unseen)
    with pytest.raises(ValueError, match="unknown speakers"):
        real.recordings(("theo",))


def test_without_the_recordings_each_real_number_is_skipped_with_one_message(
        tmp_path, monkeypatch):
    from course_lib.core import evaluation
    from course_lib.core.corpus import real

    monkeypatch.setenv(real.REAL_DIR_ENV, str(tmp_path / "nowhere"))
    assert not real.available()
    with pytest.raises(real.RealDataMissing, match="fetch-real"):
        real.recordings()
    with pytest.warns(evaluation.RealVoicesSkipped, match="COURSE_LIB_REAL_DIR"):
        assert evaluation.real_transcripts_or_none(None, tmp_path / "x") is None
    (tmp_path / "other" / "recordings").mkdir(parents=True)  # a folder, but no nicolas
    monkeypatch.setenv(real.REAL_DIR_ENV, str(tmp_path / "other"))
    with pytest.raises(real.RealDataMissing, match="no recordings of .'nicolas'"):
        real.recordings()
    from course_lib.app.cli import main

    assert main(["fetch-real", "--verify", "--dest", str(tmp_path)]) == 1


def test_fetch_real_keeps_only_files_whose_sha256_matches(tmp_path, monkeypatch):
    import hashlib
    import io
    import tarfile

    from course_lib.core.corpus import real

    files = {"0_jackson_0.wav": b"zero", "1_nicolas_3.wav": b"one"}
    sums = tmp_path / "fsdd.sha256"
    sums.write_text("".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n"
                            for n, b in files.items()))
    monkeypatch.setattr(real, "CHECKSUMS", sums)

    def archive(members: dict[str, bytes]) -> str:  # a GitHub-style .tar.gz
        path = tmp_path / f"a{len(list(tmp_path.glob('a*')))}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for name, blob in {**members, "README.md": b"x"}.items():
                sub = "" if name == "README.md" else "recordings/"
                info = tarfile.TarInfo(f"fsdd-26eb9aa/{sub}{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
        return path.as_uri()

    dest = real.fetch_real(tmp_path / "ok", archive({**files, "2_theo_0.wav": b"2"}))
    assert sorted(p.name for p in (dest / "recordings").iterdir()) == sorted(files)
    assert real.verify_real(dest) == []
    with pytest.raises(ValueError, match="1_nicolas_3.wav: the downloaded file's"):
        real.fetch_real(tmp_path / "bad", archive({**files, "1_nicolas_3.wav": b"1"}))
    assert not (tmp_path / "bad" / "recordings" / "1_nicolas_3.wav").exists()
    with pytest.raises(ValueError, match="lacks 1 of the course's recordings"):
        real.fetch_real(tmp_path / "short", archive({"0_jackson_0.wav": b"zero"}))
    (dest / "recordings" / "0_jackson_0.wav").write_bytes(b"changed")
    assert real.verify_real(dest) == ["0_jackson_0.wav: SHA-256 differs from "
                                      "fsdd.sha256"]


def test_a_damaged_real_recording_is_refused_with_its_name(tmp_path):
    from course_lib.core.corpus import real

    folder = tmp_path / "recordings"
    folder.mkdir()
    good = real.recordings()[0]
    wav = real.recording_audio(good)
    assert wav.ndim == 1 and 0.3 < wav.numel() / 16000 < 1.5  # resampled to 16 kHz
    (folder / good.path.name).write_bytes(good.path.read_bytes()[:1000])
    (damaged,) = real.recordings(root=tmp_path)
    with pytest.raises(cl.AudioError, match=f"{good.path.name}: truncated WAV"):
        real.recording_audio(damaged)


# Corpus v2: text kinds, stronger acoustic variety; corpus v1 unchanged.

TINY_V2 = dataclasses.replace(build.CORPUS_V2, seed=7, n_train=16, n_dev=8, n_test=12,
                              chunk_size=12, p_telephone=0.5, p_tilt=0.5)


def test_v1_keys_and_plans_are_unchanged_by_the_v2_fields():
    v1 = cl.CorpusConfig()
    assert v1.key() == "d04d7c6ffe86"  # the key the shipped v1 baseline records
    assert cl.read_metadata(cl.baseline.V1_FILE)["corpus_key"] == v1.key()
    assert cl.baseline.CORPUS.key() == build.CORPUS_V2.key()  # the default example
    assert {p["kind"] for p in plan_corpus(TINY)} == {"command"}
    assert "telephone" not in plan_corpus(TINY)[0]
    assert build.CORPUS_V2.key() != v1.key()
    with pytest.raises(ValueError, match="kinds must name"):
        cl.CorpusConfig(kinds=(("poem", 1.0),))


def test_v2_plans_mix_the_kinds_and_keep_test_commands_out_of_training():
    plans = plan_corpus(build.CORPUS_V2)
    kinds = {}
    for p in plans:
        kinds.setdefault(p["split"], []).append(p["kind"])
    for split, got in kinds.items():
        share = got.count("command") / len(got)
        assert 0.33 < share < 0.47, (split, share)  # 40 % of the text
        assert set(got) == set(cl.grammar.KINDS)
    train = {p["text"] for p in plans if p["split"] == "train"}
    held = {p["text"] for p in plans if p["split"] != "train"
            and (p["kind"] == "command" or len(p["text"].split()) >= 3
                 and p["kind"] == "string")}
    assert not train & held
    effects = [p for p in plans if p["split"] == "train"]
    tel = sum(p["telephone"] for p in effects) / len(effects)
    assert 0.1 < tel < 0.2
    peaks = [p["peak_db"] for p in effects]
    assert min(peaks) < -30 and max(peaks) > 3  # whisper-quiet to clipped


def test_a_v2_corpus_records_kinds_and_effects_and_reopens(tmp_path, monkeypatch):
    monkeypatch.setenv(cl.utils.CACHE_ENV, str(tmp_path))
    corpus = cl.build_corpus(TINY_V2, splits=("test",), progress=False)
    utts = corpus.split("test")
    assert {u.kind for u in utts} <= set(cl.grammar.KINDS)
    assert any("telephone" in u.effects for u in utts)
    assert any("clipped" in u.effects for u in utts)
    clipped = next(u for u in utts if "clipped" in u.effects)
    assert corpus.audio(clipped).abs().max() > 0.99
    again = cl.open_corpus(corpus.root)  # the config's nested tuples survive JSON
    assert again.config == TINY_V2 and again.config.key() == TINY_V2.key()

"""Metrics against hand-computed values; decoding on hand-made posteriors."""

import json

import numpy as np
import pytest
import torch

import course_lib as cl
from course_lib.core.checking import spelled_frames


def test_wer_and_cer_hand_computed():
    refs = ["turn on the lights", "call mom"]
    hyps = ["turn the light", "call mom now"]
    # utt 1: 'on' deleted, 'lights'->'light' substituted: 2 errors / 4 words
    # utt 2: 'now' inserted: 1 error / 2 words  -> corpus WER 3 / 6
    rates = cl.error_rates(refs, hyps)
    assert rates["wer"] == pytest.approx(0.5)
    # characters: utt 1 ref 18 chars, hyp misses "on " and "s" = 4 edits;
    # utt 2 ref 8 chars, hyp adds " now" = 4 edits -> 8 / 26
    assert rates["cer"] == pytest.approx(8 / 26)
    errors, words = cl.word_errors(refs, hyps)
    assert errors.tolist() == [2, 1] and words.tolist() == [4, 2]


def test_bootstrap_ci():
    errors, words = np.array([1, 0, 2, 0, 1] * 40), np.array([4, 5, 6, 3, 2] * 40)
    lo, hi = cl.bootstrap_wer_ci(errors, words)
    point = errors.sum() / words.sum()
    assert lo < point < hi and hi - lo < 0.1
    assert cl.bootstrap_wer_ci(errors, words) == (lo, hi)  # seeded
    lo0, hi0 = cl.bootstrap_wer_ci(np.zeros(10, int), np.full(10, 3))
    assert lo0 == hi0 == 0.0


def test_paired_bootstrap():
    words = np.array([4, 5, 6, 3, 2] * 40)
    b = np.array([1, 0, 2, 0, 1] * 40)
    same = cl.paired_bootstrap(b, b, words)
    assert same == dict(delta=0.0, lo=0.0, hi=0.0, p_better=0.0)
    a = b.copy()
    a[::20] -= 1  # a fixes one error in every 20th utterance, and breaks nothing
    out = cl.paired_bootstrap(a, b, words)
    assert out["delta"] == pytest.approx(-10 / words.sum())
    assert out["lo"] <= out["delta"] <= out["hi"] <= 0 and out["p_better"] > 0.95
    # the pairing is the point: unpaired intervals of a and b overlap
    assert cl.bootstrap_wer_ci(a, words)[1] > cl.bootstrap_wer_ci(b, words)[0]
    flipped = cl.paired_bootstrap(b, a, words)
    assert flipped["delta"] == -out["delta"] and flipped["p_better"] == 0.0
    assert flipped["lo"] == -out["hi"]
    with pytest.raises(ValueError, match="one row per utterance"):
        cl.paired_bootstrap(a[:3], b, words)


def test_score_gives_the_rate_and_its_interval_in_words_or_characters():
    refs, hyps = ["turn on the lights", "call mom"], ["turn the light", "call mom now"]
    wer, (lo, hi) = cl.metrics.score(refs * 20, hyps * 20)
    assert wer == pytest.approx(0.5) and lo <= wer <= hi
    cer, _ = cl.metrics.score(refs, hyps, unit="char")
    assert cer == pytest.approx(8 / 26)  # as jiwer.cer, hand-computed above
    assert cl.word_errors(refs, hyps, unit="char")[0].tolist() == [4, 4]
    with pytest.raises(ValueError, match="unit must be"):
        cl.word_errors(refs, hyps, unit="phone")


def test_paired_wer_and_the_verdict_rule():
    refs = ["call mom", "turn on the fan", "dial five"] * 30
    base = ["call mom", "turn on the fan", "dial nine"] * 30  # 1 error in 8 words
    worse = ["call", "turn on the fan", "dial nine"] * 30  # 2 errors in 8 words
    delta = cl.metrics.paired_wer(refs, worse, base)
    assert delta["delta"] == pytest.approx(1 / 8) and delta["lo"] <= delta["hi"]
    assert cl.metrics.within(delta, 0.2) and not cl.metrics.within(delta, 0.1)
    # the rule is the interval's upper end, not the point: a point under the limit
    # with an interval reaching over it is not enough
    assert not cl.metrics.within(dict(delta=0.0, lo=-0.01, hi=0.012), 0.01)


def test_metric_input_errors():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        cl.error_rates(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="reference transcript is empty"):
        cl.error_rates(["", "b"], ["a", "b"])


def test_collapse_and_greedy_decode():
    assert cl.collapse([0, 8, 8, 0, 5, 0, 12, 12, 0, 12, 15, 15]) == [8, 5, 12, 12, 15]
    lp = torch.stack([spelled_frames("hhe_l_lloo___", cl.VOCAB),
                      spelled_frames("_g_oo__xxxxxx", cl.VOCAB)])
    assert cl.greedy_decode(lp, torch.tensor([13, 6])) == ["hello", "go"]


def test_lexicon_decoder_spells_only_vocabulary_words():
    # greedy decoding keeps the misspelling; the lexicon decoder finds the word
    lp = spelled_frames("f_ii_v_ _n_ii_n_ee__", cl.VOCAB)[None]
    n = torch.tensor([lp.shape[1]])
    assert cl.greedy_decode(lp, n) == ["fiv nine"]
    assert cl.lexicon_decode(lp, n) == ["five nine"]
    small = cl.lexicon_decoder(("on", "off"))
    lp = spelled_frames("o_n_____", cl.VOCAB)[None]
    assert cl.lexicon_decode(lp, torch.tensor([8]), small) == ["on"]
    with pytest.raises(ValueError, match="spelled with"):
        cl.lexicon_decoder(("Five",))


def test_transcribe_decoders_agree_on_clean_frames_and_refuse_unknown_names():
    from course_lib.core.inference import decode

    lp = spelled_frames("d_i_a_l_ _f_i_v_e__", cl.VOCAB)[None]
    n = torch.tensor([lp.shape[1]])
    for lexicon in (False, True, "snap", "beam"):
        assert decode(lp, n, lexicon) == ["dial five"]
    with pytest.raises(ValueError, match="lexicon='vocab'"):
        decode(lp, n, "vocab")


def test_file_sizes(tmp_path):
    path = tmp_path / "zeros.bin"
    path.write_bytes(bytes(100_000))
    sizes = cl.file_sizes(path)
    assert sizes["file_bytes"] == 100_000
    assert sizes["zlib_bytes"] < 1000 and sizes["lzma_bytes"] < 1000


def test_count_nonzero():
    lin = torch.nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight[0] = 0
    assert cl.count_nonzero(lin) == 12 + 3 - 4


def test_latency_is_measured_single_threaded():
    threads = []
    lat = cl.measure_latency(lambda w: threads.append(torch.get_num_threads()),
                             [torch.zeros(16000)], repeats=2)
    assert set(threads) == {1} and lat.repeats == 2 and lat.rtf >= 0


def test_snap_to_vocabulary():
    vocab = ["school", "the", "to", "message", "rachel"]
    assert cl.snap_to_vocabulary("message rachel", vocab) == "message rachel"
    assert cl.snap_to_vocabulary("mesage rachl to the schol", vocab) == \
        "message rachel to the school"
    assert cl.snap_to_vocabulary("", vocab) == ""


def test_file_sizes_of_a_large_file_are_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv(cl.utils.CACHE_ENV, str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    path = tmp_path / "model.bin"
    path.write_bytes(rng.integers(0, 4, 1_500_000, dtype=np.uint8).tobytes())
    first = cl.file_sizes(path)
    assert first["zlib_bytes"] < first["file_bytes"]

    def no_lzma(*args, **kwargs):
        raise AssertionError("lzma ran again on bytes it had already sized")

    monkeypatch.setattr(cl.metrics.lzma, "compress", no_lzma)
    copy = tmp_path / "copy.bin"
    copy.write_bytes(path.read_bytes())
    assert cl.file_sizes(copy) == first  # same bytes, another path: from the cache
    path.write_bytes(path.read_bytes()[:-1])  # other bytes: computed again
    with pytest.raises(AssertionError, match="lzma ran again"):
        cl.file_sizes(path)


def test_a_corrupt_size_cache_is_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv(cl.utils.CACHE_ENV, str(tmp_path / "cache"))
    path = tmp_path / "model.bin"
    path.write_bytes(np.random.default_rng(1).integers(0, 4, 1_200_000,
                                                       dtype=np.uint8).tobytes())
    first = cl.file_sizes(path)
    (memo,) = (tmp_path / "cache" / "sizes").glob("*.json")
    memo.write_text("{half a record")
    assert cl.file_sizes(path) == first
    assert json.loads(memo.read_text()) == first  # and the record is whole again

"""The ledger: records on real files, replace-by-name, the report command."""

import json
import subprocess
import sys

import pytest
import torch

import course_lib as cl


def _record(tmp_path, name, chapter="1"):
    model = cl.CTCModel(cl.ModelConfig(rnn_hidden=16, conv_channels=16)).eval()
    path = cl.save_model(model, tmp_path / f"{name}.safetensors")
    return cl.measure(name, chapter, model, path, ["call mom", "turn on the fan"],
                      ["call mom", "turn the fan"],
                      latency_fn=lambda w: cl.recognize(model, w),
                      latency_waves=[torch.zeros(8000)], config={"k": 1})


def test_measure_and_report(cache, tmp_path):
    rec = _record(tmp_path, "tiny")
    assert rec.file_bytes == (tmp_path / "tiny.safetensors").stat().st_size
    assert rec.wer == 1 / 6  # 1 deletion / 6 reference words
    assert rec.latency_ms > 0 and rec.nonzero_params > 0
    _record(tmp_path, "tiny")  # same name: replaced, not duplicated
    _record(tmp_path, "other")
    assert [r.name for r in cl.Ledger().records()] == ["tiny", "other"]
    out = subprocess.run([sys.executable, "-m", "course_lib", "report", "--json"],
                         capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    for key in ("name", "chapter", "wer", "cer", "params", "nonzero_params",
                "file_bytes", "compressed_bytes", "latency_ms", "config"):
        assert key in rows[0]
    table = subprocess.run([sys.executable, "-m", "course_lib", "report"],
                           capture_output=True, text=True, check=True).stdout
    assert "tiny" in table and "WER %" in table


def test_out_of_domain_columns(cache, tmp_path):
    model = cl.CTCModel(cl.ModelConfig(rnn_hidden=16, conv_channels=16)).eval()
    path = cl.save_model(model, tmp_path / "ood.safetensors")
    refs = ["call mom", "five", "nine two", "turn on the fan"]
    hyps = ["call mom", "fife", "nine two", "turn the fan"]
    rec = cl.measure("ood", "1", model, path, refs, hyps,
                     kinds=["command", "word", "digits", "command"],
                     lexicon_hyps=["call mom", "five", "nine two", "turn the fan"],
                     real=(["five", "six"], ["five", "sticks"]))
    assert rec.wer == 2 / 9 and rec.wer_words == 1 / 3  # 'fife' in 3 word-kind words
    assert rec.wer_lexicon == 1 / 9 and rec.wer_real == 1 / 2
    for name in cl.ledger.CI_FIELDS:
        if name != "wer_fit_ci95":  # the baseline's own column (chapter 1)
            lo, hi = getattr(rec, name)
            assert 0 <= lo <= hi
    back = cl.Ledger().get("ood")
    assert back == rec  # the intervals come back as tuples
    table = cl.Ledger().table()
    assert "words %" in table and "real %" in table and "33.33" in table
    with pytest.raises(ValueError, match="3 kinds for 4"):
        cl.measure("bad", "1", model, path, refs, hyps, kinds=["command"] * 3)


def test_an_old_ledger_without_the_new_columns_still_loads(cache, tmp_path):
    rec = _record(tmp_path, "old")
    rows = json.loads(cl.Ledger().path.read_text())
    for name in ("cer_ci95", "wer_lexicon", "wer_lexicon_ci95", "wer_words",
                 "wer_words_ci95", "wer_real", "wer_real_ci95"):
        for row in rows:
            row.pop(name)
    cl.Ledger().path.write_text(json.dumps(rows))
    old = cl.Ledger().get("old")
    assert old.wer == rec.wer and old.wer_real is None
    assert "real %" not in cl.ledger.format_table([old])


def test_table_of_some_chapters(cache, tmp_path):
    _record(tmp_path, "first-row", "1")
    _record(tmp_path, "second-row", "3.1")
    both = cl.Ledger().table()
    assert "first-row" in both and "second-row" in both
    only = cl.Ledger().table(chapters=("3.1",))
    assert "second-row" in only and "first-row" not in only and "WER %" in only


def test_corrupt_ledger_is_explained(cache):
    path = cl.Ledger().path
    path.write_text("{not json")
    try:
        import pytest

        with pytest.raises(ValueError, match="corrupt ledger"):
            cl.Ledger().records()
    finally:
        path.unlink()


def test_record_model_measures_every_column(tiny_corpus, tmp_path):
    from dataclasses import replace

    from course_lib.core.corpus.build import CORPUS_V2

    # corpus v2 has word kinds: a tiny one of it (its test split only is built)
    corpus = replace(CORPUS_V2, n_train=20, n_dev=8, n_test=24, chunk_size=24)
    model = cl.CTCModel(cl.ModelConfig(rnn_hidden=16, conv_channels=16)).eval()
    path = cl.save_model(model, tmp_path / "every.safetensors")
    rec = cl.record_model("every", "2", model, path, {"k": 2}, corpus_cfg=corpus,
                          progress=False)
    refs, hyps = cl.test_transcripts(model, path, corpus_cfg=corpus, lexicon=False,
                                     progress=False)
    assert rec.wer == cl.error_rates(refs, hyps)["wer"] and rec.n_test == len(refs)
    assert rec.latency_ms > 0 and rec.config == {"k": 2}
    assert cl.Ledger().get("every") == rec
    # every column, with its interval (an untrained model: all wrong)
    assert None not in (rec.wer_lexicon, rec.wer_words, rec.wer_real)
    assert rec.wer_real >= 1.0
    assert rec.wer_real_ci95 is not None and rec.wer_lexicon_ci95 is not None
    assert rec.wer_speakers is None and rec.wer_fit is None  # the baseline's own


def test_the_baselines_own_columns_every_speaker_and_the_fit(cache, tmp_path):
    model = cl.CTCModel(cl.ModelConfig(rnn_hidden=16, conv_channels=16)).eval()
    path = cl.save_model(model, tmp_path / "own.safetensors")
    rec = cl.measure("own", "1", model, path, ["call mom"], ["call mom"],
                     speakers={"ann": (["five", "six"], ["five", "sticks"]),
                               "bob": (["one"], ["one"])},
                     fit=(["turn on the fan"], ["turn the fan"]))
    assert rec.wer_speakers["ann"][0] == 0.5 and rec.wer_speakers["bob"] == [0, 0, 0]
    assert rec.wer_fit == 0.25 and rec.wer_fit_ci95 == (0.25, 0.25)
    assert cl.Ledger().get("own") == rec


def test_record_model_scores_the_runner_and_counts_the_model(tiny_corpus, tmp_path):
    from tinycfg import TINY

    model = cl.CTCModel(cl.ModelConfig(rnn_hidden=16, conv_channels=16)).eval()
    path = cl.save_model(model, tmp_path / "run.safetensors")
    engine = cl.quantization.int8_engine(model)  # hides its weights from parameters()
    assert cl.count_params(engine) < cl.count_params(model)
    rec = cl.record_model("run", "2", model, path, corpus_cfg=TINY, progress=False,
                          runner=engine)
    refs, hyps = cl.test_transcripts(engine, path, corpus_cfg=TINY, progress=False)
    assert rec.params == cl.count_params(model)
    assert rec.wer == cl.error_rates(refs, hyps)["wer"]


def test_several_decoders_share_one_forward_pass_and_the_cache(tiny_corpus, tmp_path):
    from tinycfg import TINY

    from course_lib.core.evaluation import test_transcripts_each

    model = cl.CTCModel(cl.ModelConfig(rnn_hidden=16, conv_channels=16)).eval()
    path = cl.save_model(model, tmp_path / "each.safetensors")
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    both = test_transcripts_each(model, path, (False, "snap"), corpus_cfg=TINY,
                                 progress=False)
    n_batches = len(calls)
    alone = [cl.test_transcripts(model, path, corpus_cfg=TINY, lexicon=lex,
                                 progress=False) for lex in (False, "snap")]
    assert both == alone and len(calls) == n_batches  # read from the cache
    assert n_batches == len(cl.length_batches(
        [e.feats.shape[0] for e in cl.featurize(tiny_corpus, "test", progress=False)],
        64))  # one pass for the two decoders


def test_the_ledger_view_splits_accuracy_and_cost_into_two_html_tables(cache,
                                                                       tmp_path):
    model = cl.CTCModel(cl.ModelConfig(rnn_hidden=16, conv_channels=16)).eval()
    path = cl.save_model(model, tmp_path / "view.safetensors")
    cl.measure("a <model>", "3.1", model, path, ["call mom"], ["call mum"])
    cl.measure("other", "4", model, path, ["call mom"], ["call mom"])
    view = cl.Ledger().view(chapters=("3.1",))
    page = view._repr_html_()
    assert page.count('<table class="course-ledger">') == 2
    assert page.count("a &lt;model&gt;") == 2 and "other" not in page  # escaped
    accuracy, cost = page.split("</table>")[:2]
    assert "WER %" in accuracy and "50.00" in accuracy and "file KB" not in accuracy
    assert "file KB" in cost and f"{cl.count_params(model):,}" in cost
    assert str(view) == cl.Ledger().table(chapters=("3.1",))  # print: the text table

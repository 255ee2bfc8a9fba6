"""`COURSE_LIB_EXAMPLE` picks the running example for the whole package (issue 26)."""

import json
import os
import subprocess
import sys

import pytest

import course_lib as cl

PROBE = """
import json
import course_lib as cl
from course_lib.core import inference
from course_lib.core.evaluation import REAL_TRAIN
from course_lib.core.ledger import Ledger
from course_lib.techniques.distillation.students import STUDENT
from course_lib.zoo import ARTIFACTS, baseline
ft = cl.FinetuneConfig()
print(json.dumps(dict(
    corpus=cl.CORPUS.key(), lexicon=inference.LEXICON, lr=ft.lr,
    specaugment=ft.specaugment, artifacts=ARTIFACTS.name, ledger=Ledger().path.name,
    student_conv=STUDENT.n_conv, model_conv=baseline.MODEL.n_conv,
    shipped=baseline.shipped_matches(), real=list(REAL_TRAIN))))
"""


def probe(example: str | None, tmp_path) -> dict:
    """What the package picks in a fresh interpreter with `example` set."""
    env = {k: v for k, v in os.environ.items() if k != "COURSE_LIB_EXAMPLE"}
    env["COURSE_LIB_CACHE"] = str(tmp_path)
    if example is not None:
        env["COURSE_LIB_EXAMPLE"] = example
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_v2_is_the_default_and_v1_switches_everything(tmp_path):
    from course_lib.core.corpus.build import CORPUS_V2, CorpusConfig

    v2, v1 = probe(None, tmp_path), probe("v1", tmp_path)
    assert v2 == probe("v2", tmp_path)
    assert v1 == dict(corpus=CorpusConfig().key(), lexicon="snap", lr=1e-3,
                      specaugment=True, artifacts="v1", ledger="ledger.json",
                      student_conv=2, model_conv=2, shipped=True, real=[])
    assert v2 == dict(corpus=CORPUS_V2.key(), lexicon="beam", lr=3e-4,
                      specaugment=False, artifacts="artifacts", ledger="ledger-v2.json",
                      student_conv=1, model_conv=1, shipped=True,
                      real=list(cl.real.ADAPT_SPEAKERS))


def test_an_unknown_example_is_refused_by_name(tmp_path):
    with pytest.raises(subprocess.CalledProcessError) as info:
        probe("v3", tmp_path)
    assert "COURSE_LIB_EXAMPLE='v3'" in info.value.stderr


def test_v2_recipes_train_on_the_baselines_real_speakers_too(monkeypatch):
    # corpus utterances first, then the same share of the real recordings
    from course_lib.core import evaluation

    corpus = [object() for _ in range(160)]
    real = [object() for _ in range(10)]
    cfg = cl.CorpusConfig(n_train=160)
    monkeypatch.setattr(evaluation, "CORPUS", cfg)
    monkeypatch.setattr(evaluation, "REAL_TRAIN", ("jackson", "george"))
    monkeypatch.setattr(evaluation, "build_corpus", lambda *a, **k: None)
    monkeypatch.setattr(evaluation, "featurize",
                        lambda c, s, limit=None, progress=True: corpus[:limit])
    monkeypatch.setattr(evaluation, "real_examples", lambda speakers: real)
    everything = evaluation.train_examples(None, cfg)
    assert everything[:160] == corpus
    assert sorted(map(id, everything[160:])) == sorted(map(id, real))
    half = evaluation.train_examples(80, cfg)
    assert half[:80] == corpus[:80] and len(half) == 85
    assert set(map(id, half[80:])) <= set(map(id, real))
    assert evaluation.train_examples(80, cfg) == half  # the same subset every time
    # another corpus (a tiny test corpus, say) gets no real recordings
    assert evaluation.train_examples(80, cl.CorpusConfig(seed=5)) == corpus[:80]
    monkeypatch.setattr(evaluation, "REAL_TRAIN", ())  # v1
    assert evaluation.train_examples(None, cfg) == corpus

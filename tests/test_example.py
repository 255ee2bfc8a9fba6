"""One `RunningExample` object says what the running example is (issues 26, 40)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import course_lib as cl
from course_lib.core.example import EXAMPLES

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
    name=cl.EXAMPLE.name, corpus=cl.CORPUS.key(), lexicon=inference.LEXICON,
    primary=inference.PRIMARY, lr=ft.lr, specaugment=ft.specaugment,
    artifacts=ARTIFACTS.name, ledger=Ledger().path.name, student_conv=STUDENT.n_conv,
    model_conv=baseline.MODEL.n_conv, frame_ms=cl.EXAMPLE.frame_ms,
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


def test_v2_is_the_default_and_one_name_switches_to_v3(tmp_path):
    from course_lib.core.corpus.build import CORPUS_V2

    v2, v3 = probe(None, tmp_path), probe("v3", tmp_path)
    assert v2 == probe("v2", tmp_path)
    assert v2 == dict(name="v2", corpus=CORPUS_V2.key(), lexicon="beam", primary=False,
                      lr=3e-4, specaugment=False, artifacts="artifacts",
                      ledger="ledger-v2.json", student_conv=1, model_conv=1,
                      frame_ms=20.0, shipped=True, real=["jackson", "george"])
    # v3 keeps its own ledger and files; nothing of v2's is taken for it
    assert v3 == {**v2, "name": "v3", "artifacts": "v3", "ledger": "ledger-v3.json",
                  "shipped": False, "real": ["jackson", "george", "lucas"]}


def test_an_unknown_example_is_refused_by_name(tmp_path):
    for name in ("v1", "v4"):
        with pytest.raises(subprocess.CalledProcessError) as info:
            probe(name, tmp_path)
        assert f"COURSE_LIB_EXAMPLE={name!r}: use one of ['v2', 'v3']" in \
            info.value.stderr


def test_no_module_branches_on_which_example_it_is():
    # The package reads the example's values; it never asks which one it is, and
    # the techniques do not import it at all (their defaults are plain values).
    root = Path(cl.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        where = path.relative_to(root)
        assert "EXAMPLE.name" not in text and "import V2" not in text, where
        assert not re.search(r"\bif V[123]\b|\bV[123] else\b", text), where
        if where.parts[0] == "techniques":
            assert "core.example" not in text and "EXAMPLE" not in text, where
    assert all(v.real_train and cl.real.UNSEEN_SPEAKER not in v.real_train
               for v in EXAMPLES.values())
    assert len({v.ledger for v in EXAMPLES.values()}) == len(EXAMPLES)
    assert len({v.artifacts for v in EXAMPLES.values()}) == len(EXAMPLES)


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
    monkeypatch.setattr(evaluation, "real_examples", lambda speakers, perturb: real)
    everything = evaluation.train_examples(None, cfg)
    assert everything[:160] == corpus
    assert sorted(map(id, everything[160:])) == sorted(map(id, real))
    half = evaluation.train_examples(80, cfg)
    assert half[:80] == corpus[:80] and len(half) == 85
    assert set(map(id, half[80:])) <= set(map(id, real))
    assert evaluation.train_examples(80, cfg) == half  # the same subset every time
    # another corpus (a tiny test corpus, say) gets no real recordings
    assert evaluation.train_examples(80, cl.CorpusConfig(seed=5)) == corpus[:80]
    monkeypatch.setattr(evaluation, "REAL_TRAIN", ())  # an example with none
    assert evaluation.train_examples(None, cfg) == corpus

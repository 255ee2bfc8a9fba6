"""`COURSE_LIB_EXAMPLE` picks the running example for the whole package (issue 26)."""

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json
import course_lib as cl
from course_lib.core import inference
from course_lib.core.ledger import Ledger
from course_lib.techniques.distillation.students import STUDENT
from course_lib.zoo import ARTIFACTS, baseline
ft = cl.FinetuneConfig()
print(json.dumps(dict(
    corpus=cl.CORPUS.key(), lexicon=inference.LEXICON, lr=ft.lr,
    specaugment=ft.specaugment, artifacts=ARTIFACTS.name, ledger=Ledger().path.name,
    student_conv=STUDENT.n_conv, model_conv=baseline.MODEL.n_conv,
    shipped=baseline.shipped_matches())))
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


def test_v1_is_the_default_and_v2_switches_everything(tmp_path):
    from course_lib.core.corpus.build import CORPUS_V2, CorpusConfig

    v1, v2 = probe(None, tmp_path), probe("v2", tmp_path)
    assert v1 == probe("v1", tmp_path)
    assert v1 == dict(corpus=CorpusConfig().key(), lexicon="snap", lr=1e-3,
                      specaugment=True, artifacts="artifacts", ledger="ledger.json",
                      student_conv=2, model_conv=2, shipped=True)
    assert v2 == dict(corpus=CORPUS_V2.key(), lexicon="beam", lr=3e-4,
                      specaugment=False, artifacts="v2", ledger="ledger-v2.json",
                      student_conv=1, model_conv=1, shipped=True)


def test_an_unknown_example_is_refused_by_name(tmp_path):
    with pytest.raises(subprocess.CalledProcessError) as info:
        probe("v3", tmp_path)
    assert "COURSE_LIB_EXAMPLE='v3'" in info.value.stderr

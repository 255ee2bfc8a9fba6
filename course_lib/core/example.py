"""The running example: one frozen configuration object, `EXAMPLE` (chapter 1).

A `RunningExample` says everything that makes the course's recognizer what it is:
the corpus, the baseline's model and recipe, the real speakers it trains on, the
chapters' fine-tuning recipe, the decoders, and where its ledger and shipped files
live. The package reads these values from `EXAMPLE` and nowhere branches on which
example it is; technique defaults are plain values that do not depend on it.

Named instances: `V2`, the default (corpus v2 and two real speakers, issue 26),
and `V3`, the running example v3 (issue 40), which gets its shipped files as the
chapters move to it. Choosing one is one name: `DEFAULT` here, or the environment
variable `COURSE_LIB_EXAMPLE` set before Python starts (read once, in this module).
The first edition's example (v1) is no longer selectable; chapter 1 still scores its
shipped baseline file (`zoo.baseline.V1_FILE`) beside v2's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from .corpus.config import CORPUS_V2, CorpusConfig
from .corpus.real import ADAPT_SPEAKERS, TRAINABLE_SPEAKERS
from .model import ModelConfig
from .recipe import FinetuneConfig, TrainConfig


@dataclass(frozen=True)
class RunningExample:
    """The running example: corpus, baseline, recipes, decoders, files (chapter 1)."""

    name: str
    corpus: CorpusConfig
    model: ModelConfig  # the baseline's design
    train: TrainConfig  # the baseline's recipe (`python -m course_lib train-baseline`)
    real_train: tuple[str, ...]  # real speakers the baseline (and recipes) train on
    # perturbed copies of their recordings, e.g. ("speed:0.9",) (`real_examples`)
    real_perturb: tuple[str, ...] = ()
    # the chapters' fine-tuning recipe, the one that passes the dense control
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    lexicon: str = "beam"  # what `lexicon=True` decodes with: "beam" or "snap"
    primary: bool | str = False  # the ledger's primary WER: False is greedy CTC
    ledger: str = "ledger.json"  # the ledger's file name in the cache
    artifacts: str = ""  # its shipped files: this folder of course_lib/artifacts/

    @property
    def frame_ms(self) -> float:
        """Milliseconds per CTC output frame: 10 ms hops, halved per strided conv."""
        return 10.0 * 2 ** self.model.n_conv / self.model.upsample


# The running example v2 (issue 26): corpus v2 and the real speakers jackson and
# george. Its baseline's design and recipe, each choice measured against the run
# before (`zoo.baseline`): one strided conv (20 ms frames), SpecAugment off.
V2 = RunningExample(
    name="v2", corpus=CORPUS_V2, model=ModelConfig(n_conv=1),
    train=TrainConfig(epochs=14, specaugment=False),
    real_train=ADAPT_SPEAKERS, ledger="ledger-v2.json", artifacts="")

# The running example v3 (issue 40): the same corpus and design family, a third
# real training speaker (lucas; nicolas stays unseen). Its baseline's size and
# recipe follow the design study (`app.study`, `studies/v3/`); until its files are
# shipped in `course_lib/artifacts/v3/`, its results are trained on demand.
V3 = replace(V2, name="v3", real_train=TRAINABLE_SPEAKERS,
             ledger="ledger-v3.json", artifacts="v3")

EXAMPLES = {e.name: e for e in (V2, V3)}
EXAMPLE_ENV = "COURSE_LIB_EXAMPLE"
DEFAULT = "v2"  # the flip to v3 is this one name
_chosen = os.environ.get(EXAMPLE_ENV) or DEFAULT
if _chosen not in EXAMPLES:
    raise ValueError(f"{EXAMPLE_ENV}={_chosen!r}: use one of {sorted(EXAMPLES)}")
EXAMPLE: RunningExample = EXAMPLES[_chosen]

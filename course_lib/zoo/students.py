"""Chapter 3.3's students, trained with the cached baseline as teacher, and shipped.

`distilled_student(cfg)` trains one student by `cfg.method`
(`distillation.train_student`) and caches it by the teacher's sha256 and the
configuration; the package carries the default student of every method, and the
two of chapter 3.3.5 trained on the first `SCARCE` transcripts.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

from ..core.batching import Example, featurize
from ..core.corpus.build import Corpus, build_corpus
from ..core.evaluation import CORPUS, dev_wer, train_examples
from ..core.inference import decoder_id
from ..core.model import CTCModel
from ..core.modelfile import save_model
from ..core.training import checkpoint_seconds
from ..core.utils import config_hash, sha256_file
from ..techniques.distillation.students import (DistillConfig, pseudo_label,
                                                train_student)
from . import cached_result, load_with_history
from .baseline import baseline_path, load_baseline


def extra_corpus(cfg: DistillConfig = DistillConfig(), progress: bool = True
                 ) -> Corpus:
    """The unlabelled utterances of sequence-level KD: train voices, another seed.

    Synthesized like the training split (about 1 s per 100 utterances); their true
    transcripts exist but training never reads them, only the teacher's.
    """
    return build_corpus(replace(CORPUS, seed=cfg.extra_seed, n_train=cfg.extra),
                        splits=("train",), progress=progress)


def shipped_name(method: str, train_limit: int | None = None) -> str:
    """The `SHIPPED` name of the trained student of `method` (chapter 3.3), trained
    on the first `train_limit` transcripts (None: all of them)."""
    name = method.replace("+", "-") + ("" if train_limit is None else f"-{train_limit}")
    return f"student-{name}"


def student_key(cfg: DistillConfig, train_limit: int | None, eval_every: int,
                teacher_file: Path) -> str:
    """Hash of everything a student depends on (the teacher's file included)."""
    key = dict(teacher=sha256_file(teacher_file), distill=asdict(cfg),
               corpus=CORPUS.key(), train_limit=train_limit, eval_every=eval_every)
    key["labels"] = decoder_id(True)  # what writes the pseudo-labels (LM included)
    return config_hash(key)


def distilled_student(cfg: DistillConfig = DistillConfig(),
                      train_limit: int | None = None, eval_every: int = 250,
                      progress: bool = True, allow_shipped: bool = True
                      ) -> tuple[CTCModel, Path, list[dict]]:
    """The student trained by `cfg` from the cached baseline as teacher (3.3).

    It learns from the first `train_limit` transcripts (None: all of them) and, for
    the sequence-level methods, from all `cfg.extra` teacher-labelled utterances.
    Cached by the teacher's sha256 and the configuration. For the default
    configuration of each method the package carries the result (made by
    `python -m course_lib distill --ship`, 45 to 60 minutes per method on 2
    cores), and for `SCARCE_METHODS` with `train_limit=SCARCE` too (`distill
    --labelled 2000 --ship`); a shipped file is used only when its recorded key
    equals this call's. The history holds the dev WER every `eval_every` steps.
    """
    base = baseline_path(progress)
    key = student_key(cfg, train_limit, eval_every, base)
    name = shipped_name(cfg.method, train_limit)

    def make(path: Path) -> None:
        teacher = load_baseline(progress)
        examples = train_examples(train_limit, progress=progress)
        extra: list[Example] = []
        if cfg.sequence:
            unlabelled = featurize(extra_corpus(cfg, progress), "train",
                                   progress=progress)
            extra = pseudo_label(teacher, unlabelled)
        ckpt = path.with_name("checkpoint.pt")  # an interrupted run resumes from it
        t0 = time.perf_counter() - checkpoint_seconds(ckpt)
        model, history = train_student(cfg, teacher, examples, extra,
                                       evaluate=lambda m: dict(dev_wer=dev_wer(m)),
                                       eval_every=eval_every, progress=progress,
                                       checkpoint=ckpt)
        save_model(model, path, distill_config=asdict(cfg), history=history,
                   seconds=round(time.perf_counter() - t0, 1), result_key=key,
                   teacher_sha256=sha256_file(base), train_limit=train_limit,
                   extra_labelled=len(extra))
        ckpt.unlink(missing_ok=True)

    return cached_result("student", key, "model.safetensors", make, load_with_history,
                         shipped=name if allow_shipped else None)


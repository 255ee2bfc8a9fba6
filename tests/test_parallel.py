"""Cached trainings side by side in worker processes (parallel.run_cached)."""

import functools
from pathlib import Path

import pytest
import torch

import course_lib as cl
from course_lib import parallel
from course_lib.core.training import report_steps_to

from tinycfg import TINY

SMALL = cl.ModelConfig(conv_channels=32, rnn_hidden=32, rnn_layers=1)


def tiny_examples() -> list:
    """The tiny corpus's training utterances (also in a worker: it opens the cache)."""
    return cl.featurize(cl.build_corpus(TINY, progress=False), "train", progress=False)


def tiny_cached_run(out: str, seed: int, steps: int = 6) -> dict:
    """A cached trainer in miniature: fine-tune a small model once, then load it."""
    path = Path(out) / "model.safetensors"
    if not path.exists():
        torch.manual_seed(seed)
        model = cl.CTCModel(SMALL)
        cfg = cl.FinetuneConfig(steps=steps, batch_size=8, lr=3e-3, threads=1,
                                seed=seed)
        cl.finetune(model, tiny_examples(), cfg, progress=False)
        cl.save_model(model, path)
    return cl.load_model(path, expect=SMALL).state_dict()


def failing_run(message: str) -> None:
    raise ValueError(message)


def uncached_run(steps: int = 2) -> None:
    """Trains every time it is called: it caches nothing."""
    cfg = cl.FinetuneConfig(steps=steps, batch_size=8, threads=1)
    cl.finetune(cl.CTCModel(SMALL), tiny_examples(), cfg, progress=False)


def test_side_by_side_gives_what_one_after_another_gives(tiny_corpus, tmp_path):
    calls = [functools.partial(tiny_cached_run, str(tmp_path / f"p{s}"), s)
             for s in (0, 1)]
    results = parallel.run_cached(calls, workers=2, progress=False)
    assert all((tmp_path / f"p{s}" / "model.safetensors").exists() for s in (0, 1))
    for seed, got in zip((0, 1), results):
        # The same call made here, in this process, from scratch.
        want = tiny_cached_run(str(tmp_path / f"s{seed}"), seed)
        assert all(torch.equal(got[k], want[k]) for k in want)
    assert not torch.equal(results[0]["head.weight"], results[1]["head.weight"])


def test_a_worker_error_is_raised_here(tmp_path):
    with pytest.raises(ValueError, match="bad configuration 7"):
        parallel.run_cached([functools.partial(failing_run, "bad configuration 7")],
                            progress=False)
    assert parallel.run_cached([], progress=False) == []


def test_a_call_that_caches_nothing_is_stopped(tiny_corpus):
    with pytest.raises(RuntimeError, match="started training again"):
        parallel.run_cached([uncached_run], progress=False)


def test_finetune_reports_planned_and_done_steps(tiny_corpus):
    examples = tiny_examples()
    cfg = cl.FinetuneConfig(steps=5, batch_size=8, threads=1)
    reports = []
    report_steps_to(lambda planned, done: reports.append((planned, done)))
    try:
        cl.finetune(cl.CTCModel(SMALL), examples, cfg, progress=False)
    finally:
        report_steps_to(None)
    assert reports == [(5, 0)] + [(0, 1)] * 5
    cl.finetune(cl.CTCModel(SMALL), examples, cfg, progress=False)  # no one listens
    assert len(reports) == 6

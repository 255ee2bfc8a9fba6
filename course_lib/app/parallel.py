"""Independent training runs side by side, one process each (chapters 3.1 and 3.2).

A chapter that compares two fine-tuning recipes runs two independent trainings. One
small GRU model does not keep two CPU cores busy: its matrices are too small to split
well between threads. Two runs in two processes, one thread each, share the cores
better than two runs one after the other with two threads each: two 300-step
pruning runs (chapter 3.1's first recipe) took 341-432 s side by side on 2 cores
(three runs), against 492-508 s in turn.

`run_cached` takes the calls of cached trainers (`functools.partial` of, say,
`pruning.pruned_baseline`), runs them in worker processes (spawned: a fresh
interpreter, as `data.build_corpus` uses), then calls each again here, where it
loads its result from the cache. For the results to be the same as a run in this
process, the fine-tuning configurations should use one thread
(`FinetuneConfig(threads=1)`): a different thread count sums in another order.

Each worker gets its share of the cores for everything else it computes (features,
dev scores). More threads than cores is far worse than it sounds: two processes that
featurized 2,000 utterances with two threads each on 2 cores took 140 s, against 9 s
for one of them alone (OpenMP threads wait for each other by spinning).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import os
import queue
from typing import Callable

import torch

from ..core.training import report_steps_to


def _init_worker(threads: int, steps: queue.Queue) -> None:
    """In each worker: its share of the cores; fine-tuning steps go to `steps`."""
    torch.set_num_threads(threads)
    report_steps_to(lambda planned, done: steps.put((planned, done)))


def _run(call: Callable[[], object]) -> None:
    """In a worker: make the call's result (it is cached); keep its bars quiet."""
    with contextlib.redirect_stderr(io.StringIO()):  # tqdm writes to stderr
        call()


def run_cached(calls: list[Callable[[], object]], workers: int | None = None,
               progress: bool = True, desc: str = "training side by side") -> list:
    """Run cached trainings in `workers` processes, then return each call's result.

    Each call must cache its result (the call in this process loads it; one that
    starts training again is stopped with an error). One progress bar counts the
    fine-tuning steps of all the workers together. An error in a worker is raised
    here, with its message. In a script, call it under `if __name__ == "__main__":`,
    as for any spawned process.
    """
    from tqdm.auto import tqdm

    if not calls:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(calls)))
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, tqdm(desc=f"{desc} ({workers} processes)",
                                        unit="step", disable=not progress) as bar:
        steps = manager.Queue()  # (planned, done) messages from the workers
        pool = ctx.Pool(workers, _init_worker, (threads, steps))
        try:
            pending = pool.map_async(_run, calls, chunksize=1)
            while not pending.ready():
                pending.wait(0.5)
                with contextlib.suppress(queue.Empty):
                    while True:
                        planned, done = steps.get_nowait()
                        bar.total = (bar.total or 0) + planned
                        bar.update(done)
                bar.refresh()
            pending.get()  # re-raises a worker's error
        except BaseException:  # an error, or Ctrl-C: stop the workers now
            pool.terminate()
            raise
        else:  # let the workers exit normally, so that they free what they hold
            pool.close()
        finally:
            pool.join()
    return [_load(call) for call in calls]


def _load(call: Callable[[], object]) -> object:
    """The call's result, which must now come from the cache, not from training."""
    def refuse(planned: int, done: int) -> None:
        raise RuntimeError(f"{call} started training again instead of loading its "
                           "result: run_cached needs calls that cache what they make")

    report_steps_to(refuse)
    try:
        return call()
    finally:
        report_steps_to(None)

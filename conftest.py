"""Root pytest hooks for the notebooks that nbval runs cell by cell.

1. Print how long each notebook took; with COURSE_LIB_CELL_TIMES=FILE set, also write
   each code cell's seconds to FILE as JSON ({notebook: {cell id: seconds}}), so that
   a change's new cells can be timed on their own.
2. Hand the outputs of every book chapter that ran in full, with no cell failing or
   skipped, to jupyter-book's execution cache (`_build/.jupyter_cache`). The book
   build (`execute_notebooks: cache`) then renders what the tests just computed
   instead of running every chapter a second time. jupyter-cache matches a notebook
   by the hash of its code cells, so a chapter whose code changed afterwards is
   executed again by the build, as before.
"""

from __future__ import annotations

import copy
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

ROOT = Path(__file__).resolve().parent
BOOK_DIR = ROOT / "book"
BOOK_CACHE = ROOT / "_build" / ".jupyter_cache"  # jupyter-book's default location

_NOTEBOOK_SECONDS: dict[str, float] = defaultdict(float)
_CELL_SECONDS: dict[str, dict[str, float]] = defaultdict(dict)


@dataclass
class _NotebookRun:
    """What nbval produced for one notebook: its cells' outputs, in one kernel."""

    nb: Any  # the notebook as nbval read it; its cells are the items' cells
    outputs: dict[int, list] = field(default_factory=dict)  # id(cell) -> outputs
    complete: bool = True  # False once a cell fails or is skipped


_RUNS: dict[Path, _NotebookRun] = {}
_STORED: list[str] = []


def pytest_runtest_logreport(report):
    """Add up the durations of the cells of each notebook."""
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _NOTEBOOK_SECONDS[path] += report.duration


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the outputs of each nbval cell that passed."""
    outcome = yield
    if call.when != "call" or not hasattr(item, "test_outputs"):
        return  # not an nbval cell (`test_outputs` is set by nbval's IPyNbCell)
    report = outcome.get_result()
    cell_id = item.cell.get("id") or item.name  # nbformat >= 4.5 cells carry an id
    _CELL_SECONDS[item.nodeid.split("::")[0]][cell_id] = round(report.duration, 3)
    run = _RUNS.setdefault(Path(str(item.fspath)).resolve(),
                           _NotebookRun(item.parent.nb))
    if report.passed and item.test_outputs is not None:
        run.outputs[id(item.cell)] = list(item.test_outputs)
    else:
        run.complete = False


def _executed_copy(run: _NotebookRun) -> Any | None:
    """The notebook with nbval's outputs filled in, or None if a code cell has none."""
    code = [c for c in run.nb.cells if c.cell_type == "code"]
    if not run.complete or any(id(c) not in run.outputs for c in code):
        return None
    outputs = [run.outputs.get(id(c)) for c in run.nb.cells]  # before the ids change
    nb = copy.deepcopy(run.nb)
    count = 0
    for cell, outs in zip(nb.cells, outputs):
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        cell.outputs = copy.deepcopy(outs)
        for out in cell.outputs:
            if out.get("output_type") == "execute_result":
                out["execution_count"] = count
    return nb


def pytest_sessionfinish(session, exitstatus):
    """Store each fully run book chapter in the book's execution cache."""
    if os.environ.get("COURSE_LIB_CELL_TIMES") and _CELL_SECONDS:
        Path(os.environ["COURSE_LIB_CELL_TIMES"]).write_text(
            json.dumps(_CELL_SECONDS, indent=1, sort_keys=True) + "\n")
    runs = {p: r for p, r in _RUNS.items() if p.parent == BOOK_DIR}
    if not runs:
        return
    cache = get_cache(BOOK_CACHE)
    for path, run in sorted(runs.items()):
        nb = _executed_copy(run)
        if nb is None:
            continue
        seconds = _NOTEBOOK_SECONDS[str(path.relative_to(ROOT))]  # the nodeid's path
        cache.cache_notebook_bundle(
            CacheBundleIn(nb, str(path), data={"execution_seconds": seconds}),
            check_validity=False, overwrite=True)
        _STORED.append(path.name)


def pytest_terminal_summary(terminalreporter):
    """Print one line per notebook, and which chapters the book build will reuse."""
    if _NOTEBOOK_SECONDS:
        terminalreporter.section("notebook durations")
        for path, seconds in sorted(_NOTEBOOK_SECONDS.items()):
            terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
    if _STORED:
        terminalreporter.write_line(
            f"outputs of {len(_STORED)} chapter(s) stored in "
            f"{BOOK_CACHE.relative_to(ROOT)} for the book build: {', '.join(_STORED)}")

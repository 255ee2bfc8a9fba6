"""Chapter 6's recap: one ledger row per technique, rebuilt when it is missing.

Each chapter adds its rows to the ledger when it runs (the book build runs them in
order). A learner who opens chapter 6 first has none of them; rather than show a
shorter recap, `technique_rows` runs the chapters whose rows are missing, in a
fresh kernel each (their trained models come from the cache or the shipped files),
and reads the ledger again.
"""

from __future__ import annotations

from pathlib import Path

from ..core.ledger import Ledger, Record
from .labs import repo_root

# recap label -> (chapter that measures the row, start of the row's name)
Families = dict[str, tuple[str, str]]


def chapter_notebook(chapter: str, book: Path | None = None) -> Path:
    """The book's notebook of `chapter` ("3.1" -> book/03_1_*.ipynb, "4" -> 04_*)."""
    book = book or repo_root() / "book"
    major, _, minor = chapter.partition(".")
    stem = f"{int(major):02d}_{minor}_" if minor else f"{int(major):02d}_"
    found = sorted(p for p in book.glob(f"{stem}*.ipynb")
                   if minor or not p.name[len(stem)].isdigit())
    if len(found) != 1:
        raise FileNotFoundError(f"chapter {chapter}: expected one notebook "
                                f"{book}/{stem}*.ipynb, found {len(found)}")
    return found[0]


def run_notebook(path: Path, timeout: int = 7200, progress: bool = True) -> None:
    """Execute a notebook top to bottom in a fresh kernel, in its own folder; its
    outputs are discarded (what it writes to the cache and the ledger stays)."""
    import nbformat
    from nbclient import NotebookClient
    from tqdm.auto import tqdm

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        for index, cell in enumerate(tqdm(nb.cells, desc=f"running {path.name}",
                                          unit="cell", disable=not progress)):
            client.execute_cell(cell, index)


def find_row(records: list[Record], chapter: str, prefix: str) -> Record | None:
    """The first row of `chapter` whose name starts with `prefix`, or None."""
    return next((r for r in records
                 if r.chapter == chapter and r.name.startswith(prefix)), None)


def technique_rows(families: Families, ledger: Ledger | None = None,
                   book: Path | None = None, progress: bool = True
                   ) -> dict[str, Record]:
    """label -> ledger row for every family; the chapters of missing rows are run
    first (each once). A row still missing after its chapter ran is an error."""
    ledger = ledger or Ledger()
    missing = sorted({chapter for chapter, prefix in families.values()
                      if find_row(ledger.records(), chapter, prefix) is None})
    for chapter in missing:
        path = chapter_notebook(chapter, book)
        print(f"chapter {chapter} has no rows in {ledger.path}: running {path.name}")
        run_notebook(path, progress=progress)
    records = ledger.records()
    rows = {label: find_row(records, chapter, prefix)
            for label, (chapter, prefix) in families.items()}
    lost = [label for label, row in rows.items() if row is None]
    if lost:
        raise RuntimeError(f"no ledger row for {lost} even after running their "
                           f"chapters: has a row's name changed?")
    return rows

"""Chapter 6's recap: missing technique rows are rebuilt by running their chapter."""

import nbformat
import pytest

import course_lib as cl

ROW = dict(name="weight pruning toy", chapter="3.1", wer=0.1, cer=0.05,
           wer_ci95=(0.08, 0.12), params=10, nonzero_params=1, file_bytes=100,
           compressed_bytes=90, lzma_bytes=80, latency_ms=1.0, rtf=0.01, n_test=2,
           artifact="toy", artifact_sha256="0" * 64)


def _book(tmp_path, source):
    """A book folder whose chapter 3.1 notebook runs `source`, and a chapter 4."""
    book = tmp_path / "book"
    book.mkdir()
    for name, code in (("03_1_toy.ipynb", source), ("04_other.ipynb", "")):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
        nbformat.write(nb, book / name)
    return book


def test_chapter_notebooks_are_found_by_number():
    assert cl.recap.chapter_notebook("3.1").name == "03_1_weight_pruning.ipynb"
    assert cl.recap.chapter_notebook("4").name == "04_applications.ipynb"
    with pytest.raises(FileNotFoundError, match="chapter 7"):
        cl.recap.chapter_notebook("7")


def test_a_missing_row_is_rebuilt_by_running_its_chapter(cache, tmp_path):
    ledger = cl.Ledger(tmp_path / "ledger.json")
    code = ("import course_lib as cl\n"
            f"cl.Ledger({str(ledger.path)!r}).add(cl.Record(**{ROW!r}))")
    book = _book(tmp_path, code)
    families = {"pruning": ("3.1", "weight pruning")}
    rows = cl.recap.technique_rows(families, ledger, book, progress=False)
    assert rows["pruning"].name == "weight pruning toy"  # written by the kernel
    # present now: nothing runs (a chapter that would fail shows it)
    (book / "03_1_toy.ipynb").unlink()
    assert cl.recap.technique_rows(families, ledger, book, progress=False) == rows


def test_a_row_its_chapter_does_not_make_is_an_error(cache, tmp_path):
    book = _book(tmp_path, "x = 1")
    with pytest.raises(RuntimeError, match="even after running their chapters"):
        cl.recap.technique_rows({"pruning": ("3.1", "weight pruning")},
                                cl.Ledger(tmp_path / "ledger.json"), book,
                                progress=False)

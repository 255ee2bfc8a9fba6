"""Notebooks are stored clean: no outputs, no execution counts (nbdev style)."""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted([*ROOT.glob("book/*.ipynb"), *ROOT.glob("exercises/**/*.ipynb")])


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name}: cell {i} has outputs"
            assert cell.execution_count is None, f"{path.name}: cell {i} was executed"


# The book's column fits 88 characters of code (book/_static/course.css scales the
# font to it on narrow screens); a longer line scrolls sideways in the HTML book.
PAGE_WIDTH = 88


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_lines_fit_the_book_page(path):
    nb = nbformat.read(path, as_version=4)
    long = [f"cell {i}, {len(line)} characters: {line.strip()[:50]}..."
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for line in cell.source.splitlines() if len(line) > PAGE_WIDTH]
    assert not long, f"{path.name}: lines over {PAGE_WIDTH} characters:\n" + \
        "\n".join(long)

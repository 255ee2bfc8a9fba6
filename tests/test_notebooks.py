"""Notebooks are stored clean (no outputs, as nbdev), fit the page, keep math whole."""

import re
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


# Markdown starts a list, a quote or a heading at a line that begins with one of these,
# even inside inline math: "$a\n+ b$" becomes a list item and the math breaks apart.
BLOCK_START = re.compile(r"\s*([-+*>#]\s|\d+[.)]\s)")


def lines_breaking_math(text: str) -> list[str]:
    """Lines of markdown `text` that begin a block while inline math is open."""
    text = re.sub(r"^```(?!\{).*?^```", "", text, flags=re.S | re.M)  # code fences
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    text = re.sub(r"\$\$.*?\$\$", "", text, flags=re.S)  # display math
    bad, open_math = [], False
    for line in text.splitlines():
        if open_math and BLOCK_START.match(line):
            bad.append(line.strip())
        open_math ^= len(re.findall(r"(?<!\\)\$", line)) % 2 == 1
    return bad


def test_lines_breaking_math_finds_a_plus_at_a_line_start():
    text = "of $a\n+ b$, and $c$\n- a real item"
    assert lines_breaking_math(text) == ["+ b$, and $c$"]
    assert lines_breaking_math("`$HOME`\n- item\n$x$\n# heading") == []


@pytest.mark.parametrize("path", [*NOTEBOOKS, *ROOT.glob("book/*.md")],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_inline_math_is_not_cut_by_a_line_start(path):
    if path.suffix == ".md":
        cells = [path.read_text(encoding="utf-8")]
    else:
        nb = nbformat.read(path, as_version=4)
        cells = [c.source if c.cell_type == "markdown" else "" for c in nb.cells]
    bad = [f"cell {i}: {line[:60]}" for i, text in enumerate(cells)
           for line in lines_breaking_math(text)]
    assert not bad, f"{path.name}: a line inside $...$ starts a markdown block:\n" + \
        "\n".join(bad)

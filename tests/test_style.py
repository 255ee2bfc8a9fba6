"""The package and its tests keep the book's page width, as the notebooks do."""

from pathlib import Path

import pytest
from test_notebooks import PAGE_WIDTH  # the limit on code cells, here too

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("course_lib/**/*.py"), *ROOT.glob("tests/**/*.py"),
                  ROOT / "conftest.py", *ROOT.glob("book/_ext/*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_source_lines_fit_the_page(path):
    long = [f"line {i}: {len(line)} characters"
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if len(line) > PAGE_WIDTH]
    assert not long, f"{path.name}: lines over {PAGE_WIDTH} characters: {long}"

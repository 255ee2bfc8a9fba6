"""Lab machinery: solution fences and the student copies (spec §5, chapter 1 on).

A lab notebook in `exercises/` is the one source. Code between
`### BEGIN SOLUTION` and `### END SOLUTION` is the reference answer; the student
copy in `exercises/student/` has each fenced block replaced by
`raise NotImplementedError(...)`. `python -m course_lib labs` writes the copies;
`--check` only says whether they are current (the tests run it).
"""

from __future__ import annotations

import re
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
PLACEHOLDER = 'raise NotImplementedError("your code here: replace this line")'
_FENCE = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}"
                    r"[^\n]*(\n|$)", re.S | re.M)


def repo_root() -> Path:
    """The repository that holds `exercises/` (the package's parent folder)."""
    return Path(__file__).resolve().parents[2]


def strip_solutions(source: str) -> str:
    """Replace every fenced solution block by an indented NotImplementedError."""
    if source.count(BEGIN) != source.count(END):
        raise ValueError(f"unbalanced solution fences in cell:\n{source[:200]}")
    return _FENCE.sub(lambda m: f"{m.group(1)}{PLACEHOLDER}{m.group(2)}", source)


def student_notebook(nb):  # nbformat.NotebookNode -> NotebookNode
    """A student copy of a solution notebook (outputs cleared, fences replaced)."""
    import copy

    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source)
            cell.outputs, cell.execution_count = [], None
        elif BEGIN in cell.source:
            cell.source = strip_solutions(cell.source)
    out.metadata["course_lib"] = {"student_copy": True}
    return out


def lab_sources(root: Path | None = None) -> list[Path]:
    """The solution notebooks: `exercises/*.ipynb`."""
    return sorted((root or repo_root()).joinpath("exercises").glob("*.ipynb"))


def student_path(source: Path) -> Path:
    """Where the student copy of `source` lives."""
    return source.parent / "student" / source.name


def generate_student_copies(root: Path | None = None, check_only: bool = False
                            ) -> list[Path]:
    """Write (or, with `check_only`, compare) every student copy; return stale ones."""
    import nbformat

    stale = []
    for src in lab_sources(root):
        student = student_notebook(nbformat.read(src, as_version=4))
        text = nbformat.writes(student) + "\n"
        dst = student_path(src)
        if not dst.exists() or dst.read_text() != text:
            stale.append(dst)
            if not check_only:
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_text(text)
    return stale

"""Lab machinery: nbgrader metadata, student copies, a classroom (spec §5, ch. 1 on).

A lab notebook in `exercises/` is the one source, written for nbgrader: code
between `### BEGIN SOLUTION` and `### END SOLUTION` is the reference answer (an
nbgrader *solution cell*), every cell tagged `check` calls the lab's check
functions (an *autograded test cell* worth `points`), and the instructions are
read-only. `grading_metadata` writes that cell metadata; `nbgrader
generate_assignment` makes the student copies in `exercises/student/`, each fenced
block replaced by `raise NotImplementedError(...)`. `python -m course_lib labs`
does both (`--check` only says whether they are current: the tests run it), and
`python -m course_lib classroom DIR` sets up an nbgrader course folder with one
assignment per lab (book page "For instructors").
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
PLACEHOLDER = 'raise NotImplementedError("your code here: replace this line")'
_FENCE = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}"
                    r"[^\n]*(\n|$)", re.S | re.M)
COURSE_ID = "asr-compression"
NBGRADER_CONFIG = f'''\
# nbgrader configuration of the course's labs (written by `python -m course_lib
# classroom`). See the book's page "For instructors".
c = get_config()  # noqa: F821 (nbgrader defines it)
c.CourseDirectory.course_id = "{COURSE_ID}"
c.CourseDirectory.root = "."
c.ClearSolutions.code_stub = {{"python": {PLACEHOLDER!r}}}
c.ExecutePreprocessor.timeout = 1200  # a lab may load and fine-tune a model
'''


def repo_root() -> Path:
    """The repository that holds `exercises/` (the package's parent folder)."""
    return Path(__file__).resolve().parents[2]


def strip_solutions(source: str) -> str:
    """Replace every fenced solution block by an indented NotImplementedError
    (what nbgrader's ClearSolutions does, for the lab page's own preview)."""
    if source.count(BEGIN) != source.count(END):
        raise ValueError(f"unbalanced solution fences in cell:\n{source[:200]}")
    return _FENCE.sub(lambda m: f"{m.group(1)}{PLACEHOLDER}{m.group(2)}", source)


def _nbgrader(kind: str, grade_id: str, points: int | None = None) -> dict:
    """One cell's nbgrader metadata (schema 3): "solution", "check" or "text"."""
    meta = dict(grade=kind == "check", grade_id=grade_id,
                locked=kind != "solution", schema_version=3,
                solution=kind == "solution", task=False)
    if kind == "check":
        meta["points"] = points
    return meta


def grading_metadata(nb) -> bool:  # nbformat.NotebookNode -> changed?
    """Give every cell of a lab its nbgrader role, in place; True if any changed.

    Fenced code cells are solution cells (`answer-k`), cells tagged `check` are
    autograded (`check-k`, 1 point unless the cell already says more), markdown
    cells are read-only (`text-k`); the other code cells ("Try it") stay free.
    """
    counts = {"solution": 0, "check": 0, "text": 0}
    names = {"solution": "answer", "check": "check", "text": "text"}
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            kind = "text"
        elif BEGIN in cell.source:
            kind = "solution"
            strip_solutions(cell.source)  # unbalanced fences fail here
        elif "check" in cell.metadata.get("tags", []):
            kind = "check"
        else:
            if cell.metadata.pop("nbgrader", None) is not None:
                changed = True
            continue
        counts[kind] += 1
        old = cell.metadata.get("nbgrader", {})
        points = old.get("points", 1) if kind == "check" else None
        new = _nbgrader(kind, f"{names[kind]}-{counts[kind]}", points)
        if old != new:
            cell.metadata["nbgrader"] = new
            changed = True
    return changed


def lab_sources(root: Path | None = None) -> list[Path]:
    """The solution notebooks: `exercises/*.ipynb`."""
    return sorted((root or repo_root()).joinpath("exercises").glob("*.ipynb"))


def student_path(source: Path) -> Path:
    """Where the student copy of `source` lives."""
    return source.parent / "student" / source.name


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `nbgrader ARGS` in the course folder `course`; raise on failure."""
    env = dict(os.environ)  # nbgrader runs `alembic` from this environment's bin/
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    out = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course,
                         env=env, capture_output=True, text=True)
    # nbgrader logs a failed notebook as "[App | ERROR]" and may still exit with 0
    logged_error = any(tag in out.stderr for tag in ("[ERROR]", " | ERROR]"))
    if out.returncode != 0 or logged_error:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed in {course}:\n"
                           f"{out.stderr[-3000:]}")
    return out


def init_course(course: Path, root: Path | None = None) -> list[Path]:
    """Set up an nbgrader course folder: its config, one assignment per lab in
    `source/`, and the student copies nbgrader generates in `release/`."""
    course = Path(course)
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
    for src in lab_sources(root):
        (course / "source" / src.stem).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, course / "source" / src.stem / src.name)
    nbgrader(course, "generate_assignment", "*", "--force")  # every assignment
    return [course / "release" / src.stem / src.name for src in lab_sources(root)]


def generate_student_copies(root: Path | None = None, check_only: bool = False
                            ) -> list[Path]:
    """Write (or, with `check_only`, compare) the labs' nbgrader metadata and every
    student copy (made by nbgrader); return the stale files."""
    import nbformat

    stale = []
    for src in lab_sources(root):
        nb = nbformat.read(src, as_version=4)
        if grading_metadata(nb):
            stale.append(src)
            if not check_only:
                nbformat.write(nb, src)
    if stale and check_only:  # students' copies are made from current sources only
        return stale + [student_path(s) for s in lab_sources(root)]
    with tempfile.TemporaryDirectory() as tmp:
        for src, made in zip(lab_sources(root), init_course(Path(tmp), root)):
            dst = student_path(src)
            if not dst.exists() or dst.read_bytes() != made.read_bytes():
                stale.append(dst)
                if not check_only:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(made, dst)
    return stale

"""The classroom: nbgrader generates every lab and autogrades three submissions each.

One course folder, as `python -m course_lib classroom` makes it; per lab three
students hand in: the solution (full points), the blank student copy (zero on every
graded cell, each failing with its own check's "not implemented"), and one wrong
answer (partial points: exactly the cell of the wrong exercise fails, with the
check's message). The points are printed, for the note.
"""

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from course_lib import labs

ROOT = Path(__file__).resolve().parents[1]
LABS = [p.stem for p in labs.lab_sources(ROOT)]

# One mistake per lab: (line of the solution, what the student wrote instead, the
# graded cell that must fail, a phrase of its check's message).
WRONG = {
    "lab01_ctc_decoding": (
        "        if i != prev and i != 0:  # a new symbol that is not the blank",
        "        if i != 0:  # forgets to merge repeats", "check-1", "repeats merge"),
    "lab31_weight_pruning": (
        "    return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3",
        "    return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))  # linear",
        "check-4", "one dt after t0"),
    "lab32_quantization": (
        "    return scale * (q.float() - zero)",
        "    return scale * q.float()  # forgets the zero point", "check-2",
        "z = 5: expected"),
    "lab33_distillation": (  # the article's loss: the teacher in both terms
        "    return (1 - alpha) * ctc + alpha * kd_loss(student_lp, teacher_lp, "
        "lengths, T)",
        "    return ((1 - alpha) * kd_loss(student_lp, teacher_lp, lengths, 1.0)"
        " + alpha * kd_loss(student_lp, teacher_lp, lengths, T))", "check-2",
        "the CTC loss on the ground-truth transcript"),
    "lab34_neuron_pruning": (
        "        new.weight_hh_l0.copy_(gru.weight_hh_l0[rows][:, keep])",
        "        new.weight_hh_l0.copy_(gru.weight_hh_l0[rows][:, :len(keep)])",
        "check-2", "weight_hh_l0 holds the wrong entries"),
    "lab50_huffman": (
        "        code <<= n - prev  # widen the running code to this length",
        "        code <<= 1  # always one bit wider", "check-2",
        "lengths 1, 2, 3, 3: codes 0, 10, 110, 111"),
    "lab35_shards": (
        '        if digest != part["sha256"]:',
        "        if False:  # never verifies the checksum", "check-2",
        "tampered byte is caught"),
}


def _answers(source: nbformat.NotebookNode) -> dict[str, str]:
    """The reference answer of each solution cell, by grade id."""
    return {c.metadata.nbgrader["grade_id"]: c.source for c in source.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def _submit(course: Path, student: str, lab: str, nb: nbformat.NotebookNode) -> None:
    folder = course / "submitted" / student / lab
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{lab}.ipynb")


def _filled(release: nbformat.NotebookNode, answers: dict[str, str]
            ) -> nbformat.NotebookNode:
    """The release copy with `answers` written into its solution cells."""
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A course folder with every lab, three submissions each, autograded."""
    from nbgrader.api import Gradebook

    course = tmp_path_factory.mktemp("classroom")
    released = labs.init_course(course, ROOT)
    for lab, path in zip(LABS, released):
        release = nbformat.read(path, as_version=4)
        answers = _answers(nbformat.read(ROOT / "exercises" / f"{lab}.ipynb", 4))
        old, new, _, _ = WRONG[lab]
        wrong = {k: v.replace(old, new) for k, v in answers.items()}
        assert sum(wrong[k] != answers[k] for k in answers) == 1, lab
        _submit(course, "solution", lab, _filled(release, answers))
        _submit(course, "blank", lab, release)
        _submit(course, "wrong", lab, _filled(release, wrong))
    labs.nbgrader(course, "autograde", "*", "--create")
    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for lab in LABS:
            for student in ("solution", "blank", "wrong"):
                sub = gb.find_submission_notebook(lab, lab, student)
                scores[lab, student] = {g.name: (g.score, g.max_score)
                                        for g in sub.grades}
    return course, scores


def _errors(course: Path, student: str, lab: str) -> dict[str, str]:
    """Graded cell -> 'ename: evalue' of its error, in the autograded notebook."""
    nb = nbformat.read(course / "autograded" / student / lab / f"{lab}.ipynb", 4)
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and cell.cell_type == "code":
            errs = [o for o in cell.outputs if o.output_type == "error"]
            if errs:
                out[meta["grade_id"]] = f"{errs[0].ename}: {errs[0].evalue}"
    return out


def test_student_copies_are_what_nbgrader_releases(graded):
    course, _ = graded
    for lab in LABS:
        made = course / "release" / lab / f"{lab}.ipynb"
        assert made.read_bytes() == (ROOT / "exercises" / "student" /
                                     f"{lab}.ipynb").read_bytes(), lab


def test_points_of_each_submission(graded):
    course, scores = graded
    print("\nlab: solution / blank / wrong (points)")
    for lab in LABS:
        total = {s: sum(v[0] for v in scores[lab, s].values())
                 for s in ("solution", "blank", "wrong")}
        full = sum(v[1] for v in scores[lab, "solution"].values())
        print(f"{lab}: {total['solution']:g} / {total['blank']:g} / "
              f"{total['wrong']:g} of {full:g}")
        assert total["solution"] == full > 0, (lab, scores[lab, "solution"])
        assert total["blank"] == 0, (lab, scores[lab, "blank"])
        assert 0 < total["wrong"] < full or full == 1 and total["wrong"] == 0


def test_blank_cells_fail_each_for_its_own_reason(graded):
    course, scores = graded
    for lab in LABS:
        errors = _errors(course, "blank", lab)
        assert set(errors) == set(scores[lab, "blank"]), (lab, errors)
        for cell, error in errors.items():
            assert error.startswith("CheckFailed") and "not implemented" in error, (
                lab, cell, error)


def test_a_wrong_answer_fails_its_own_cell_with_the_checks_message(graded):
    course, scores = graded
    for lab in LABS:
        _, _, cell, phrase = WRONG[lab]
        errors = _errors(course, "wrong", lab)
        assert list(errors) == [cell], (lab, errors)
        assert errors[cell].startswith("CheckFailed") and phrase in errors[cell], (
            lab, errors[cell])
        assert scores[lab, "wrong"][cell][0] == 0


def test_the_classroom_command_sets_up_a_course(tmp_path):
    from course_lib.app.cli import main

    assert main(["classroom", str(tmp_path / "course")]) == 0
    config = (tmp_path / "course" / "nbgrader_config.py").read_text()
    assert labs.PLACEHOLDER in config and labs.COURSE_ID in config
    assert sorted(p.name for p in (tmp_path / "course" / "release").iterdir()) == LABS
    shutil.rmtree(tmp_path / "course")

"""Labs: copies are current, solutions pass their checks, blank copies fail them."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import course_lib as cl
from course_lib import labs
from course_lib.checks import CheckFailed

ROOT = Path(__file__).resolve().parents[1]


def test_strip_solutions_keeps_indentation():
    src = ("def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"
           "\nprint(f)")
    out = labs.strip_solutions(src)
    assert "return x + 1" not in out
    assert f"    {labs.PLACEHOLDER}\n\nprint(f)" in out


def test_unbalanced_fences_are_an_error():
    with pytest.raises(ValueError, match="unbalanced"):
        labs.strip_solutions("### BEGIN SOLUTION\nx = 1\n")


def test_every_lab_has_fences_and_checks():
    sources = labs.lab_sources(ROOT)
    assert sources, "no lab notebooks in exercises/"
    for src in sources:
        nb = nbformat.read(src, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert any(labs.BEGIN in c.source for c in code), src
        assert any("check" in c.metadata.get("tags", []) for c in code), src


def test_student_copies_are_current():
    stale = labs.generate_student_copies(ROOT, check_only=True)
    assert not stale, f"regenerate with `python -m course_lib labs`: {stale}"


def test_reference_passes_and_wrong_answers_fail_the_check():
    def reference(log_probs, length):
        return cl.greedy_decode(log_probs[None], __import__("torch").tensor([length]))[0]

    cl.checks.check_best_path(reference)
    with pytest.raises(CheckFailed, match="not implemented"):
        cl.checks.check_best_path(lambda lp, n: (_ for _ in ()).throw(
            NotImplementedError()))
    with pytest.raises(CheckFailed, match="repeats merge"):  # forgets to collapse
        cl.checks.check_best_path(lambda lp, n: "".join(
            cl.VOCAB[i] for i in lp[:n].argmax(-1).tolist() if i != 0))


@pytest.mark.parametrize("source", labs.lab_sources(ROOT), ids=lambda p: p.name)
def test_blank_student_copy_fails_every_check(source):
    nb = nbformat.read(labs.student_path(source), as_version=4)
    NotebookClient(nb, timeout=600, allow_errors=True,
                   resources={"metadata": {"path": str(source.parent)}}).execute()
    checks = [c for c in nb.cells if "check" in c.metadata.get("tags", [])]
    assert checks
    for cell in checks:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors and errors[0].ename == "CheckFailed", cell.source

"""The root conftest hands nbval's outputs to jupyter-book's cache (no second run)."""

import importlib.util
import sys
from pathlib import Path

import nbformat
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
hooks = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = hooks  # dataclasses look their module up there
_spec.loader.exec_module(hooks)


def _notebook():
    """A clean notebook: markdown, then two code cells, the second with a result."""
    v4 = nbformat.v4
    return v4.new_notebook(
        cells=[v4.new_markdown_cell("# title"), v4.new_code_cell("print(1)"),
               v4.new_code_cell("2")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}})


def _outputs():
    """Outputs as nbval records them for the two code cells."""
    stream = nbformat.NotebookNode(output_type="stream", name="stdout", text="1\n")
    result = nbformat.NotebookNode(output_type="execute_result", metadata={},
                                   data={"text/plain": "2"}, execution_count=7)
    return [stream], [result]


def test_complete_run_becomes_an_executed_notebook_that_jupyter_cache_matches(tmp_path):
    nb = _notebook()
    first, second = _outputs()
    run = hooks._NotebookRun(nb, {id(nb.cells[1]): first, id(nb.cells[2]): second})
    executed = hooks._executed_copy(run)
    nbformat.validate(executed)
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2]
    assert code[0].outputs[0].text == "1\n"
    assert code[1].outputs[0].execution_count == 2  # renumbered to its cell
    assert not nb.cells[1].outputs  # the clean notebook nbval read is left as it was
    cache = get_cache(tmp_path / "cache")
    cache.cache_notebook_bundle(hooks.CacheBundleIn(executed, "x.ipynb"),
                                check_validity=False)
    _, merged = cache.merge_match_into_notebook(_notebook())  # matched by code only
    assert merged.cells[2].outputs[0].data["text/plain"] == "2"


def test_incomplete_run_is_not_stored():
    nb = _notebook()
    first, _ = _outputs()
    partial = hooks._NotebookRun(nb, {id(nb.cells[1]): first})  # cell 2 never ran
    assert hooks._executed_copy(partial) is None
    failed = hooks._NotebookRun(nb, {id(nb.cells[1]): first, id(nb.cells[2]): []},
                                complete=False)
    assert hooks._executed_copy(failed) is None

"""Small Sphinx fixes for the course book (loaded from _config.yml).

sphinx-thebe 0.3.1 (and sphinx-togglebutton) register their inline scripts once per
`env-before-read-docs`, which jupyter-book's build fires twice, so every page declared
`const THEBE_JS_URL` twice: a JavaScript SyntaxError on each page, found by the
real-browser test (tests/browser). We drop repeated scripts from each page.

The chapters carry the source article's section numbers in their titles (3.1, 3.2,
...), so the table of contents is not numbered, and Sphinx numbered the exercises
across the whole book: chapter 3.1 opened with "Exercise 4". They are numbered per
chapter instead ("Exercise 3.1.1"), in every place that shows the number.
"""

from __future__ import annotations

import re

# A chapter's file name gives its number: book/03_1_weight_pruning -> (3, 1).
_CHAPTER = re.compile(r"book/(\d+)(?:_(\d+))?_[a-z]")


def _number_exercises_by_chapter(app, env) -> list[str]:
    """Replace the book-wide exercise numbers with (chapter..., k) per chapter.

    Returns the pages it renumbered, so that they are written again even when an
    incremental build found nothing else to update.
    """
    renumbered = []
    for docname, numbers in env.toc_fignumbers.items():
        found = _CHAPTER.match(docname)
        if not found or "exercise" not in numbers:
            continue
        chapter = tuple(int(g) for g in found.groups() if g is not None)
        # Within one page the book-wide numbers are in reading order.
        in_order = sorted(numbers["exercise"], key=numbers["exercise"].get)
        for k, node_id in enumerate(in_order, start=1):
            numbers["exercise"][node_id] = (*chapter, k)
        renumbered.append(docname)
    return renumbered


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        # An inline script's filename is None or "" depending on the cached env.
        key = (getattr(js, "filename", None) or "", getattr(js, "priority", 0),
               repr(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def setup(app):
    # Early: a later handler (the theme's) returns a value, which ends the event.
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    # Late: after Sphinx's toctree collector has assigned the book-wide numbers.
    app.connect("env-get-updated", _number_exercises_by_chapter, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

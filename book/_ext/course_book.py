"""Small Sphinx fixes for the course book (loaded from _config.yml).

sphinx-thebe 0.3.1 (and sphinx-togglebutton) register their inline scripts once per
`env-before-read-docs`, which jupyter-book's build fires twice, so every page declared
`const THEBE_JS_URL` twice: a JavaScript SyntaxError on each page, found by the
real-browser test (tests/browser). We drop repeated scripts from each page.
"""

from __future__ import annotations


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
    return {"parallel_read_safe": True, "parallel_write_safe": True}

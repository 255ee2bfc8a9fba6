"""Root pytest hooks: print how long each notebook took (nbval runs cell by cell)."""

from __future__ import annotations

from collections import defaultdict

_NOTEBOOK_SECONDS: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    """Add up the durations of the cells of each notebook."""
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _NOTEBOOK_SECONDS[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    """Print one line per notebook."""
    if _NOTEBOOK_SECONDS:
        terminalreporter.section("notebook durations")
        for path, seconds in sorted(_NOTEBOOK_SECONDS.items()):
            terminalreporter.write_line(f"{seconds:8.1f} s  {path}")

"""Shared fixtures: a tiny corpus in a private cache, so unit tests stay fast."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import course_lib as cl

from tinycfg import TINY

# The real recordings: where the test command points (scripts/setup_env.sh), so that
# a plain `pytest` finds them too.
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd-open"
if not os.environ.get(cl.real.REAL_DIR_ENV) and (_SHARED / "recordings").is_dir():
    os.environ[cl.real.REAL_DIR_ENV] = str(_SHARED)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory):
    """A cache folder for the session's tiny corpus."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture()
def cache(tiny_cache, monkeypatch):
    """Point course_lib at the tiny cache for one test."""
    monkeypatch.setenv(cl.utils.CACHE_ENV, str(tiny_cache))
    return tiny_cache


@pytest.fixture()
def tiny_corpus(cache):
    """The tiny corpus (built once per session, then reused from the cache)."""
    return cl.build_corpus(TINY, progress=False)

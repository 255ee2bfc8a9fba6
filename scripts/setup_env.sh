#!/usr/bin/env bash
# Create (or reuse) .venv and install course_lib with its pinned dependencies.
# Sourced by test.sh and build_book.sh, so each command installs what it needs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
# The real recordings (FSDD, CC BY-SA 4.0) are read from a folder, never committed:
# beside the project when it is there (developers and CI), else the package's own
# default (`python -m course_lib fetch-real` downloads them into the user cache).
if [ -z "${COURSE_LIB_REAL_DIR:-}" ] && [ -d "$ROOT/../shared/data/fsdd-open/recordings" ]; then
  export COURSE_LIB_REAL_DIR="$(cd "$ROOT/../shared/data/fsdd-open" && pwd)"
fi
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  echo "== creating $ROOT/.venv"
  "$PY" -m venv "$ROOT/.venv"
fi
# shellcheck disable=SC1091
source "$ROOT/.venv/bin/activate"
python -m pip install -q --upgrade pip
echo "== installing course_lib and its pinned dependencies (first time: a few minutes)"
python -m pip install -q -e "$ROOT"

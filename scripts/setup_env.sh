#!/usr/bin/env bash
# Create (or reuse) .venv and install course_lib with its pinned dependencies.
# Sourced by test.sh and build_book.sh, so each command installs what it needs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  echo "== creating $ROOT/.venv"
  "$PY" -m venv "$ROOT/.venv"
fi
# shellcheck disable=SC1091
source "$ROOT/.venv/bin/activate"
python -m pip install -q --upgrade pip
echo "== installing course_lib and its pinned dependencies (first time: a few minutes)"
python -m pip install -q -e "$ROOT"

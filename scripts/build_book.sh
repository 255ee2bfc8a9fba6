#!/usr/bin/env bash
# The book command (README): install, execute every notebook, build the HTML book.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh
jupyter-book build . -W
echo "The book is ready: open $ROOT/_build/html/index.html"

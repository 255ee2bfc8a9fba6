#!/usr/bin/env bash
# The book command (README): install, execute every notebook, build the HTML book.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh
jupyter-book build . -W --all  # every page shows the cached outputs it has now
echo "The book is ready: open $ROOT/_build/html/index.html"

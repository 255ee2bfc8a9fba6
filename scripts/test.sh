#!/usr/bin/env bash
# The test command (README): unit tests, every notebook under nbval, the labs, and a
# -W build of the book, then the book in a real browser (headless Chromium). Installs
# what it needs itself. Prints each notebook's time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh
start=$(date +%s)
echo "== cache: ${COURSE_LIB_CACHE:-default user cache dir}"
python -m course_lib labs --check
# Unit tests first, then every book chapter and every lab's solution under nbval.
python -m pytest -v -p no:cacheprovider --durations=15 tests --ignore=tests/browser \
  --nbval-lax book/*.ipynb exercises/*.ipynb
echo "== building the book (jupyter-book build . -W --all)"
book_start=$(date +%s)
# --all: every page is read again, so that it shows the outputs the tests just stored
# even where its source did not change since an earlier build in this folder.
jupyter-book build . -W --keep-going --all
echo "== book built in $(( $(date +%s) - book_start )) s: $ROOT/_build/html/index.html"
echo "== the rendered book in headless Chromium (screenshots: _build/screenshots/)"
bash scripts/install_browser.sh
python -m pytest -v -s -p no:cacheprovider tests/browser
echo "== whole test run: $(( $(date +%s) - start )) s"

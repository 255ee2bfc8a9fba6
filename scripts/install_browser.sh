#!/usr/bin/env bash
# Chromium for the rendered-book test: Debian's package (apt), when it is missing,
# with a CJK font so that the Chinese terms in the titles render in the screenshots.
# Without root or apt it says so and returns 0; the browser test then skips with a
# message that names this script.
set -uo pipefail
if [ -n "${COURSE_LIB_CHROMIUM:-}" ] || { command -v chromium >/dev/null 2>&1 && \
   fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk"; }; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "== no chromium, and no root to install it: the browser test will skip"; exit 0
  fi
fi
if command -v apt-get >/dev/null 2>&1; then
  echo "== installing Debian's chromium for the browser test"
  $SUDO apt-get install -y -q chromium fonts-wqy-zenhei >/dev/null 2>&1 || \
    { $SUDO apt-get update -q >/dev/null 2>&1 && \
      $SUDO apt-get install -y -q chromium fonts-wqy-zenhei >/dev/null 2>&1; } || \
    echo "== apt-get could not install chromium: the browser test will skip"
else
  echo "== no apt-get: install Chromium yourself (or set COURSE_LIB_CHROMIUM)"
fi
exit 0

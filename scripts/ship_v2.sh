#!/usr/bin/env bash
# Remake every shipped result of the running example v2 (issue 26) and copy it into
# course_lib/artifacts/, in dependency order (chapter 4's student route starts
# from the sequence-KD student). Each finished result stays in the cache, so running
# this again after an interruption resumes with the first unfinished one.
# Hours on 2 cores: run it in the background (nohup bash scripts/ship_v2.sh &).
set -euo pipefail
cd "$(dirname "$0")/.."
export COURSE_LIB_EXAMPLE=v2
py() { echo "== $(date -u +%H:%M:%S) python -m course_lib $*"; python -m course_lib "$@"; }
py distill --method sequence --ship
py deep-compress --ship
py prune-neurons --ship
py lowrank --ship
py distill --method ctc --ship
py distill --method frame --ship
py distill --method frame+sequence --ship
py distill --method ctc --labelled 2000 --ship
py distill --method sequence --labelled 2000 --ship
echo "== $(date -u +%H:%M:%S) done: every v2 result is in course_lib/artifacts/"

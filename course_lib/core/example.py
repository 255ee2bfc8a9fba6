"""Which running example the package builds: v2 (the default) or v1 (issue 26).

The running example v2, which every chapter uses, is trained on corpus v2 (command
templates, isolated words, free strings, digit strings, strong acoustic variety)
and two real speakers, and scored greedily, in domain and out of domain. v1 is the
first edition's recognizer of eSpeak command templates alone (40 ms frames,
vocabulary snapping); chapter 1 compares the two. One switch picks the example for
the whole package, read once at import: the environment variable
`COURSE_LIB_EXAMPLE=v1` before Python starts gives the first edition's corpus,
baseline (shipped in `course_lib/artifacts/v1/`), decoders, fine-tuning defaults
and ledger file, so that v1 and v2 never mix; its other results are retrained on
demand (hours), since only v2's are shipped.
"""

from __future__ import annotations

import os

EXAMPLE_ENV = "COURSE_LIB_EXAMPLE"
EXAMPLES = ("v1", "v2")
EXAMPLE = os.environ.get(EXAMPLE_ENV) or "v2"
if EXAMPLE not in EXAMPLES:
    raise ValueError(f"{EXAMPLE_ENV}={EXAMPLE!r}: use one of {EXAMPLES}")
V2 = EXAMPLE == "v2"

"""Which running example the package builds: v1 (the default) or v2 (issue 26).

The running example v1 is the recognizer of eSpeak command templates that every
chapter was written on; v2 is trained on corpus v2 (isolated words, free strings,
digit strings, stronger acoustic variety) and two real speakers. One switch picks
it for the whole package, read once at import: the environment variable
`COURSE_LIB_EXAMPLE=v2` before Python starts. It changes the corpus every chapter
scores on, the baseline, the decoder that `lexicon=True` means, the fine-tuning
defaults, the ledger file and the folder of shipped results, so that v1 and v2
never mix. When every shipped result exists for v2, the default flips to v2.
"""

from __future__ import annotations

import os

EXAMPLE_ENV = "COURSE_LIB_EXAMPLE"
EXAMPLES = ("v1", "v2")
EXAMPLE = os.environ.get(EXAMPLE_ENV) or "v1"
if EXAMPLE not in EXAMPLES:
    raise ValueError(f"{EXAMPLE_ENV}={EXAMPLE!r}: use one of {EXAMPLES}")
V2 = EXAMPLE == "v2"

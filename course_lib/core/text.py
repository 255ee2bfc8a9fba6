"""Characters <-> token ids for the CTC model (chapter 1).

The alphabet is lower-case letters, space and apostrophe; id 0 is the CTC blank.
"""

from __future__ import annotations

import re

BLANK = 0
ALPHABET = " '" + "abcdefghijklmnopqrstuvwxyz"
VOCAB = ["<blank>"] + list(ALPHABET)  # 29 symbols
_INDEX = {c: i for i, c in enumerate(VOCAB)}


def normalize(text: str) -> str:
    """Lower-case, keep only alphabet characters, collapse spaces."""
    text = text.lower().replace("-", " ")
    text = "".join(c for c in text if c in _INDEX and c != "<blank>")
    return re.sub(r" +", " ", text).strip()


def encode(text: str) -> list[int]:
    """Text -> token ids (no blanks). Raises on characters outside the alphabet."""
    bad = sorted({c for c in text if c not in _INDEX})
    if bad:
        raise ValueError(f"characters outside the alphabet: {bad!r} in {text!r}")
    return [_INDEX[c] for c in text]


def decode_ids(ids: list[int]) -> str:
    """Token ids (no blanks expected) -> text."""
    return "".join(VOCAB[i] for i in ids if i != BLANK)

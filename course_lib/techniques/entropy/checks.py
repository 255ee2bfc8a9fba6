"""Lab 5's checks: Huffman code lengths by merging, and canonical codes.

Each check runs the student's function on small hand-made cases (`run_cases`) and
raises `CheckFailed` with the first failing case (spec §5). Huffman codes are not
unique (ties can be merged in either order), so lengths are checked by what every
optimal prefix code shares: a complete code (Kraft sum exactly 1) whose total
length sum(count x length) equals the package's Huffman code's.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable

import numpy as np

from ...core.checking import run_cases
from . import huffman as reference  # the package's own functions, to compare with


class _Optimal:
    """What a case expects: a complete code for `counts` of `bits` bits in total."""

    def __init__(self, counts: dict[int, int]) -> None:
        self.counts = counts
        self.bits = reference.coded_bits(counts, reference.huffman_lengths(counts))

    def __repr__(self) -> str:
        return (f"a length for each of the {len(self.counts)} symbols, Kraft sum 1, "
                f"{self.bits} bits in total")

    def met_by(self, got: Any) -> bool:
        """Every symbol, >= 1 bit each, Kraft sum 1 (or one symbol), optimal total."""
        if not isinstance(got, dict) or set(got) != set(self.counts):
            return False
        if any(not isinstance(n, (int, np.integer)) or n < 1 for n in got.values()):
            return False
        kraft = sum(Fraction(1, 2 ** int(n)) for n in got.values())
        lengths = {sym: int(n) for sym, n in got.items()}
        return ((kraft == 1 or len(got) == 1)
                and reference.coded_bits(self.counts, lengths) == self.bits)


def check_huffman_lengths(huffman_lengths: Callable[[dict[int, int]], dict]) -> None:
    """Lab 5: `huffman_lengths(counts) -> {symbol: code length}`, by merging."""
    rng = np.random.default_rng(0)
    skewed = {int(s): int(c) for s, c in enumerate(rng.geometric(0.2, 40))}
    many = {int(s): int(c) for s, c in enumerate(rng.integers(1, 1000, 200))}
    cases = [
        ("one symbol still needs one bit", {7: 12}),
        ("two symbols: one bit each", {0: 3, 1: 9}),
        ("counts 8, 4, 2, 1, 1: lengths 1, 2, 3, 4, 4 (30 bits)",
         {0: 8, 1: 4, 2: 2, 3: 1, 4: 1}),
        ("four equal counts: two bits each", {0: 5, 1: 5, 2: 5, 3: 5}),
        ("ties: 1, 1, 2, 2 has two optimal trees, both are fine",
         {0: 1, 1: 1, 2: 2, 3: 2}),
        ("40 skewed counts: the optimal total", skewed),
        ("200 random counts: the optimal total", many),
    ]
    run_cases("huffman_lengths", huffman_lengths,
              [(name, (counts,), _Optimal(counts)) for name, counts in cases],
              compare=lambda got, want: want.met_by(got))


def _prefix_free(codes: dict[int, int], lengths: dict[int, int]) -> bool:
    """No codeword (as a bit string of its length) starts another."""
    words = sorted(format(c, f"0{lengths[s]}b") for s, c in codes.items())
    return all(not b.startswith(a) for a, b in zip(words, words[1:]))


def check_canonical_codes(canonical_codes: Callable[[dict[int, int]], dict]) -> None:
    """Lab 5: `canonical_codes(lengths) -> {symbol: code}`, in canonical order."""
    cases = []
    for name, lengths in [
            ("lengths 1, 2, 3, 3: codes 0, 10, 110, 111",
             {0: 1, 1: 2, 2: 3, 3: 3}),
            ("equal lengths count up by symbol", {5: 2, 2: 2, 9: 2, 0: 2}),
            ("shorter codes first, then by symbol", {3: 3, 1: 2, 0: 3, 2: 1}),
            ("a 200-symbol Huffman code",
             reference.huffman_lengths({s: s + 1 for s in range(200)}))]:
        want = reference.canonical_codes(lengths)
        assert _prefix_free(want, lengths)  # the reference itself, for the reader
        cases.append((name, (lengths,), want))
    run_cases("canonical_codes", canonical_codes, cases)

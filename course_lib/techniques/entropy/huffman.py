"""Entropy coding (熵编码): Huffman codes for quantized weights and indices (chapter 5).

A stream of symbols drawn with frequencies p_i cannot be coded, symbol by symbol,
in fewer than H = -sum p_i log2 p_i bits per symbol on average (Shannon). A Huffman
code reaches H <= L < H + 1: it merges the two rarest symbols until one tree is
left, and a symbol's code length is its depth. Quantized weights are far from
uniform (most are near zero), so their codes need fewer bits than their width.

The code is canonical: only the code lengths are stored; the codes follow from
them (sorted by length, then symbol), as in DEFLATE.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import torch


def counts_of(symbols: np.ndarray) -> dict[int, int]:
    """Symbol -> number of occurrences (symbols: non-negative integers)."""
    values, counts = np.unique(np.asarray(symbols).reshape(-1), return_counts=True)
    if len(values) and values[0] < 0:
        raise ValueError("symbols must be non-negative integers")
    return {int(v): int(c) for v, c in zip(values, counts)}


def entropy_bits(counts: dict[int, int]) -> float:
    """Shannon entropy of the empirical distribution, in bits per symbol."""
    c = np.array(list(counts.values()), dtype=np.float64)
    if c.sum() == 0:
        raise ValueError("no symbols")
    p = c[c > 0] / c.sum()
    return float(-(p * np.log2(p)).sum())


def huffman_lengths(counts: dict[int, int]) -> dict[int, int]:
    """Code length of each symbol in a Huffman code for `counts`.

    Repeatedly merge the two lightest trees; every merge adds one bit to the code
    of each symbol inside them. A single symbol still needs one bit.
    """
    live = {s: c for s, c in counts.items() if c > 0}
    if not live:
        raise ValueError("no symbols")
    if len(live) == 1:
        return {next(iter(live)): 1}
    lengths = dict.fromkeys(live, 0)
    # (weight, tie-break, symbols in the tree): the counter keeps the order total
    heap = [(c, i, [s]) for i, (s, c) in enumerate(sorted(live.items()))]
    heapq.heapify(heap)
    tie = len(heap)
    while len(heap) > 1:
        w1, _, s1 = heapq.heappop(heap)
        w2, _, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            lengths[s] += 1
        heapq.heappush(heap, (w1 + w2, tie, s1 + s2))
        tie += 1
    return lengths


def canonical_codes(lengths: dict[int, int]) -> dict[int, int]:
    """Symbol -> code (an integer of `lengths[symbol]` bits), canonical order."""
    codes, code, prev = {}, 0, 0
    for sym, n in sorted(lengths.items(), key=lambda kv: (kv[1], kv[0])):
        code <<= n - prev  # the next code, widened to this length
        codes[sym], code, prev = code, code + 1, n
    return codes


def coded_bits(counts: dict[int, int], lengths: dict[int, int]) -> int:
    """Total bits of the coded stream: sum of count x code length."""
    return sum(c * lengths[s] for s, c in counts.items() if c > 0)


@dataclass
class HuffmanStream:
    """A Huffman-coded stream: packed bits, code lengths, symbol and bit counts."""

    data: bytes
    lengths: dict[int, int]
    n: int  # number of symbols
    n_bits: int  # payload bits (the last byte is padded with zeros)

    def nbytes(self) -> int:
        """Bytes to store it: the payload plus one byte per alphabet entry (lengths)."""
        return len(self.data) + max(self.lengths) + 1


def encode(symbols: np.ndarray) -> HuffmanStream:
    """Huffman-code a stream of non-negative integers (vectorized bit packing)."""
    sym = np.asarray(symbols).reshape(-1).astype(np.int64)
    lengths = huffman_lengths(counts_of(sym))
    codes = canonical_codes(lengths)
    table_len = np.zeros(max(lengths) + 1, dtype=np.int64)
    table_code = np.zeros(max(lengths) + 1, dtype=np.int64)
    for s, n in lengths.items():
        table_len[s], table_code[s] = n, codes[s]
    n_bits = table_len[sym]  # (n,) code length of each symbol
    start = np.cumsum(n_bits) - n_bits  # first bit of each symbol's code
    owner = np.repeat(np.arange(len(sym)), n_bits)  # (total bits,) symbol of each bit
    j = np.arange(len(owner)) - start[owner]  # bit position inside its code, MSB first
    bits = (table_code[sym][owner] >> (n_bits[owner] - 1 - j)) & 1
    return HuffmanStream(np.packbits(bits.astype(np.uint8)).tobytes(), lengths,
                         len(sym), len(bits))


def stream_tensors(stream: HuffmanStream, prefix: str) -> dict[str, torch.Tensor]:
    """The stream as tensors for a safetensors container (lengths per symbol 0..max)."""
    lengths = np.zeros(max(stream.lengths) + 1, dtype=np.uint8)
    for s, n in stream.lengths.items():
        lengths[s] = n
    counts = np.array([stream.n, stream.n_bits], dtype=np.int64)
    data = np.frombuffer(stream.data, np.uint8).copy()
    return {f"{prefix}/data": torch.from_numpy(data),
            f"{prefix}/lengths": torch.from_numpy(lengths),
            f"{prefix}/counts": torch.from_numpy(counts)}


def tensors_stream(tensors: dict[str, torch.Tensor], prefix: str) -> HuffmanStream:
    """Inverse of `stream_tensors`."""
    lengths = tensors[f"{prefix}/lengths"].numpy()
    n, n_bits = (int(v) for v in tensors[f"{prefix}/counts"].numpy())
    code_lengths = {int(s): int(k) for s, k in enumerate(lengths) if k}
    return HuffmanStream(tensors[f"{prefix}/data"].numpy().tobytes(), code_lengths, n,
                         n_bits)


MAX_TABLE_BITS = 24  # decode table of 2**24 entries at most


def decode(stream: HuffmanStream) -> np.ndarray:
    """Decode with a table indexed by the next `max_len` bits.

    A code of length L is the first L bits of 2**(max_len - L) table entries;
    each entry gives the symbol and how far to move. The walk from symbol to
    symbol is sequential, the table and the windows are vectorized.
    """
    lengths, n = stream.lengths, stream.n
    max_len = max(lengths.values())
    if max_len > MAX_TABLE_BITS:
        raise ValueError(f"codes of {max_len} bits: longer than {MAX_TABLE_BITS}")
    bits = np.unpackbits(np.frombuffer(stream.data, dtype=np.uint8)).astype(np.int64)
    if len(bits) < stream.n_bits:
        raise ValueError(f"the stream holds {len(bits)} bits, {stream.n_bits} expected")
    bits = np.concatenate([bits[: stream.n_bits], np.zeros(max_len, np.int64)])
    total = stream.n_bits
    window = np.zeros(total, dtype=np.int64)  # the next max_len bits at each position
    for j in range(max_len):
        window = (window << 1) | bits[j: j + total]
    table_sym = np.full(1 << max_len, -1, dtype=np.int64)
    table_len = np.zeros(1 << max_len, dtype=np.int64)
    for s, c in canonical_codes(lengths).items():
        lo = c << (max_len - lengths[s])
        hi = (c + 1) << (max_len - lengths[s])
        table_sym[lo:hi], table_len[lo:hi] = s, lengths[s]
    sym_at = table_sym[window].tolist()
    next_at = (np.arange(total) + table_len[window]).tolist()
    out, pos = [], 0
    for _ in range(n):
        if pos >= total:
            raise ValueError(f"the stream ends after {len(out)} of {n} symbols")
        if sym_at[pos] < 0:
            raise ValueError(f"no code matches at bit {pos}: corrupted stream")
        out.append(sym_at[pos])
        pos = next_at[pos]
    if pos != total:
        raise ValueError(f"{total - pos} bits left over after {n} symbols")
    return np.array(out, dtype=np.int64)

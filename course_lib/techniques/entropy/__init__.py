"""Entropy coding (熵编码), chapter 5: Huffman codes against the entropy bound,
coded streams stored as tensors (`huffman`); lab 5's checks (`checks`).
"""

from . import checks
from .huffman import (MAX_TABLE_BITS, canonical_codes, coded_bits, counts_of, decode,
                      encode, entropy_bits, huffman_lengths, HuffmanStream,
                      stream_tensors, tensors_stream)

"""Layer 2b, methods that combine techniques (chapters 3.5, 4 and 5).

Deep Compression: pruning, weight sharing and Huffman coding in one file
(`deepcomp`); chapter 3.2's int8 codes as chapter 3.5's shards
(`quantized_shards`); chapter 3.2's int8 file with Huffman-coded codes
(`huffman_int8`). They import `core` and `techniques`, nothing above.
"""

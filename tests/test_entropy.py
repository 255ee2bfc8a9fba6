"""Chapter 5: Huffman coding (optimal lengths, canonical codes, a lossless
round trip, the entropy bound, and agreement with the dahuffman library)."""

import numpy as np
import pytest

from course_lib import entropy as E


def test_known_code_lengths():
    # dyadic frequencies: the Huffman code meets the entropy exactly
    counts = {0: 8, 1: 4, 2: 2, 3: 1, 4: 1}
    lengths = E.huffman_lengths(counts)
    assert lengths == {0: 1, 1: 2, 2: 3, 3: 4, 4: 4}
    assert E.coded_bits(counts, lengths) / 16 == pytest.approx(E.entropy_bits(counts))


def test_canonical_codes_are_prefix_free_and_ordered():
    codes = E.canonical_codes({0: 1, 1: 2, 2: 3, 3: 3})
    assert codes == {0: 0b0, 1: 0b10, 2: 0b110, 3: 0b111}


def test_single_symbol_and_empty_streams():
    assert E.huffman_lengths({7: 10}) == {7: 1}
    with pytest.raises(ValueError, match="no symbols"):
        E.huffman_lengths({})
    with pytest.raises(ValueError, match="non-negative"):
        E.counts_of(np.array([-1, 2]))


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_and_the_entropy_bound(seed):
    rng = np.random.default_rng(seed)
    x = np.clip(np.round(rng.normal(0, 6, 20_000)), -40, 40).astype(np.int64) + 40
    stream = E.encode(x)
    assert np.array_equal(E.decode(stream), x)
    h = E.entropy_bits(E.counts_of(x))
    per_symbol = stream.n_bits / len(x)
    assert h <= per_symbol < h + 1
    assert len(stream.data) == -(-stream.n_bits // 8)


def test_a_corrupted_or_truncated_stream_is_refused():
    x = np.array([0, 1, 2, 3, 0, 0, 1, 2] * 50)
    stream = E.encode(x)
    short = E.HuffmanStream(stream.data[:-5], stream.lengths, stream.n, stream.n_bits)
    with pytest.raises(ValueError, match="bits"):
        E.decode(short)
    more = E.HuffmanStream(stream.data, stream.lengths, stream.n + 3, stream.n_bits)
    with pytest.raises(ValueError, match="ends after"):
        E.decode(more)


def test_total_bits_equal_the_dahuffman_library():
    dahuffman = pytest.importorskip("dahuffman")
    rng = np.random.default_rng(3)
    x = rng.geometric(0.3, 5000)
    counts = E.counts_of(x)
    # dahuffman adds an end-of-stream symbol (count 1)
    lib = dahuffman.HuffmanCodec.from_frequencies(counts)
    lib_bits = sum(counts.get(s, 1) * n for s, (n, _) in lib.get_code_table().items())
    eof = max(counts) + 1
    ours = {**counts, eof: 1}
    assert E.coded_bits(ours, E.huffman_lengths(ours)) == lib_bits


def test_huffman_coded_quantized_file_loads_the_same_weights(tmp_path):
    import torch

    import course_lib as cl
    from course_lib import huffman_int8, quantization as Q

    torch.manual_seed(0)
    m = cl.CTCModel(cl.ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=2))
    fixed = Q.load_quantized(Q.save_quantized(m, tmp_path / "a.q", Q.ENGINE_SPEC))
    path = huffman_int8.save_quantized_huffman(m, tmp_path / "b.q", Q.ENGINE_SPEC)
    coded = huffman_int8.load_quantized_huffman(path)
    for (k, a), b in zip(fixed.state_dict().items(), coded.state_dict().values()):
        assert torch.equal(a, b), k
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # one flipped byte in the payload
    (tmp_path / "c.q").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        huffman_int8.load_quantized_huffman(tmp_path / "c.q")

import random

import pytest

import course_lib as cl
from course_lib import grammar


def test_encode_decode_roundtrip():
    text = "turn on the kitchen's lights"
    assert cl.decode_ids(cl.encode(text)) == text


def test_encode_rejects_unknown_characters():
    with pytest.raises(ValueError, match="outside the alphabet"):
        cl.encode("call 911")


def test_normalize():
    assert cl.normalize("  Turn ON the   Wi-Fi! ") == "turn on the wi fi"


def test_grammar_words_fit_the_alphabet_and_size():
    vocab = grammar.vocabulary()
    assert 150 <= len(vocab) <= 300
    rng = random.Random(0)
    for _ in range(500):
        s = grammar.sample_sentence(rng)
        assert cl.normalize(s) == s
        assert set(s.split()) <= set(vocab)


def test_numbers_are_spelled_out():
    rng = random.Random(1)
    assert all(grammar.number(rng, 21, 21) == "twenty one" for _ in range(3))
    assert grammar.number(rng, 40, 40) == "forty"
    assert grammar.number(rng, 13, 13) == "thirteen"

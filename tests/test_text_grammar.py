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


def test_v2_text_kinds_cover_words_alone_free_strings_and_digit_strings():
    import random

    rng = random.Random(0)
    vocab = set(grammar.vocabulary())
    texts = {k: [grammar.sample_text(rng, k) for _ in range(400)]
             for k in grammar.KINDS}
    for kind, sample in texts.items():
        assert all(set(t.split()) <= vocab for t in sample), kind
    words = texts["word"]
    assert all(len(t.split()) <= 2 for t in words)  # a word, or "forty two"
    assert sum(t in grammar.DIGITS for t in words) > 80  # digits alone are frequent
    assert len(set(words)) > 100  # and many other words appear alone
    lengths = {len(t.split()) for t in texts["string"]}
    assert lengths == set(range(1, 7))
    digits = texts["digits"]
    assert all(set(t.split()) <= set(grammar.DIGITS) for t in digits)
    assert {len(t.split()) for t in digits} == set(range(1, 13))
    assert not set(texts["string"]) & set(texts["command"])  # no template order
    assert set(grammar.REPORT_GROUP) == set(grammar.KINDS)
    with pytest.raises(ValueError, match="unknown text kind"):
        grammar.sample_text(rng, "poem")

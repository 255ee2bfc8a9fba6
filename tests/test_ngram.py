"""The Witten-Bell word n-gram and its ARPA file (core.ngram), and the lexicon
decoder that weighs it."""

import math
import sys

import pytest
import torch

import course_lib as cl
from course_lib.core.checking import spelled_frames
from course_lib.core.lexicon import grammar_lm, lexicon_decode, lexicon_decoder
from course_lib.core.ngram import BOS, EOS, _prob, arpa_text, witten_bell

SENTENCES = ["dial five five", "call mom now", "five", "one", "dial one two"]
VOCAB = ["dial", "five", "call", "mom", "now", "one", "two", "on", "three"]


@pytest.mark.parametrize("order", [1, 2, 3])
def test_every_history_sums_to_one(order):
    probs, backoff = witten_bell(SENTENCES, VOCAB, order)
    words = sorted(set(VOCAB) | {EOS})
    histories = [(), (BOS,), ("dial",), (BOS, "dial"), ("dial", "five"),
                 ("mom", "three"), ("never", "seen")]
    for h in histories:
        h = h[-(order - 1):] if order > 1 else ()  # the model sees order - 1 words
        total = sum(_prob(probs, backoff, h + (w,)) for w in words)
        assert total == pytest.approx(1.0, abs=1e-12), (order, h, total)


def test_witten_bell_by_hand():
    # counts a:2 b:1 c:1 </s>:2 -> N = 6, T = 4 types, V = 4 (a, b, c, </s>)
    probs, backoff = witten_bell(["a b", "a c"], ["a", "b", "c"], 2)
    assert probs[0][("b",)] == pytest.approx((1 + 4 / 4) / (6 + 4))  # 0.2
    # after "a": c(h) = 2, T(h) = 2 -> (1 + 2 * 0.2) / 4
    assert probs[1][("a", "b")] == pytest.approx(0.35)
    assert backoff[("a",)] == pytest.approx(2 / 4)
    assert _prob(probs, backoff, ("a", "a")) == pytest.approx(0.5 * probs[0][("a",)])


def test_arpa_file_layout():
    text = arpa_text(SENTENCES, VOCAB, 3)
    lines = text.splitlines()
    assert lines[0] == "\\data\\" and lines[-1] == "\\end\\"
    for k in (1, 2, 3):
        header = next(x for x in lines if x.startswith(f"ngram {k}="))
        declared = int(header.split("=")[1])
        start = lines.index(f"\\{k}-grams:") + 1
        section = lines[start:lines.index("", start)]
        assert len(section) == declared
        assert all(len(x.split("\t")[1].split()) == k for x in section)
        if k == 3:  # the highest order has no backoff weights
            assert all(len(x.split("\t")) == 2 for x in section)
    unigram = {x.split("\t")[1]: x.split("\t") for x in lines if "\t" in x
               and len(x.split("\t")[1].split()) == 1}
    assert set(VOCAB) <= set(unigram)  # every lexicon word has a probability
    assert float(unigram["<s>"][0]) == -99.0
    assert float(unigram["on"][0]) < float(unigram["one"][0])  # "on" never seen
    assert math.isclose(10 ** float(unigram["dial"][2]), 2 / (2 + 2), rel_tol=1e-5)
    with pytest.raises(ValueError, match="order"):
        witten_bell(SENTENCES, VOCAB, 0)


def test_the_grammar_lm_decides_where_the_sounds_do_not():
    # "o", "n", then a frame where a faint "e" (log-prob -3) follows: the sounds
    # say "on" ...
    lp = spelled_frames("o_n_e_", cl.VOCAB)
    lp[4] = lp[5] = lp[1]  # the "e" frame made a blank
    lp[4, cl.VOCAB.index("e")] = -3.0
    lengths = torch.tensor([lp.shape[0]])
    assert lexicon_decode(lp[None], lengths, lexicon_decoder()) == ["on"]
    # ... but isolated digits are common in corpus v2's training text, "on" alone
    # is not: with the trigram the decoder hears "one"
    assert lexicon_decode(lp[None], lengths) == ["one"]  # the default has the LM
    clear = spelled_frames("d_i_a_l_ _f_i_v_e__", cl.VOCAB)[None]
    assert lexicon_decode(clear, torch.tensor([clear.shape[1]])) == ["dial five"]
    assert grammar_lm() == grammar_lm()  # cached by content


def test_loading_the_trigram_prints_nothing(capfd):
    # KenLM's "Loading the LM will be faster ..." goes to fd 2; the decoder hides it
    lexicon_decoder(beam_size=7, lm_weight=1.0)  # a new argument set: built now
    assert capfd.readouterr().err == ""
    print("fd 2 works again", file=sys.stderr)
    assert "works again" in capfd.readouterr().err

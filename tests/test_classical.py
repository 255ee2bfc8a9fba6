"""The classical peer (chapter 1): PocketSphinx with a one-digit grammar."""

import course_lib as cl
from course_lib.core import classical


def test_pocketsphinx_answers_one_digit_per_recording_and_is_cached(cache,
                                                                    monkeypatch):
    refs, hyps = cl.pocketsphinx_transcripts(("jackson",))
    assert len(refs) == len(hyps) == 500 and refs[0] == "zero"
    assert set(hyps) <= set(cl.grammar.DIGITS) | {""}  # the grammar allows no more
    assert cl.error_rates(refs, hyps)["wer"] < 0.5  # far better than chance (90 %)

    def broken():
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(classical, "pocketsphinx_decoder", broken)
    assert cl.pocketsphinx_transcripts(("jackson",)) == (refs, hyps)

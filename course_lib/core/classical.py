"""A classical peer on real voices: PocketSphinx with a one-digit grammar (chapter 1).

Before neural recognizers, a small-vocabulary task like ours was solved with an HMM
acoustic model and a grammar. PocketSphinx (CMU, BSD licence) ships such a model for
US English inside its wheel; with a JSGF grammar that allows exactly one digit word
it can only answer "zero" ... "nine", which is what the real recordings say. It is
the bar a neural baseline should clear on real people: chapter 1 scores both on
the same recordings, speaker by speaker, with the paired bootstrap.
"""

from __future__ import annotations

import json

import numpy as np

from .corpus.grammar import DIGITS
from .corpus.real import UNSEEN_SPEAKER, recording_audio, recordings
from .utils import atomic_write_bytes, atomic_write_json, cache_dir, config_hash

GRAMMAR = ("#JSGF V1.0;\ngrammar digits;\npublic <digit> = "
           + " | ".join(DIGITS) + ";\n")


def pocketsphinx_decoder():
    """A PocketSphinx decoder (its wheel's en-us model) limited to one digit word."""
    from pocketsphinx import Decoder

    path = cache_dir() / "pocketsphinx" / f"{config_hash(GRAMMAR)}.gram"
    if not path.exists():
        atomic_write_bytes(path, GRAMMAR.encode())
    return Decoder(jsgf=str(path), loglevel="FATAL")


def pocketsphinx_transcripts(speakers: tuple[str, ...] = (UNSEEN_SPEAKER,)
                             ) -> tuple[list[str], list[str]]:
    """(references, hypotheses) of PocketSphinx on the real recordings of `speakers`,
    in `recordings()` order, cached by speakers, grammar and PocketSphinx version."""
    from importlib.metadata import version

    key = config_hash(dict(speakers=list(speakers), grammar=GRAMMAR,
                           pocketsphinx=version("pocketsphinx")))
    path = cache_dir() / "transcripts" / f"pocketsphinx-{key}.json"
    if not path.exists():
        decoder, refs, hyps = pocketsphinx_decoder(), [], []
        for rec in recordings(speakers):
            wav = recording_audio(rec)  # (samples,) at 16 kHz, the model's rate
            pcm = (wav.clamp(-1, 1) * 32767).numpy().astype(np.int16).tobytes()
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
            refs.append(rec.text)
            hyps.append(hyp.hypstr if hyp is not None else "")
        atomic_write_json(path, dict(refs=refs, hyps=hyps))
    data = json.loads(path.read_text())
    return data["refs"], data["hyps"]

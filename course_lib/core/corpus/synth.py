"""eSpeak NG speech synthesis in-process through ctypes (chapter 1).

`espeakng-loader` ships `libespeak-ng` and its data for Linux, macOS and Windows,
so a learner needs no system package and nothing is downloaded. We call the C API
(`speak_lib.h`) directly with `AUDIO_OUTPUT_SYNCHRONOUS` and a synth callback
that collects the 16-bit samples into a Python list.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

# Constants from speak_lib.h (API revision 12).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE, _PARAM_PITCH = 1, 3
_EE_OK = 0

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an accent, a variant, a rate (words/min), a pitch."""

    accent: str  # e.g. "en-us", "en-gb-scotland"
    variant: str  # e.g. "m3", "f2", "klatt2" (a file in espeak-ng-data/voices/!v)
    rate: int = 175  # eSpeak's words per minute, 80..450
    pitch: int = 50  # eSpeak's base pitch, 0..100
    seed: int = 0  # seeds eSpeak's noise generator (breathy variants use it)

    @property
    def name(self) -> str:
        """The voice name that `espeak_SetVoiceByName` takes: accent+variant."""
        return f"{self.accent}+{self.variant}"


class ESpeak:
    """A process-wide handle on libespeak-ng (the library has global state)."""

    _instance: "ESpeak | None" = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        self.lib.espeak_Initialize.restype = ctypes.c_int
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (returned {rate})")
        self.sample_rate = int(rate)  # 22,050 Hz for the bundled voices
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._on_audio)  # keep a reference
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]

    @classmethod
    def get(cls) -> "ESpeak":
        """Return the single initialised instance."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = ESpeak()
            return cls._instance

    def _on_audio(self, wav, n: int, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = continue synthesis

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        """Speak `text` with `voice`; return int16 samples at `self.sample_rate`."""
        with self._lock:
            if self.lib.espeak_SetVoiceByName(voice.name.encode()) != _EE_OK:
                raise ValueError(f"eSpeak has no voice named {voice.name!r}")
            self.lib.espeak_SetParameter(_PARAM_RATE, int(voice.rate), 0)
            self.lib.espeak_SetParameter(_PARAM_PITCH, int(voice.pitch), 0)
            # Some variants (breathy voices such as f2) add random noise: seed it.
            self.lib.espeak_ng_SetRandSeed(ctypes.c_long(voice.seed))
            self._chunks = []
            data = text.encode("utf-8") + b"\0"
            err = self.lib.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
            )
            if err != _EE_OK:
                raise RuntimeError(f"espeak_Synth failed with code {err} on {text!r}")
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(chunks)


def synthesize(text: str, voice: Voice) -> tuple[np.ndarray, int]:
    """Synthesize `text`; return (int16 samples, sample rate). Chapter 1."""
    engine = ESpeak.get()
    return engine.synthesize(text, voice), engine.sample_rate

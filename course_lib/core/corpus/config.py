"""What determines a synthetic corpus: `CorpusConfig`, and corpus v2 (chapter 1).

`CorpusConfig()` is the corpus v1 of the course (command templates only),
`CORPUS_V2` the corpus v2 (spec §3.1). `corpus.build` synthesizes a configuration;
`core.example` says which one the running example uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..utils import config_hash
from .grammar import KINDS

ACCENTS = ("en-us", "en", "en-gb-scotland", "en-029", "en-gb-x-rp",
           "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")
# Disjoint voice variants: the test set measures speakers the model never heard.
TRAIN_VARIANTS = (
    "m1", "m2", "m4", "m6", "m7", "m8", "f1", "f3", "f5", "klatt", "klatt2",
    "klatt4", "Alex", "Alicia", "Andrea", "Denis", "Gene", "Jacky", "Lee", "Mario",
    "Michael", "Mike", "Reed", "Storm", "Tweaky", "adam", "anika", "aunty",
    "belinda", "benjamin", "boris", "caleb", "david", "ed", "grandma", "grandpa",
    "gustave", "ian", "iven", "max", "michel", "norbert", "paul", "rob", "robert",
    "shelby", "travis", "victor", "zac",
)
DEV_VARIANTS = ("m5", "f4", "klatt5", "john", "linda", "iven2")
TEST_VARIANTS = ("m3", "f2", "klatt3", "Andy", "Annie", "edward", "steph",
                 "quincy", "Hugo", "antonio")
SPLITS = ("train", "dev", "test")
GENERATOR_VERSION = 2  # bump when the generation code changes its output
# The fields corpus v2 added, with the values that give corpus v1. A field at its v1
# value is left out of the key, so that every v1 corpus keeps its cache folder (and
# the shipped v1 models their corpus key).
V1_VALUES = {"kinds": (("command", 1.0),), "p_telephone": 0.0, "p_tilt": 0.0,
             "peak_db_range": None}


@dataclass(frozen=True)
class CorpusConfig:
    """Everything that determines the corpus; its hash names the cache folder."""

    seed: int = 1234
    n_train: int = 10000
    n_dev: int = 600
    n_test: int = 1200
    sample_rate: int = 16000
    accents: tuple[str, ...] = ACCENTS
    train_variants: tuple[str, ...] = TRAIN_VARIANTS
    dev_variants: tuple[str, ...] = DEV_VARIANTS
    test_variants: tuple[str, ...] = TEST_VARIANTS
    rate_range: tuple[int, int] = (135, 205)  # eSpeak words per minute
    pitch_range: tuple[int, int] = (25, 75)
    p_noise: float = 0.6  # probability of additive noise
    snr_range_db: tuple[float, float] = (5.0, 30.0)
    p_reverb: float = 0.3
    rt60_range: tuple[float, float] = (0.15, 0.6)
    speeds: tuple[float, ...] = (0.9, 1.1)
    p_speed: float = 0.3
    chunk_size: int = 500  # utterances per worker process
    generator_version: int = GENERATOR_VERSION
    # corpus v2 (see `V1_VALUES`): text kinds with their weights (grammar.KINDS),
    kinds: tuple[tuple[str, float], ...] = (("command", 1.0),)
    p_telephone: float = 0.0  # probability of the 300-3400 Hz telephone band
    p_tilt: float = 0.0  # probability of a spectral tilt (a one-pole filter)
    # peak level in dB of full scale, drawn uniformly; above 0 dB the audio clips
    # (None: corpus v1's gain, a peak between 0.2 and 0.9)
    peak_db_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        unknown = sorted({k for k, _ in self.kinds} - set(KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"kinds must name some of {KINDS}, got {self.kinds}")

    def key(self) -> str:
        """The cache key: a hash of every field (v2's fields only where they differ
        from corpus v1, so that a v1 corpus keeps its key)."""
        fields = asdict(self)
        for name, v1 in V1_VALUES.items():
            if fields[name] == v1:
                del fields[name]
        return config_hash(fields)

    def n(self, split: str) -> int:
        """Number of utterances in `split`."""
        return {"train": self.n_train, "dev": self.n_dev, "test": self.n_test}[split]

    def variants(self, split: str) -> tuple[str, ...]:
        """The voice variants reserved for `split`."""
        return {"train": self.train_variants, "dev": self.dev_variants,
                "test": self.test_variants}[split]


# Corpus v2 (spec §3.1): the templates are 40 % of the text; isolated words, free
# strings and digit strings the rest; wider prosody; telephone band, spectral tilt,
# levels from -35 dBFS (whisper-quiet) to +4 dBFS (clipped), more reverberation.
CORPUS_V2 = CorpusConfig(
    seed=2026, n_train=16000, n_dev=800, n_test=1600,
    rate_range=(110, 260), pitch_range=(0, 99), snr_range_db=(3.0, 30.0),
    p_reverb=0.35, rt60_range=(0.15, 0.8), speeds=(0.85, 0.9, 1.1, 1.15),
    p_speed=0.4, generator_version=3,
    kinds=(("command", 0.4), ("word", 0.2), ("string", 0.25), ("digits", 0.15)),
    p_telephone=0.15, p_tilt=0.4, peak_db_range=(-35.0, 4.0))

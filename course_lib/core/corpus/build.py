"""The running example's corpus: synthetic voice commands, cached (chapter 1).

`build_corpus(CorpusConfig())` synthesizes train/dev/test splits with eSpeak NG,
adds noise, reverberation and speed perturbation, writes 16 kHz FLAC files and a
manifest with checksums into `cache_dir()/corpus/<hash>/`, and returns a `Corpus`.
A second call finds the finished cache and only verifies it.

Two versions: `CorpusConfig()` is the corpus v1 of the course (command templates
only), `CORPUS_V2` the corpus v2 (spec §3.1): isolated words, free word strings and
digit strings besides the templates, wider prosody, and stronger acoustic variety
(telephone band, spectral tilt, levels from whisper-quiet to clipped). Each
utterance records its text `kind`, so that WER can be reported per kind.

Determinism: eSpeak keeps a little state between calls (its pitch "flutter"), so
the same sentence synthesized twice in one process can differ by a few samples.
We therefore synthesize each chunk of utterances in a fresh worker process: the
corpus depends only on the configuration and the library versions.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..audio import AudioError, check_waveform, load_pcm16, pcm16
from ..example import EXAMPLE
from ..text import normalize
from ..utils import atomic_write_json, cache_dir, sha256_bytes
from . import augment
from .grammar import sample_text
from .synth import Voice, synthesize

# The configuration (the voices of each split, the acoustic chain) lives in `config`.
from .config import (ACCENTS, CORPUS_V2, DEV_VARIANTS, GENERATOR_VERSION,  # noqa: F401
                     SPLITS, TEST_VARIANTS, TRAIN_VARIANTS, V1_VALUES, CorpusConfig)


@dataclass
class Utterance:
    """One manifest row."""

    id: str
    split: str
    text: str
    voice: str
    rate: int
    pitch: int
    speed: float
    noise: str  # "none", "white", "pink" or "babble"
    snr_db: float | None
    rt60: float | None
    path: str  # relative to the corpus folder
    num_samples: int
    checksum: str  # sha256 of the int16 PCM samples
    kind: str = "command"  # the text kind (grammar.KINDS); v1 manifests: all commands
    effects: str = ""  # v2's filters and level, e.g. "telephone,tilt,clipped"

    @property
    def duration(self) -> float:
        """Length in seconds at 16 kHz."""
        return self.num_samples / 16000


@dataclass
class Corpus:
    """A finished corpus on disk: its folder, configuration and manifest."""

    root: Path
    config: CorpusConfig
    utterances: list[Utterance] = field(repr=False)
    info: dict = field(default_factory=dict, repr=False)

    def split(self, name: str) -> list[Utterance]:
        """The utterances of one split, in manifest order."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return [u for u in self.utterances if u.split == name]

    def audio(self, utt: Utterance, verify: bool = True) -> torch.Tensor:
        """One utterance's waveform (float32, (samples,)), its checksum checked."""
        path = self.root / utt.path
        pcm = load_pcm16(path, self.config.sample_rate)
        if verify and sha256_bytes(pcm.tobytes()) != utt.checksum:
            raise AudioError(f"{path}: checksum mismatch (the cached file was changed "
                             "or damaged); run `python -m course_lib corpus --repair`")
        return check_waveform(torch.from_numpy(pcm.astype(np.float32) / 32768.0),
                              self.config.sample_rate, source=str(path))


# ----------------------------------------------------------------------------------
# Planning: which sentence, voice and augmentation each utterance gets.

def _held_out(kind: str, text: str) -> bool:
    """Whether a test/dev text must never be trained on: every command, and free
    strings of three or more words (a single word or digit string cannot be kept
    out: the model must hear every word)."""
    return kind == "command" or (kind == "string" and len(text.split()) >= 3)


def plan_corpus(cfg: CorpusConfig) -> list[dict]:
    """Draw every utterance's text, voice and augmentation from the seed."""
    rng = random.Random(cfg.seed)
    held_out: set[str] = set()
    plans: list[dict] = []
    kinds, weights = zip(*cfg.kinds)
    v2 = cfg.p_telephone or cfg.p_tilt or cfg.peak_db_range is not None
    for split in ("test", "dev", "train"):  # held-out texts first
        for i in range(cfg.n(split)):
            # (one kind only, as in corpus v1: no draw, so v1 plans stay the same)
            kind = kinds[0] if len(kinds) == 1 else rng.choices(kinds, weights)[0]
            text = sample_text(rng, kind)
            while split == "train" and text in held_out:
                text = sample_text(rng, kind)  # no held-out text is ever trained on
            if split != "train" and _held_out(kind, text):
                held_out.add(text)
            noise = "none"
            if rng.random() < cfg.p_noise:
                noise = rng.choice(["white", "pink", "babble"])
            plans.append(dict(
                id=f"{split}-{i:05d}", split=split, text=text,
                accent=rng.choice(cfg.accents), variant=rng.choice(cfg.variants(split)),
                rate=rng.randint(*cfg.rate_range), pitch=rng.randint(*cfg.pitch_range),
                speed=rng.choice(cfg.speeds) if rng.random() < cfg.p_speed else 1.0,
                noise=noise,
                snr_db=(round(rng.uniform(*cfg.snr_range_db), 1)
                        if noise != "none" else None),
                rt60=round(rng.uniform(*cfg.rt60_range), 2)
                if rng.random() < cfg.p_reverb else None,
                lead=rng.uniform(0.05, 0.25), seed=rng.getrandbits(31), kind=kind,
            ))
            if v2:  # drawn after everything else, so that v1 plans stay the same
                plans[-1].update(
                    telephone=rng.random() < cfg.p_telephone,
                    tilt=round(rng.uniform(-0.9, 0.9), 2)
                    if rng.random() < cfg.p_tilt else None,
                    peak_db=round(rng.uniform(*cfg.peak_db_range), 1)
                    if cfg.peak_db_range is not None else None)
    order = {s: k for k, s in enumerate(SPLITS)}
    return sorted(plans, key=lambda p: (order[p["split"]], p["id"]))


# ----------------------------------------------------------------------------------
# Synthesis of one chunk (runs in a fresh worker process).

def _render_chunk(args: tuple[list[dict], str, int]) -> list[dict]:
    """Synthesize, augment and write one chunk; return its manifest rows."""
    import soundfile as sf
    import torchaudio.functional as AF

    plans, root, sample_rate = args
    torch.set_num_threads(1)
    clean: list[torch.Tensor] = []
    for p in plans:  # 1) clean speech at 16 kHz
        voice = Voice(p["accent"], p["variant"], p["rate"], p["pitch"], seed=p["seed"])
        samples, sr = synthesize(p["text"], voice)
        if samples.size == 0:
            raise RuntimeError(f"eSpeak produced no audio for {p['text']!r} ({voice})")
        wav = torch.from_numpy(samples.astype(np.float32) / 32768.0)
        clean.append(AF.resample(wav, orig_freq=sr, new_freq=sample_rate))
    rows = []
    for k, p in enumerate(plans):  # 2) augmentation, 3) write
        gen = torch.Generator().manual_seed(p["seed"])
        wav = augment.speed_perturb(clean[k], p["speed"], sample_rate)
        lead = torch.zeros(int(p["lead"] * sample_rate))
        wav = torch.cat([lead, wav, lead])
        if p["rt60"] is not None:
            wav = augment.reverberate(wav, augment.synthetic_rir(p["rt60"], sample_rate,
                                                                 gen))
        if p["noise"] != "none":
            n = wav.numel()
            if p["noise"] == "white":
                noise = augment.white_noise(n, gen)
            elif p["noise"] == "pink":
                noise = augment.pink_noise(n, gen)
            else:  # babble from three other utterances of the same chunk (same split)
                picks = torch.randint(0, len(clean), (3,), generator=gen).tolist()
                others = [clean[j] for j in picks if j != k]
                noise = augment.babble_noise(n, others, gen)
                if noise.abs().max() == 0:
                    noise = augment.pink_noise(n, gen)
            wav = augment.mix_at_snr(wav, noise, p["snr_db"])
        effects = []
        if p.get("telephone"):  # the 300-3400 Hz band of a phone line, at 8 kHz
            wav = augment.telephone(wav, sample_rate)
            effects.append("telephone")
        if p.get("tilt") is not None:
            wav = augment.tilt(wav, p["tilt"])
            effects.append(f"tilt {p['tilt']:+.2f}")
        if p.get("peak_db") is not None:  # whisper-quiet to clipped
            wav = wav * (10 ** (p["peak_db"] / 20) / wav.abs().max().clamp(min=1e-8))
            effects.append(f"peak {p['peak_db']:+.1f} dB"
                           + (", clipped" if p["peak_db"] > 0 else ""))
        else:
            gain = float(torch.empty(1).uniform_(0.2, 0.9, generator=gen))
            wav = wav * (gain / wav.abs().max().clamp(min=1e-8))
        pcm = pcm16(wav)  # clips at full scale
        sf.write(str(Path(root) / f"{p['id']}.flac"), pcm, sample_rate,
                 subtype="PCM_16", format="FLAC")
        rel = f"{p['split']}/{p['id']}.flac"  # relative to the corpus root
        rows.append(asdict(Utterance(
            id=p["id"], split=p["split"], text=p["text"],
            voice=f"{p['accent']}+{p['variant']}", rate=p["rate"], pitch=p["pitch"],
            speed=p["speed"], noise=p["noise"], snr_db=p["snr_db"], rt60=p["rt60"],
            path=rel, num_samples=int(pcm.size), checksum=sha256_bytes(pcm.tobytes()),
            kind=p["kind"], effects=", ".join(effects),
        )))
    return rows


# ----------------------------------------------------------------------------------
# The cache: build, verify, repair.

def corpus_root(cfg: CorpusConfig) -> Path:
    """Where the corpus for `cfg` lives: one finished sub-folder per split."""
    return cache_dir() / "corpus" / cfg.key()


def build_corpus(cfg: CorpusConfig | None = None, splits: tuple[str, ...] = SPLITS,
                 workers: int | None = None, progress: bool = True) -> Corpus:
    """Return the cached corpus for `cfg`, generating missing splits first (chapter 1).

    Each split is written into `.<split>.partial/` and the folder is renamed to
    `<split>/` only when every chunk and the manifest are written, so a half-written
    cache is never taken for a finished one. Chunks finished before an interruption
    are kept and reused by the next call. Only the requested splits are built: a
    chapter that only evaluates needs the test split (about 20 s), not train.
    """
    cfg = cfg or EXAMPLE.corpus
    root = corpus_root(cfg)
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if not (root / split / "split.json").exists():
            _build_split(cfg, split, root, workers, progress)
    if not (root / "config.json").exists():  # written once; the key fixes its content
        atomic_write_json(root / "config.json", asdict(cfg))
    return open_corpus(root)


def _build_split(cfg: CorpusConfig, split: str, root: Path, workers: int | None,
                 progress: bool) -> None:
    import time

    from tqdm.auto import tqdm

    partial = root / f".{split}.partial"
    (partial / "chunks").mkdir(parents=True, exist_ok=True)
    plans = [p for p in plan_corpus(cfg) if p["split"] == split]
    chunks = [plans[i:i + cfg.chunk_size] for i in range(0, len(plans), cfg.chunk_size)]
    todo = [i for i in range(len(chunks))
            if not (partial / "chunks" / f"{i:04d}.json").exists()]
    workers = min(workers or mp.cpu_count(), 2, max(len(todo), 1))
    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")  # a fresh process per chunk: see module docstring
    with ctx.Pool(workers, maxtasksperchild=1) as pool, \
            tqdm(total=len(chunks), initial=len(chunks) - len(todo),
                 desc=f"synthesizing {split} ({len(plans)} utterances)",
                 unit="chunk", disable=not progress) as bar:
        jobs = [(chunks[i], str(partial), cfg.sample_rate) for i in todo]
        for i, rows in zip(todo, pool.imap(_render_chunk, jobs)):
            atomic_write_json(partial / "chunks" / f"{i:04d}.json", rows)
            bar.update(1)
    rows = []
    for i in range(len(chunks)):
        rows += json.loads((partial / "chunks" / f"{i:04d}.json").read_text())
    manifest = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    (partial / "manifest.jsonl").write_text(manifest)
    hours = sum(r["num_samples"] for r in rows) / cfg.sample_rate / 3600
    atomic_write_json(partial / "split.json", dict(
        split=split, key=cfg.key(), count=len(rows), hours=round(hours, 3),
        manifest_sha256=sha256_bytes(manifest.encode()),
        generation_seconds=round(time.perf_counter() - t0, 1)))
    if (root / split).exists():  # an unfinished folder from an older layout
        shutil.rmtree(root / split)
    partial.rename(root / split)  # atomic: the split appears finished or not at all


def _tuples(value):
    """JSON lists back to the tuples a `CorpusConfig` holds (nested ones too)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def open_corpus(root: str | Path) -> Corpus:
    """Open a corpus folder and its finished splits, checking each manifest."""
    root = Path(root)
    try:
        raw = json.loads((root / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{root / 'config.json'}: missing or corrupt ({exc}); "
                         "call build_corpus() to regenerate") from exc
    cfg = CorpusConfig(**{k: _tuples(v) for k, v in raw.items()})
    utts: list[Utterance] = []
    info: dict = {}
    for split in SPLITS:
        folder = root / split
        if not (folder / "split.json").exists():
            continue
        try:
            meta = json.loads((folder / "split.json").read_text())
            manifest = (folder / "manifest.jsonl").read_text()
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{folder}: corrupt corpus cache ({exc}); delete the "
                             "folder to regenerate it") from exc
        if sha256_bytes(manifest.encode()) != meta.get("manifest_sha256"):
            raise ValueError(f"{folder / 'manifest.jsonl'}: checksum mismatch; delete "
                             f"{folder} to regenerate this split")
        utts += [Utterance(**json.loads(line)) for line in manifest.splitlines()]
        info[split] = meta
    return Corpus(root=root, config=cfg, utterances=utts, info=info)


def verify_corpus(corpus: Corpus, progress: bool = True) -> list[str]:
    """Check every file against its checksum; return the ids of bad utterances."""
    from tqdm.auto import tqdm

    bad = []
    for u in tqdm(corpus.utterances, desc="verifying", disable=not progress):
        try:
            corpus.audio(u)
        except AudioError:
            bad.append(u.id)
    return bad


def repair_corpus(corpus: Corpus, progress: bool = True) -> list[str]:
    """Re-synthesize the chunks that hold damaged files (same bytes: deterministic)."""
    bad = set(verify_corpus(corpus, progress))
    cfg = corpus.config
    want = {u.id: u.checksum for u in corpus.utterances}
    for split in SPLITS:
        plans = [p for p in plan_corpus(cfg) if p["split"] == split]
        for i in range(0, len(plans), cfg.chunk_size):
            chunk = plans[i:i + cfg.chunk_size]
            if not bad & {p["id"] for p in chunk}:
                continue
            # A fresh process, as in generation, so that the bytes come out the same.
            with mp.get_context("spawn").Pool(1) as pool:
                rows = pool.apply(_render_chunk, ((chunk, str(corpus.root / split),
                                                   cfg.sample_rate),))
            for r in rows:
                if r["checksum"] != want[r["id"]]:
                    raise RuntimeError(f"{r['id']}: regenerated audio differs from the "
                                       "manifest (library versions changed?)")
    return sorted(bad)


# ----------------------------------------------------------------------------------
# Real corpora in their standard folder layouts (torchaudio.datasets metadata).

def librispeech_utterances(root: str | Path, subset: str = "dev-clean") -> list[dict]:
    """List a LibriSpeech subset (`root/LibriSpeech/<subset>/...`) as manifest rows."""
    from torchaudio.datasets import LIBRISPEECH

    ds = LIBRISPEECH(str(root), url=subset, download=False)
    rows = []
    for n in range(len(ds)):
        rel, sr, text, spk, chapter, utt = ds.get_metadata(n)
        # get_metadata's path is relative to root/LibriSpeech (folder_in_archive).
        rows.append(dict(id=f"{spk}-{chapter}-{utt:04d}",
                         path=str(Path(root) / "LibriSpeech" / rel),
                         text=normalize(text), speaker=str(spk), sample_rate=sr))
    return rows


def speech_commands_utterances(root: str | Path, subset: str | None = None
                               ) -> list[dict]:
    """List Speech Commands (`root/SpeechCommands/speech_commands_v0.02/<w>/*.wav`)."""
    from torchaudio.datasets import SPEECHCOMMANDS

    ds = SPEECHCOMMANDS(str(root), download=False, subset=subset)
    rows = []
    for n in range(len(ds)):
        rel, sr, label, spk, k = ds.get_metadata(n)
        rows.append(dict(id=f"{label}-{spk}-{k}",
                         path=str(Path(root) / "SpeechCommands" / rel),
                         text=label.replace("_", " "), speaker=spk, sample_rate=sr))
    return rows

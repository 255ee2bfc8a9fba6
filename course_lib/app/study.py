"""The running example v3's design study: arms trained for equal wall time (issue 40).

Each arm is a config value (model, recipe, corpus, real speakers); `run_arm` picks its
epoch count from a short timing probe so that every arm trains for about the same
wall time, trains it with `core.training.train` (checkpoints, resume), and scores
it on the same utterances: all 800 dev utterances, 400 of its own training
utterances (does it fit its data?) and every real speaker. The result, per-epoch dev
WER and every hypothesis included (so that two arms can be compared by the paired
bootstrap), is written to `studies/v3/<arm>.json`, which the project commits.

    python -m course_lib study size-2.6M            # one arm (resumes if cut)
    python -m course_lib study --table              # the table of finished arms
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ..core.batching import Example, featurize, length_batches
from ..core.corpus.build import CORPUS_V2, CorpusConfig, build_corpus
from ..core.example import EXAMPLES
from ..core.corpus.real import SPEAKERS, TRAINABLE_SPEAKERS, UNSEEN_SPEAKER
from ..core.evaluation import real_examples
from ..core.inference import transcribe
from ..core.losses import ctc_loss
from ..core.metrics import score
from ..core.model import CTCModel, ModelConfig, count_params
from ..core.training import TrainConfig, machine, train, train_step
from ..core.utils import atomic_write_json, cache_dir, config_hash

STUDY_DIR = Path(__file__).resolve().parents[2] / "studies" / "v3"
V2_MODEL = EXAMPLES["v2"].model  # the running example v2's design (1.2 M)
V2_TRAIN = TrainConfig(specaugment=False, threads=1)  # its recipe; epochs: the probe


@dataclass(frozen=True)
class Arm:
    """One configuration of the study: trained for about `minutes` of wall time."""

    name: str
    model: ModelConfig = V2_MODEL
    train: TrainConfig = V2_TRAIN
    corpus: CorpusConfig = CORPUS_V2
    real: tuple[str, ...] = TRAINABLE_SPEAKERS
    minutes: float = 60.0
    note: str = ""
    real_perturb: tuple[str, ...] = ()  # perturbed copies of the real recordings

    def key(self) -> str:
        """Hash of everything the arm's result depends on (its name excluded)."""
        d = asdict(self)
        d.pop("name")
        d.pop("note")
        if not self.real_perturb:  # (left out, so that earlier arms keep their key)
            d.pop("real_perturb")
        d["corpus"] = self.corpus.key()
        return config_hash(d)


ARMS = {a.name: a for a in (
    Arm("size-1.2M", note="v2's design: conv 256, 3 x BiGRU 144, 20 ms frames"),
    Arm("size-2.6M", replace(V2_MODEL, rnn_hidden=224),
        note="3 x BiGRU 224"),
    Arm("size-5.1M", replace(V2_MODEL, rnn_hidden=320, conv_channels=320),
        note="conv 320, 3 x BiGRU 320"),
    # The levers for the unseen real speaker, each against size-1.2M (same time):
    Arm("real-two-speakers", real=("jackson", "george"),
        note="control: without lucas, v2's two real speakers"),
    Arm("real-perturbed", real_perturb=("speed:0.9", "speed:1.1", "warp:0.9",
                                        "warp:1.1"),
        note="four new speakers per real recording: speed and mel warping"),
    Arm("real-pitch", real_perturb=("pitch:-2", "pitch:2"),
        note="two pitch-shifted copies per real recording"),
    Arm("real-channel", real_perturb=("bits:8", "mulaw"),
        note="8-bit linear and mu-law copies of each real recording"),
)}


def probe_seconds_per_step(model_cfg: ModelConfig, cfg: TrainConfig,
                           examples: list[Example], steps: int = 12) -> float:
    """Seconds per training step of `model_cfg`, timed on random batches."""
    torch.set_num_threads(cfg.threads)
    model = CTCModel(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    gen = torch.Generator().manual_seed(0)
    batches = length_batches([e.feats.shape[0] for e in examples], cfg.batch_size,
                             shuffle=True, seed=0)
    batches = random.Random(0).sample(batches, steps + 2)
    seconds = []
    for idx in batches:
        t0 = time.perf_counter()
        train_step(model, [examples[i] for i in idx], ctc_loss, opt, sched,
                   list(model.parameters()), cfg, gen)
        seconds.append(time.perf_counter() - t0)
    return sum(seconds[2:]) / steps  # the first two warm the kernels up


REFERENCE = "size-1.2M"  # the arm whose planned time every other arm matches


def _plan_path(arm: Arm, out_dir: Path = STUDY_DIR) -> Path:
    """Where an arm's plan is kept: beside the results, committed with them, so that
    an arm run in a later session (on another machine) matches the same plan."""
    return Path(out_dir) / "plans" / f"{arm.name}-{arm.key()}.json"


def plan_epochs(arm: Arm, train_ex: list[Example], out_dir: Path = STUDY_DIR) -> dict:
    """The epochs that give `arm` about `arm.minutes` of training: its plan.

    The reference arm (`REFERENCE`) is timed by a probe. Every other arm matches the
    reference's planned time: with the same model and recipe, by its steps alone (the
    same step time); with another model, by the ratio of the two step times measured
    side by side now, alternated, on the same batches (a ratio holds under any load,
    where a second probe would time the machine's load too).
    """
    ref = ARMS[REFERENCE]
    total = train_ex + real_examples(arm.real, perturb=arm.real_perturb)
    steps = math.ceil(len(total) / arm.train.batch_size)
    if arm.name == ref.name or not _plan_path(ref, out_dir).exists():
        per_step = probe_seconds_per_step(arm.model, arm.train, total)
        how = "probe"
    else:
        ref_plan = json.loads(_plan_path(ref, out_dir).read_text())
        per_step, how = ref_plan["seconds_per_step"], f"as {ref.name}: same model"
        if (arm.model, arm.train) != (ref.model, ref.train):
            sample = train_ex[:3000] + real_examples(arm.real)
            times: dict[str, list[float]] = {ref.name: [], arm.name: []}
            for a in (ref, arm, ref, arm):
                times[a.name].append(probe_seconds_per_step(a.model, a.train, sample))
            ratio = sum(times[arm.name]) / sum(times[ref.name])
            per_step *= ratio
            how = (f"{ref.name}'s step time x {ratio:.3f}, the ratio of the two "
                   f"measured side by side ({times})")
    epochs = max(1, round(60 * arm.minutes / (per_step * steps)))
    return dict(seconds_per_step=per_step, steps=steps, epochs=epochs, how=how)


def _scored(model: torch.nn.Module, examples: list[Example]) -> dict:
    """Greedy WER with its 95 % interval, and the hypotheses, on `examples`."""
    refs = [e.text for e in examples]
    hyps = transcribe(model, examples)
    wer, (lo, hi) = score(refs, hyps)
    return dict(wer=wer, lo=lo, hi=hi, n=len(refs), ids=[e.id for e in examples],
                hyps=hyps)


def run_arm(arm: Arm, out_dir: Path = STUDY_DIR, progress: bool = True) -> dict:
    """Train `arm` for about `arm.minutes` (resuming if cut) and score it; its result,
    also written to `out_dir/<name>.json`."""
    if UNSEEN_SPEAKER in arm.real:
        raise ValueError(f"{UNSEEN_SPEAKER} is the unseen real speaker: never train "
                         "on it")
    plan = _plan_path(arm, out_dir)
    run_dir = cache_dir() / "study" / f"{arm.name}-{arm.key()}"
    corpus = build_corpus(arm.corpus, progress=progress)
    train_ex = featurize(corpus, "train", progress=progress)
    if not plan.exists():  # planned once; a resume (or a later session) reuses it
        atomic_write_json(plan, plan_epochs(arm, train_ex, out_dir))
    planned = json.loads(plan.read_text())
    epochs = planned["epochs"]
    cfg = replace(arm.train, epochs=epochs)
    result = train(run_dir, arm.corpus, arm.model, cfg, progress=progress,
                   real_speakers=arm.real, real_perturb=arm.real_perturb)
    model = result.model.eval()
    torch.set_num_threads(arm.train.threads)
    out = dict(arm=arm.name, note=arm.note, key=arm.key(),
               params=count_params(model), epochs=epochs,
               plan=planned,
               train_seconds=result.seconds, history=result.history,
               config=json.loads(json.dumps(asdict(arm), default=str)),
               machine=f"{machine(arm.train.threads)}, torch {torch.__version__}",
               dev=_scored(model, featurize(corpus, "dev", progress=False)),
               train_fit=_scored(model, train_ex[:400]),
               real={s: _scored(model, real_examples((s,))) for s in SPEAKERS})
    atomic_write_json(Path(out_dir) / f"{arm.name}.json", out)
    return out


def table(out_dir: Path = STUDY_DIR) -> str:
    """The finished arms, one line each: size, epochs, time, WERs (percent)."""
    lines = [f"{'arm':<14}{'params':>10}{'epochs':>7}{'min':>6}{'dev':>7}"
             f"{'fit':>7}" + "".join(f"{s:>9}" for s in SPEAKERS)]
    for path in sorted(Path(out_dir).glob("*.json")):  # (not plans/)
        r = json.loads(path.read_text())
        lines.append(f"{r['arm']:<14}{r['params']:>10,}{r['epochs']:>7}"
                     f"{r['train_seconds'] / 60:>6.0f}{100 * r['dev']['wer']:>7.1f}"
                     f"{100 * r['train_fit']['wer']:>7.1f}"
                     + "".join(f"{100 * r['real'][s]['wer']:>9.1f}" for s in SPEAKERS))
    return "\n".join(lines)


__all__ = ["ARMS", "Arm", "run_arm", "table", "probe_seconds_per_step"]

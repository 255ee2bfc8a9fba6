"""Training the CTC model: batching, SpecAugment, checkpoints, resume, DDP (chapter 1).

`train(...)` runs the whole recipe with a progress bar. It saves a checkpoint after
every epoch and resumes from it when called again, and it runs unchanged under
`torchrun` with DistributedDataParallel (gloo on CPU): each process takes its own
share of every epoch's batches and rank 0 writes the files.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torchaudio

from .data import Corpus, CorpusConfig, build_corpus
from .decode import greedy_decode
from .features import FeatureConfig, log_mel
from .models import CTCModel, ModelConfig, save_model
from .text import encode
from .utils import atomic_write_bytes, atomic_write_json, config_hash, seed_everything


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; `max_minutes` caps the wall-clock time."""

    epochs: int = 8
    batch_size: int = 32
    lr: float = 3e-3
    warmup: float = 0.05  # fraction of the steps spent warming up the learning rate
    weight_decay: float = 1e-2
    grad_clip: float = 5.0
    seed: int = 0
    sortagrad: bool = True
    specaugment: bool = True
    freq_mask: int = 10  # SpecAugment: up to 10 of 80 mel bands, twice
    time_mask: int = 20  # and up to 20 frames (200 ms), twice
    max_minutes: float | None = None
    threads: int = 2


@dataclass(frozen=True)
class FinetuneConfig:
    """A short training run that starts from a trained model (chapters 3.1-3.4)."""

    steps: int = 600
    batch_size: int = 32
    lr: float = 1e-3  # peak; cosine decay to zero over `steps`
    warmup: float = 0.0  # fraction of the steps spent warming up
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    seed: int = 0
    specaugment: bool = True
    freq_mask: int = 10
    time_mask: int = 20
    threads: int = 2


# ----------------------------------------------------------------------------------
# Data: features in memory, batches of similar length.

@dataclass
class Example:
    """One featurized utterance."""

    id: str
    text: str
    feats: torch.Tensor  # (frames, n_mels)
    targets: list[int]


_FEATURE_CACHE: dict[tuple, list[Example]] = {}


def featurize(corpus: Corpus, split: str, feat_cfg: FeatureConfig = FeatureConfig(),
              limit: int | None = None, progress: bool = True) -> list[Example]:
    """Load and featurize a split (kept in memory for the rest of the session)."""
    from tqdm.auto import tqdm

    key = (str(corpus.root), split, feat_cfg, limit)
    if key not in _FEATURE_CACHE:
        utts = corpus.split(split)
        if not utts:
            raise ValueError(f"split {split!r} is not built; call "
                             f"build_corpus(cfg, splits=({split!r},)) first")
        utts = utts[:limit] if limit else utts
        _FEATURE_CACHE[key] = [
            Example(u.id, u.text, log_mel(corpus.audio(u), feat_cfg), encode(u.text))
            for u in tqdm(utts, desc=f"features ({split})", disable=not progress)]
    return _FEATURE_CACHE[key]


def collate(examples: list[Example]) -> dict:
    """Pad a list of examples into a batch: feats (B, T, F), lengths (B,), targets."""
    lengths = torch.tensor([e.feats.shape[0] for e in examples])
    feats = torch.zeros(len(examples), int(lengths.max()), examples[0].feats.shape[1])
    for i, e in enumerate(examples):
        feats[i, : e.feats.shape[0]] = e.feats
    targets = torch.tensor([t for e in examples for t in e.targets])
    target_lengths = torch.tensor([len(e.targets) for e in examples])
    return dict(feats=feats, lengths=lengths, targets=targets,
                target_lengths=target_lengths, texts=[e.text for e in examples])


def length_batches(lengths: list[int], batch_size: int, shuffle: bool = False,
                   seed: int = 0) -> list[list[int]]:
    """Index batches of similar length (less padding, faster); shuffled if asked."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        random.Random(seed).shuffle(batches)
    return batches


def spec_augment(feats: torch.Tensor, cfg: TrainConfig | FinetuneConfig,
                 gen: torch.Generator) -> torch.Tensor:
    """SpecAugment on one utterance (frames, n_mels): two frequency, two time masks."""
    x = feats.t().clone()  # (n_mels, frames), torchaudio's layout
    fill = x.mean()
    for size, axis in ((cfg.freq_mask, 0), (cfg.time_mask, 1)):
        for _ in range(2):
            width = int(torch.randint(0, size + 1, (1,), generator=gen))
            width = min(width, x.shape[axis] // 5 if axis == 1 else width)
            start = int(torch.randint(0, max(x.shape[axis] - width, 1), (1,),
                                      generator=gen))
            if axis == 0:
                x[start:start + width, :] = fill
            else:
                x[:, start:start + width] = fill
    return x.t()


# ----------------------------------------------------------------------------------
# Inference.

@torch.no_grad()
def transcribe(model: CTCModel, examples: list[Example], batch_size: int = 64
               ) -> list[str]:
    """Greedy transcripts for `examples`, in their order (batched by length)."""
    model.eval()
    hyps: list[str] = [""] * len(examples)
    for idx in length_batches([e.feats.shape[0] for e in examples], batch_size):
        batch = collate([examples[i] for i in idx])
        log_probs, out_lengths = model(batch["feats"], batch["lengths"])
        for i, text in zip(idx, greedy_decode(log_probs, out_lengths)):
            hyps[i] = text
    return hyps


@torch.no_grad()
def recognize(model: torch.nn.Module, wav: torch.Tensor,
              feat_cfg: FeatureConfig = FeatureConfig()) -> str:
    """Waveform (samples,) -> transcript: features, model, greedy decoding."""
    feats = log_mel(wav, feat_cfg)[None]  # (1, frames, n_mels)
    log_probs, lengths = model(feats, torch.tensor([feats.shape[1]]))
    return greedy_decode(log_probs, lengths)[0]


# ----------------------------------------------------------------------------------
# Training.

def ctc_loss(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """The CTC loss of a collated batch, averaged over target lengths (chapter 1)."""
    log_probs, out_len = model(batch["feats"], batch["lengths"])
    # CTCLoss wants (T, B, V).
    return torch.nn.functional.ctc_loss(
        log_probs.transpose(0, 1), batch["targets"], out_len, batch["target_lengths"],
        blank=0, reduction="mean", zero_infinity=True)


def _no_report(planned: int, done: int) -> None:
    """Where fine-tuning reports its steps when no other process listens."""


# Set in the worker processes of `parallel.run_cached`: report(planned, done) sends
# fine-tuning steps to the parent process, which draws one progress bar for them all.
_STEP_REPORT: Callable[[int, int], None] = _no_report


def report_steps_to(report: Callable[[int, int], None] | None) -> None:
    """Call `report(planned, done)` as fine-tuning plans and makes steps (ch. 3.1)."""
    global _STEP_REPORT
    _STEP_REPORT = report or _no_report


def finetune(model: torch.nn.Module, examples: list[Example],
             cfg: FinetuneConfig = FinetuneConfig(),
             loss_fn: Callable[[torch.nn.Module, dict], torch.Tensor] = ctc_loss,
             after_step: Callable[[int], None] | None = None,
             evaluate: Callable[[int], dict] | None = None, eval_every: int = 0,
             progress: bool = True, desc: str = "fine-tune") -> list[dict]:
    """Train an existing model for `cfg.steps` steps in place (chapters 3.1-3.4).

    Batches of similar length are drawn in a fresh shuffled order each pass over
    `examples`; the learning rate warms up, then follows a cosine to zero.
    `after_step(step)` runs after every optimizer step (pruning re-applies its masks
    there, so pruned weights stay zero), `loss_fn(model, batch)` replaces the CTC
    loss (distillation). Every `eval_every` steps and at the end a history entry
    (step, mean loss) is written, with `evaluate(step)`'s dict (model in eval mode).
    """
    from tqdm.auto import tqdm

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(int(cfg.warmup * cfg.steps), 0)

    def lr_at(step: int) -> float:  # multiplier of cfg.lr at `step` (0-based)
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(cfg.steps - warm, 1)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    lengths = [e.feats.shape[0] for e in examples]
    order: list[list[int]] = []
    history: list[dict] = []
    losses: list[float] = []
    bar = tqdm(range(cfg.steps), desc=desc, disable=not progress, leave=False)
    _STEP_REPORT(cfg.steps, 0)
    for step in bar:
        if not order:  # a new pass over the data, in a new order
            order = length_batches(lengths, cfg.batch_size, shuffle=True,
                                   seed=cfg.seed * 7919 + step)
        model.train()
        exs = [examples[i] for i in order.pop()]
        if cfg.specaugment:
            exs = [Example(e.id, e.text, spec_augment(e.feats, cfg, gen), e.targets)
                   for e in exs]
        loss = loss_fn(model, collate(exs))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        if after_step is not None:
            after_step(step)
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
        _STEP_REPORT(0, 1)
        if (eval_every and (step + 1) % eval_every == 0) or step + 1 == cfg.steps:
            entry = dict(step=step + 1, loss=sum(losses) / len(losses))
            if evaluate is not None:
                model.eval()
                entry.update(evaluate(step + 1))
            history.append(entry)
            losses = []
    model.eval()
    return history


@dataclass
class TrainResult:
    """What `train` returns: the model, its history and where it was written."""

    model: CTCModel
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    path: Path | None = None


def _distributed() -> tuple[int, int]:
    """(rank, world size); initialises gloo when launched by torchrun."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        if not dist.is_initialized():
            dist.init_process_group("gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def train(out_dir: str | os.PathLike, corpus_cfg: CorpusConfig = CorpusConfig(),
          model_cfg: ModelConfig = ModelConfig(), cfg: TrainConfig = TrainConfig(),
          train_limit: int | None = None, eval_limit: int | None = 300,
          progress: bool = True) -> TrainResult:
    """Train a CTC model from scratch (or resume) and save it as `model.safetensors`.

    `out_dir/checkpoint.pt` holds the latest epoch (model, optimizer, scheduler,
    history) and is loaded with `weights_only=True`; calling `train` again with the
    same arguments resumes after the last finished epoch.
    """
    from tqdm.auto import tqdm

    rank, world = _distributed()
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    out = Path(out_dir)
    if rank == 0:  # one process synthesizes a missing corpus; the others wait
        corpus = build_corpus(corpus_cfg, splits=("train", "dev"), progress=progress)
    if world > 1:
        dist.barrier()
    if rank != 0:
        corpus = build_corpus(corpus_cfg, splits=("train", "dev"), progress=False)
    train_ex = featurize(corpus, "train", limit=train_limit,
                         progress=progress and rank == 0)
    dev_ex = featurize(corpus, "dev", limit=eval_limit, progress=progress and rank == 0)

    model = CTCModel(model_cfg)
    # Every process takes the same number of batches (DDP needs them in step).
    steps_per_epoch = max(math.ceil(len(train_ex) / cfg.batch_size) // world, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
        pct_start=cfg.warmup, div_factor=10.0)
    history: list[dict] = []
    start_epoch, elapsed = 0, 0.0
    ckpt = out / "checkpoint.pt"
    run_key = config_hash(dict(corpus=corpus_cfg.key(), model=asdict(model_cfg),
                               train=asdict(cfg), limit=train_limit, world=world))
    if ckpt.exists():  # resume
        state = torch.load(ckpt, weights_only=True)
        if state.get("run_key") != run_key:
            raise ValueError(f"{ckpt}: checkpoint of a different run (key "
                             f"{state.get('run_key')} != {run_key}); use another "
                             "out_dir or delete it")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history = json.loads(state["history"])
        start_epoch, elapsed = int(state["epoch"]), float(state["seconds"])
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    lengths = [e.feats.shape[0] for e in train_ex]
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        torch.manual_seed(cfg.seed * 1000 + epoch * world + rank)  # exact resume
        # SortaGrad (Amodei et al., 2016): the first epoch goes from short to long
        # utterances, which gets CTC out of its all-blank start sooner.
        batches = length_batches(lengths, cfg.batch_size,
                                 shuffle=not (cfg.sortagrad and epoch == 0),
                                 seed=cfg.seed * 1000 + epoch)
        batches = batches[rank::world][:steps_per_epoch]
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch * world + rank)
        total, bar = 0.0, tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                               disable=not progress or rank != 0, leave=False)
        for idx in bar:
            exs = [train_ex[i] for i in idx]
            if cfg.specaugment:
                exs = [Example(e.id, e.text, spec_augment(e.feats, cfg, gen), e.targets)
                       for e in exs]
            b = collate(exs)
            loss = ctc_loss(net, b)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            total += loss.item()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        elapsed += time.perf_counter() - t0
        record = dict(epoch=epoch + 1, loss=total / max(len(batches), 1),
                      seconds=round(elapsed, 1))
        if rank == 0:
            from .metrics import error_rates

            hyps = transcribe(model, dev_ex)
            record.update(error_rates([e.text for e in dev_ex], hyps))
            history.append(record)
            state = dict(model=model.state_dict(), optimizer=opt.state_dict(),
                         scheduler=sched.state_dict(), history=json.dumps(history),
                         epoch=epoch + 1, seconds=elapsed, run_key=run_key)
            out.mkdir(parents=True, exist_ok=True)
            tmp = out / ".checkpoint.pt.tmp"
            torch.save(state, tmp)
            os.replace(tmp, ckpt)  # atomic
            if progress:
                print(f"epoch {epoch + 1}: loss {record['loss']:.3f}  dev WER "
                      f"{100 * record['wer']:.2f}%  CER {100 * record['cer']:.2f}%  "
                      f"({elapsed:.0f} s)", flush=True)
        stop = torch.tensor([cfg.max_minutes is not None
                             and elapsed > 60 * cfg.max_minutes])
        if world > 1:
            dist.broadcast(stop, src=0)  # rank 0's clock decides for everyone
        if bool(stop):
            break
    result = TrainResult(model=model.eval(), history=history, seconds=elapsed)
    if rank == 0:
        result.path = save_model(
            model, out / "model.safetensors", corpus_key=corpus_cfg.key(),
            corpus_config=asdict(corpus_cfg), train_config=asdict(cfg),
            history=history, train_seconds=round(elapsed, 1), world_size=world,
            train_limit=train_limit, torch_version=torch.__version__,
            torchaudio_version=torchaudio.__version__)
    if world > 1:
        dist.barrier()
    return result

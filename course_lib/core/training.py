"""Training the CTC model: batching, SpecAugment, checkpoints, resume, DDP (chapter 1).

`train(...)` runs the whole recipe with a progress bar. It saves a checkpoint after
every epoch and resumes from it when called again, and it runs unchanged under
`torchrun` with DistributedDataParallel (gloo on CPU): each process takes its own
share of every epoch's batches and rank 0 writes the files.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torchaudio
from tqdm.auto import tqdm

from .batching import Example, collate, featurize, length_batches, spec_augment
from .corpus.build import CorpusConfig, build_corpus
from .corpus.real import UNSEEN_SPEAKER
from .evaluation import real_examples
from .inference import transcribe
from .losses import ctc_loss
from .metrics import error_rates, paired_wer
from .model import CTCModel, ModelConfig
from .modelfile import save_model
from .recipe import FinetuneConfig, TrainConfig
from .utils import config_hash, seed_everything


# ----------------------------------------------------------------------------------
# Training.

LossFn = Callable[[torch.nn.Module, dict], torch.Tensor]  # (model, batch) -> loss


def _no_report(planned: int, done: int) -> None:
    """Where fine-tuning reports its steps when no other process listens."""


# Set in the worker processes of `parallel.run_cached`: report(planned, done) sends
# fine-tuning steps to the parent process, which draws one progress bar for them all.
_STEP_REPORT: Callable[[int, int], None] = _no_report


def report_steps_to(report: Callable[[int, int], None] | None) -> None:
    """Call `report(planned, done)` as fine-tuning plans and makes steps (ch. 3.1)."""
    global _STEP_REPORT
    _STEP_REPORT = report or _no_report


def train_step(model: torch.nn.Module, examples: list[Example], loss_fn: LossFn,
               opt: torch.optim.Optimizer, sched, params: list[torch.nn.Parameter],
               cfg: TrainConfig | FinetuneConfig, gen: torch.Generator) -> float:
    """One optimizer step on one batch: SpecAugment (if `cfg.specaugment`), the loss,
    backward, gradient clipping, the optimizer and the scheduler; returns the loss."""
    if cfg.specaugment:  # (a new id: these are not the features a cache holds)
        examples = [Example(f"{e.id}+specaugment", e.text,
                            spec_augment(e.feats, cfg, gen), e.targets)
                    for e in examples]
    loss = loss_fn(model, collate(examples))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    opt.step()
    sched.step()
    return loss.item()


def _save_checkpoint(path: Path, state: dict) -> None:
    """Write a training state atomically: a crash mid-write leaves the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _resume(path: Path, run_key: str, what: str, model: torch.nn.Module,
            opt: torch.optim.Optimizer, sched) -> dict:
    """Load a checkpoint of this run (`run_key`) into model, optimizer, schedule."""
    state = torch.load(path, weights_only=True)
    if state.get("run_key") != run_key:
        raise ValueError(f"{path}: checkpoint of a different {what} (key "
                         f"{state.get('run_key')} != {run_key}); delete it or use "
                         "another folder")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    return state


def finetune(model: torch.nn.Module, examples: list[Example],
             cfg: FinetuneConfig = FinetuneConfig(),
             loss_fn: LossFn = ctc_loss,
             after_step: Callable[[int], None] | None = None,
             evaluate: Callable[[int], dict] | None = None, eval_every: int = 0,
             progress: bool = True, desc: str = "fine-tune",
             checkpoint: Path | None = None, save_every: int = 250) -> list[dict]:
    """Train an existing model for `cfg.steps` steps in place (chapters 3.1-3.4).

    Batches of similar length are drawn in a fresh shuffled order each pass over
    `examples`; the learning rate warms up, then follows a cosine to zero.
    `after_step(step)` runs after every optimizer step (pruning re-applies its masks
    there, so pruned weights stay zero), `loss_fn(model, batch)` replaces the CTC
    loss (distillation). Every `eval_every` steps and at the end a history entry
    (step, mean loss) is written, with `evaluate(step)`'s dict (model in eval mode).
    With `checkpoint`, the whole state (model, optimizer, schedule, data order, random
    generators) is saved there every `save_every` steps, and a call with the same
    `cfg` resumes from it exactly: long runs (chapter 3.3's students) survive an
    interruption. The caller deletes the file when it has saved the result.
    """
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
    start, spent, run_key = 0, 0.0, config_hash(asdict(cfg))
    if checkpoint is not None and Path(checkpoint).exists():  # resume
        state = _resume(Path(checkpoint), run_key, "fine-tuning run", model, opt,
                        sched)
        order, losses, history = (json.loads(state[k])
                                  for k in ("order", "losses", "history"))
        torch.set_rng_state(state["rng"])  # dropout and the rest continue exactly
        gen.set_state(state["gen"])  # and so does SpecAugment
        start, spent = int(state["step"]), float(state["seconds"])
    t0 = time.perf_counter() - spent  # the checkpoint's seconds count too
    bar = tqdm(range(start, cfg.steps), desc=desc, disable=not progress,
               leave=False, initial=start, total=cfg.steps)
    _STEP_REPORT(cfg.steps - start, 0)
    for step in bar:
        if not order:  # a new pass over the data, in a new order
            order = length_batches(lengths, cfg.batch_size, shuffle=True,
                                   seed=cfg.seed * 7919 + step)
        model.train()
        loss = train_step(model, [examples[i] for i in order.pop()], loss_fn, opt,
                          sched, params, cfg, gen)
        if after_step is not None:
            after_step(step)
        losses.append(loss)
        bar.set_postfix(loss=f"{loss:.3f}")
        _STEP_REPORT(0, 1)
        if (eval_every and (step + 1) % eval_every == 0) or step + 1 == cfg.steps:
            entry = dict(step=step + 1, loss=sum(losses) / len(losses))
            if evaluate is not None:
                model.eval()
                entry.update(evaluate(step + 1))
            history.append(entry)
            losses = []
        if checkpoint is not None and (step + 1) % save_every == 0:
            state = dict(model=model.state_dict(), optimizer=opt.state_dict(),
                         scheduler=sched.state_dict(), step=step + 1,
                         order=json.dumps(order), losses=json.dumps(losses),
                         history=json.dumps(history), rng=torch.get_rng_state(),
                         gen=gen.get_state(), run_key=run_key,
                         seconds=time.perf_counter() - t0)
            _save_checkpoint(Path(checkpoint), state)
    model.eval()
    return history


def checkpoint_seconds(checkpoint: Path | None) -> float:
    """Seconds of fine-tuning already spent in `checkpoint` (0 if there is none)."""
    if checkpoint is None or not Path(checkpoint).exists():
        return 0.0
    return float(torch.load(checkpoint, weights_only=True)["seconds"])


def finetune_control(model: torch.nn.Module, train_ex: list[Example],
                     dev_ex: list[Example], cfg: FinetuneConfig = FinetuneConfig(),
                     progress: bool = True) -> dict:
    """The dense control of chapter 3's fine-tuning: `cfg` run on an uncompressed
    copy of `model`, greedy dev WER before and after (chapters 3.1-3.4).

    Every compressed model is fine-tuned with a recipe like `cfg`; whatever it
    loses must be the compression's doing, not the recipe's. This run measures
    the recipe alone: `delta` (after - before, fractions) comes with its paired
    bootstrap interval (`paired_wer`). `model` itself is left unchanged.
    """
    refs = [e.text for e in dev_ex]
    before = transcribe(model, dev_ex)
    dense = copy.deepcopy(model)
    history = finetune(dense, train_ex, cfg, progress=progress, desc="dense control")
    after = transcribe(dense, dev_ex)
    delta = paired_wer(refs, after, before)
    return dict(before=error_rates(refs, before)["wer"],
                after=error_rates(refs, after)["wer"], delta=delta["delta"],
                lo=delta["lo"], hi=delta["hi"], steps=cfg.steps,
                loss=history[-1]["loss"], model=dense)


@dataclass
class TrainResult:
    """What `train` returns: the model, its history and where it was written."""

    model: CTCModel
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    path: Path | None = None


def machine(threads: int) -> str:
    """Where a run trained, as its files record it: processor and threads (ch. 1)."""
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu}, {threads} thread(s), {os.cpu_count()} cores"


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
          progress: bool = True, real_speakers: tuple[str, ...] = (),
          real_perturb: tuple[str, ...] = ()) -> TrainResult:
    """Train a CTC model from scratch (or resume) and save it as `model.safetensors`.

    `out_dir/checkpoint.pt` holds the latest epoch (model, optimizer, scheduler,
    history) and is loaded with `weights_only=True`; calling `train` again with the
    same arguments resumes after the last finished epoch. The real recordings of
    `real_speakers` (never the unseen real speaker) join the training utterances,
    with a perturbed copy of each per entry of `real_perturb` (`real_examples`).
    """
    if UNSEEN_SPEAKER in real_speakers:
        raise ValueError(f"{UNSEEN_SPEAKER} is the unseen real speaker: never train "
                         "on it")
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
    if real_speakers:  # a new list: the featurized split is shared
        train_ex = train_ex + real_examples(real_speakers, perturb=real_perturb)
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
    run = dict(corpus=corpus_cfg.key(), model=asdict(model_cfg), train=asdict(cfg),
               limit=train_limit, world=world)
    if real_speakers:  # (absent otherwise, so that earlier checkpoints still resume)
        run["real"] = list(real_speakers)
    if real_perturb:
        run["real_perturb"] = list(real_perturb)
    run_key = config_hash(run)
    if ckpt.exists():  # resume
        state = _resume(ckpt, run_key, "run", model, opt, sched)
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
            loss = train_step(net, [train_ex[i] for i in idx], ctc_loss, opt, sched,
                              list(model.parameters()), cfg, gen)
            total += loss
            bar.set_postfix(loss=f"{loss:.3f}")
        elapsed += time.perf_counter() - t0
        record = dict(epoch=epoch + 1, loss=total / max(len(batches), 1),
                      seconds=round(elapsed, 1))
        if rank == 0:
            hyps = transcribe(model, dev_ex)
            record.update(error_rates([e.text for e in dev_ex], hyps))
            history.append(record)
            state = dict(model=model.state_dict(), optimizer=opt.state_dict(),
                         scheduler=sched.state_dict(), history=json.dumps(history),
                         epoch=epoch + 1, seconds=elapsed, run_key=run_key)
            _save_checkpoint(ckpt, state)
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
            train_limit=train_limit, trained_on=machine(cfg.threads),
            torch_version=torch.__version__,
            torchaudio_version=torchaudio.__version__,
            **({"real_speakers": list(real_speakers)} if real_speakers else {}),
            **({"real_perturb": list(real_perturb)} if real_perturb else {}))
    if world > 1:
        dist.barrier()
    return result

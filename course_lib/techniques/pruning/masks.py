"""Weight pruning (权重裁剪): magnitude masks, the cubic schedule, fine-tuning (ch. 3.1).

Magnitude pruning keeps the weights of largest |w| and sets the others to zero:
W' = W ⊙ M, with the binary mask M_ij = 1 if |W_ij| >= T else 0 (element-wise, not a
matrix product). The threshold T is chosen per tensor ("layer-wise": every matrix
loses the same fraction) or once for all tensors ("global": a layer with many small
weights loses more). Gradual pruning raises the sparsity along the cubic schedule
of Zhu and Gupta (2017) while fine-tuning, so the network can adapt.

Only weight matrices and convolution kernels are pruned ("prunable" weights):
biases and normalization parameters are few and every one of them matters.
The sparse files that really are smaller live in `sparse_io`; the trained results
(the long run the package ships) in `course_lib.zoo.pruned`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from ...core.batching import Example
from ...core.losses import DistillLoss, ctc_loss
from ...core.metrics import interleaved_ms, one_thread
from ...core.model import weight_matrices
from ...core.training import FinetuneConfig, finetune

Masks = dict[str, torch.Tensor]  # parameter name -> bool tensor, True = kept


def prunable(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights that pruning acts on: the weight matrices (2 or more dims)."""
    return weight_matrices(model)


def _n_pruned(numel: int, sparsity: float) -> int:
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    return int(round(sparsity * numel))  # as torch.nn.utils.prune counts


def magnitude_mask(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep-mask (True = kept) that zeroes the `sparsity` fraction of smallest |w|.

    Exactly round(sparsity * numel) entries are pruned; among equal magnitudes the
    one with the lower flat index goes first, so ties are decided the same way
    every time.
    """
    k = _n_pruned(w.numel(), sparsity)
    keep = torch.ones(w.numel(), dtype=torch.bool)
    order = torch.argsort(w.detach().abs().flatten(), stable=True)  # smallest first
    keep[order[:k]] = False
    return keep.view_as(w)


def layerwise_masks(weights: dict[str, torch.Tensor], sparsity: float) -> Masks:
    """One threshold per tensor: every tensor loses the same fraction."""
    return {n: magnitude_mask(w, sparsity) for n, w in weights.items()}


def global_masks(weights: dict[str, torch.Tensor], sparsity: float) -> Masks:
    """One threshold for all tensors together: the smallest |w| anywhere go first."""
    flat = torch.cat([w.detach().flatten() for w in weights.values()])
    keep = magnitude_mask(flat, sparsity)
    out, i = {}, 0
    for n, w in weights.items():
        out[n] = keep[i:i + w.numel()].view_as(w)
        i += w.numel()
    return out


def threshold(weights: dict[str, torch.Tensor], masks: Masks) -> float:
    """The largest pruned magnitude: T such that pruned weights have |w| <= T."""
    pruned = [w.detach().abs()[~masks[n]] for n, w in weights.items()]
    pruned = torch.cat([p.flatten() for p in pruned])
    return float(pruned.max()) if pruned.numel() else 0.0


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Masks) -> None:
    """W <- W ⊙ M for every masked parameter (in place)."""
    params = dict(model.named_parameters())
    for n, m in masks.items():
        if params[n].shape != m.shape:
            raise ValueError(f"mask for {n} has shape {tuple(m.shape)}, parameter "
                             f"has {tuple(params[n].shape)}")
        params[n].mul_(m)


def sparsity_of(masks: Masks) -> float:
    """Fraction of masked-out entries over all masks together."""
    total = sum(m.numel() for m in masks.values())
    return sum(int((~m).sum()) for m in masks.values()) / max(total, 1)


def model_sparsity(model: nn.Module) -> float:
    """Fraction of exact zeros among the prunable weights of `model`."""
    ws = prunable(model).values()
    return sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)


def cubic_sparsity(step: int, s_i: float, s_f: float, t0: int, n: int, dt: int
                   ) -> float:
    """Zhu & Gupta (2017): s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3.

    The sparsity is updated only every `dt` steps, from step t0 to t0 + n dt;
    before t0 it is s_i (no pruning yet), after the ramp it stays at s_f.
    """
    if n <= 0 or dt <= 0:
        raise ValueError(f"need n > 0 and dt > 0, got n={n}, dt={dt}")
    if step < t0:
        return s_i
    t = t0 + min((step - t0) // dt, n) * dt  # the last pruning step so far
    return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3


@dataclass(frozen=True)
class PruneConfig:
    """How to prune: target, threshold scope, schedule and fine-tuning budget."""

    sparsity: float = 0.9  # final fraction of prunable weights set to zero
    scope: str = "global"  # "global" or "layer"
    schedule: str = "cubic"  # "cubic" (gradual) or "oneshot"
    initial: float = 0.0  # s_i of the cubic schedule
    ramp: float = 0.7  # fraction of the fine-tuning steps over which sparsity rises
    every: int = 10  # dt: steps between mask updates
    distill: float = 0.0  # weight α of the KL term to the dense model (chapter 3.3)
    temperature: float = 2.0  # of that KL term
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def __post_init__(self) -> None:
        if self.scope not in ("global", "layer"):
            raise ValueError(f"scope must be 'global' or 'layer', got {self.scope!r}")
        if self.schedule not in ("cubic", "oneshot"):
            raise ValueError(f"schedule must be 'cubic' or 'oneshot', got "
                             f"{self.schedule!r}")
        _n_pruned(1, self.sparsity)


def masks_for(model: nn.Module, sparsity: float, scope: str = "global") -> Masks:
    """Magnitude masks for the prunable weights of `model` at `sparsity`."""
    fn = global_masks if scope == "global" else layerwise_masks
    return fn({n: p.detach() for n, p in prunable(model).items()}, sparsity)


def prune_oneshot(model: nn.Module, sparsity: float, scope: str = "global") -> Masks:
    """Prune `model` in place to `sparsity` in one go, without training."""
    masks = masks_for(model, sparsity, scope)
    apply_masks(model, masks)
    return masks


def prune_finetune(model: nn.Module, examples: list[Example], cfg: PruneConfig,
                   evaluate: Callable[[int], dict] | None = None, eval_every: int = 0,
                   progress: bool = True
                   ) -> tuple[Masks, list[dict]]:
    """Prune while fine-tuning (in place); return the final masks and the history.

    "oneshot" prunes to the target before the first step; "cubic" starts dense and
    recomputes the masks every `cfg.every` steps along `cubic_sparsity`, reaching
    the target after `cfg.ramp` of the steps. Either way the masks are re-applied
    after every optimizer step, so a pruned weight stays exactly zero. With
    `cfg.distill` > 0 the dense model, as it was before pruning, is the teacher.
    """
    loss_fn = ctc_loss
    if cfg.distill > 0:
        loss_fn = DistillLoss(copy.deepcopy(model), cfg.distill, cfg.temperature)
    steps = cfg.finetune.steps
    n = max(math.floor(cfg.ramp * steps / cfg.every), 1)
    if cfg.schedule == "cubic" and n * cfg.every > steps:
        raise ValueError(f"the schedule needs {n * cfg.every} steps to reach the "
                         f"target but fine-tuning has {steps}; lower `every`")
    state = {"masks": masks_for(model, cfg.sparsity if cfg.schedule == "oneshot"
                                else cfg.initial, cfg.scope)}
    apply_masks(model, state["masks"])

    def after_step(step: int) -> None:
        apply_masks(model, state["masks"])  # the optimizer moved pruned weights
        if cfg.schedule == "cubic" and (step + 1) % cfg.every == 0:
            s = cubic_sparsity(step + 1, cfg.initial, cfg.sparsity, 0, n, cfg.every)
            # Pruned weights are zero, hence the smallest: the new mask only grows.
            state["masks"] = masks_for(model, s, cfg.scope)
            apply_masks(model, state["masks"])

    def evaluate_with_sparsity(step: int) -> dict:
        out = dict(sparsity=sparsity_of(state["masks"]))
        if evaluate is not None:
            out.update(evaluate(step))
        return out

    history = finetune(model, examples, cfg.finetune, loss_fn, after_step=after_step,
                       evaluate=evaluate_with_sparsity, eval_every=eval_every,
                       progress=progress, desc=f"{cfg.schedule} pruning")
    return state["masks"], history


# ----------------------------------------------------------------------------------
# Measurements of chapter 3.1.

def sensitivity_scan(model: nn.Module, evaluate: Callable[[nn.Module], float],
                     sparsities: list[float], names: list[str] | None = None,
                     progress: bool = True) -> dict[str, list[float]]:
    """Prune one weight tensor at a time (in a copy of `model`), score with `evaluate`.

    Returns {name: [score at each sparsity]}: the layers whose score stays flat
    tolerate pruning; the steep ones need a lower share of the global budget.
    """
    names = names or list(prunable(model))
    out: dict[str, list[float]] = {}
    for name in tqdm(names, desc="sensitivity scan", disable=not progress):
        out[name] = []
        for s in sparsities:
            trial = copy.deepcopy(model)
            w = prunable(trial)[name]
            apply_masks(trial, {name: magnitude_mask(w.detach(), s)})
            out[name].append(evaluate(trial))
    return out


def matmul_times(densities: list[float], rows: int = 432, cols: int = 288,
                 batch: int = 64, repeats: int = 200, seed: int = 0) -> list[dict]:
    """Single-thread median ms of W @ X: dense W vs. the same W as torch CSR.

    W (rows, cols) has the given fraction of non-zeros; X is (cols, batch), the
    shape of one GRU input projection over `batch` frames.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(cols, batch, generator=gen)
    out = []
    with one_thread():
        for d in densities:
            w = torch.randn(rows, cols, generator=gen)
            w = w * magnitude_mask(w, 1.0 - d)
            sparse = w.to_sparse_csr()
            ms = interleaved_ms({"dense": lambda: w @ x, "csr": lambda: sparse @ x},
                                repeats, warmup=5)
            out.append(dict(density=d, dense_ms=ms["dense"], csr_ms=ms["csr"]))
    return out

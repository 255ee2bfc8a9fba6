"""Neuron pruning (模型剪枝): remove whole units and channels physically (chapter 3.4).

A *unit* is one output channel of a convolution or one hidden unit of one GRU
direction. Removing unit j deletes everything that produces it (the conv filter
and bias, its LayerNorm entries; row j of each of the GRU's three gate blocks in
`weight_ih`, `weight_hh` and both biases, and column j of `weight_hh`) and
everything that reads it (the next layer's input column, or the head's). The
result is a smaller dense `CTCModel` of the same class, so it needs no special
kernels: fewer multiply-adds, a smaller file and a faster forward pass.

Every conv keeps the same number of channels and every GRU direction the same
number of units, so that `ModelConfig` describes the smaller model; *which*
units each layer keeps is chosen per layer by an importance score.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import nn

from ...core.batching import Example, collate, length_batches
from ...core.losses import DistillLoss, ctc_loss
from ...core.metrics import interleaved_ms, one_thread
from ...core.model import CTCModel, count_params, length_mask
from ...core.training import FinetuneConfig, finetune

Keep = dict[str, torch.Tensor]  # group name -> sorted indices of the units kept


# ----------------------------------------------------------------------------------
# The units of the model and their incoming weights.

def unit_groups(model: CTCModel) -> dict[str, int]:
    """{group: number of units}: "conv.i" channels, "rnn.fwd.l" / "rnn.bwd.l" units."""
    groups = {f"conv.{i}": c.out_channels for i, c in enumerate(model.convs)}
    for d in ("fwd", "bwd"):
        for i, gru in enumerate(getattr(model.rnn, d)):
            groups[f"rnn.{d}.{i}"] = gru.hidden_size
    return groups


def unit_module(model: CTCModel, group: str) -> nn.Module:
    """The conv or GRU that produces the units of `group`."""
    kind, *rest = group.split(".")
    if kind == "conv":
        return model.convs[int(rest[0])]
    return getattr(model.rnn, rest[0])[int(rest[1])]


def unit_rows(model: CTCModel, group: str, grad: bool = False) -> torch.Tensor:
    """(units, fan_in): every incoming weight and bias of each unit, one row per unit.

    A GRU stores its gates as three stacked blocks (r, z, n) of `hidden` rows, so
    unit j owns rows j, H + j and 2H + j of `weight_ih`, `weight_hh` and the biases.
    With `grad`, the same entries of the parameters' `.grad` (for Taylor scores).
    """
    mod = unit_module(model, group)
    rows = []
    for name, p in mod.named_parameters():
        t = p.grad if grad else p.detach()
        if t is None:
            t = torch.zeros_like(p)
        if isinstance(mod, nn.GRU):
            h = mod.hidden_size
            t = t.reshape(3, h, -1).transpose(0, 1)  # (H, 3, fan_in of the gate)
        rows.append(t.reshape(t.shape[0], -1))
    return torch.cat(rows, dim=1)


def keep_all(model: CTCModel) -> Keep:
    """Every unit of every group: `remove_units` with it changes nothing."""
    return {g: torch.arange(n) for g, n in unit_groups(model).items()}


@torch.no_grad()
def zero_units(model: CTCModel, group: str, units: torch.Tensor) -> None:
    """Zero every incoming weight and bias of `units` in `group`: dead units."""
    mod = unit_module(model, group)
    if isinstance(mod, nn.GRU):
        units = gate_rows(units, mod.hidden_size)
    for p in mod.parameters():
        p[units] = 0.0


# ----------------------------------------------------------------------------------
# Importance criteria: one score per unit, higher = more important.

def norm_scores(model: CTCModel, p: float = 2.0) -> dict[str, torch.Tensor]:
    """The Lp norm of each unit's incoming weights (p = 1 or 2)."""
    return {g: unit_rows(model, g).norm(p=p, dim=1) for g in unit_groups(model)}


def _batches(examples: list[Example], batch_size: int) -> list[dict]:
    lengths = [e.feats.shape[0] for e in examples]
    return [collate([examples[i] for i in idx])
            for idx in length_batches(lengths, batch_size)]


@torch.no_grad()
def activation_scores(model: CTCModel, examples: list[Example], batch_size: int = 32
                      ) -> dict[str, torch.Tensor]:
    """Mean |activation| of each unit over the valid frames of `examples`.

    Conv channels are read after LayerNorm + ReLU (what the next layer sees), GRU
    units at their output; padded frames are left out of the mean.
    """
    model.eval()
    groups = unit_groups(model)
    sums = {g: torch.zeros(n) for g, n in groups.items()}
    counts = dict.fromkeys(groups, 0.0)
    lens: list[torch.Tensor] = []  # valid frames after conv 0, 1, ... of this batch

    def hook(group: str, stage: int, relu: bool) -> Callable:
        def fn(_mod: nn.Module, _inp: tuple, out: object) -> None:
            y = out[0] if isinstance(out, tuple) else out  # (B, T, units)
            y = torch.relu(y) if relu else y
            m = length_mask(lens[stage], y.shape[1]).to(y.dtype)  # (B, T)
            sums[group] += (y.abs() * m[..., None]).sum((0, 1))
            counts[group] += float(m.sum())
        return fn

    last = len(model.convs) - 1
    handles = [n.register_forward_hook(hook(f"conv.{i}", i, True))
               for i, n in enumerate(model.norms)]
    for g in groups:
        if g.startswith("rnn"):
            gru = unit_module(model, g)
            handles.append(gru.register_forward_hook(hook(g, last, False)))
    try:
        for batch in _batches(examples, batch_size):
            lens.clear()
            n = batch["lengths"]
            for conv in model.convs:
                n = model.conv_lengths_one(conv, n)
                lens.append(n)
            model(batch["feats"], batch["lengths"])
    finally:
        for h in handles:
            h.remove()
    return {g: sums[g] / max(counts[g], 1.0) for g in groups}


def taylor_scores(model: CTCModel, examples: list[Example], batch_size: int = 32,
                  loss_fn: Callable[[nn.Module, dict], torch.Tensor] = ctc_loss
                  ) -> dict[str, torch.Tensor]:
    """First-order Taylor importance (Molchanov et al., 2019), summed over batches.

    Removing unit j changes the loss by about -Σ_w g_w w over its weights w, so its
    score is (Σ_w g_w w)², accumulated over batches (dropout off).
    """
    model.eval()
    groups = unit_groups(model)
    scores = {g: torch.zeros(n) for g, n in groups.items()}
    for batch in _batches(examples, batch_size):
        model.zero_grad()
        loss_fn(model, batch).backward()
        for g in groups:
            w, gr = unit_rows(model, g), unit_rows(model, g, grad=True)
            scores[g] += (w * gr).sum(1) ** 2
    model.zero_grad()
    return scores


def random_scores(model: CTCModel, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random scores: the control every criterion must beat."""
    gen = torch.Generator().manual_seed(seed)
    return {g: torch.rand(n, generator=gen) for g, n in unit_groups(model).items()}


def keep_top(scores: dict[str, torch.Tensor], conv_keep: int, rnn_keep: int) -> Keep:
    """The `conv_keep` best channels of every conv, the `rnn_keep` best GRU units."""
    keep = {}
    for g, s in scores.items():
        k = conv_keep if g.startswith("conv") else rnn_keep
        if not 1 <= k <= s.numel():
            raise ValueError(f"{g}: cannot keep {k} of {s.numel()} units")
        # stable order: ties go to the lower index, so the choice is deterministic
        order = sorted(range(s.numel()), key=lambda i: (-float(s[i]), i))
        keep[g] = torch.tensor(sorted(order[:k]))
    return keep


# ----------------------------------------------------------------------------------
# Physical removal.

def gate_rows(keep: torch.Tensor, hidden: int) -> torch.Tensor:
    """Rows of a GRU's stacked (r, z, n) gate blocks that belong to units `keep`."""
    return torch.cat([keep, keep + hidden, keep + 2 * hidden])


@torch.no_grad()
def keep_inputs(layer: nn.Linear, keep: torch.Tensor) -> nn.Linear:
    """A new Linear that reads only the input features `keep` of `layer`."""
    new = nn.Linear(len(keep), layer.out_features, bias=layer.bias is not None)
    new.weight.copy_(layer.weight[:, keep])
    if layer.bias is not None:
        new.bias.copy_(layer.bias)
    return new


@torch.no_grad()
def remove_linear_units(fc1: nn.Linear, fc2: nn.Linear, keep: torch.Tensor
                        ) -> tuple[nn.Linear, nn.Linear]:
    """fc1 -> (any element-wise activation) -> fc2, keeping hidden units `keep`.

    A unit is a row of fc1 (weight and bias) and the matching column of fc2.
    """
    a = nn.Linear(fc1.in_features, len(keep), bias=fc1.bias is not None)
    a.weight.copy_(fc1.weight[keep])
    if fc1.bias is not None:
        a.bias.copy_(fc1.bias[keep])
    return a, keep_inputs(fc2, keep)


@torch.no_grad()
def remove_gru_units(gru: nn.GRU, consumer: nn.Linear, keep: torch.Tensor
                     ) -> tuple[nn.GRU, nn.Linear]:
    """A one-layer, one-direction GRU and the Linear reading its output, units `keep`.

    Unit j owns rows j, H + j, 2H + j of every gate tensor and column j of
    `weight_hh` (its own state feeds every gate), and column j of the consumer.
    """
    if gru.num_layers != 1 or gru.bidirectional:
        raise ValueError("remove_gru_units takes a one-layer, one-direction GRU")
    rows = gate_rows(keep, gru.hidden_size)
    new = nn.GRU(gru.input_size, len(keep), batch_first=gru.batch_first,
                 bias=gru.bias)
    new.weight_ih_l0.copy_(gru.weight_ih_l0[rows])
    new.weight_hh_l0.copy_(gru.weight_hh_l0[rows][:, keep])
    if gru.bias:
        new.bias_ih_l0.copy_(gru.bias_ih_l0[rows])
        new.bias_hh_l0.copy_(gru.bias_hh_l0[rows])
    return new, keep_inputs(consumer, keep)


def _rnn_input(keep: Keep, layer: int, hidden: int, bidirectional: bool,
               last_conv: int) -> torch.Tensor:
    """Indices of the input features a GRU layer (or the head) still receives."""
    if layer == 0:
        return keep[f"conv.{last_conv}"]
    prev = [keep[f"rnn.fwd.{layer - 1}"]]
    if bidirectional:  # the layer reads cat([forward, backward]): offset H for bwd
        prev.append(keep[f"rnn.bwd.{layer - 1}"] + hidden)
    return torch.cat(prev)


def remove_units(model: CTCModel, keep: Keep) -> CTCModel:
    """A smaller `CTCModel` holding only the units in `keep` (the input is unchanged).

    With every unit kept the outputs are identical. A GRU unit or conv channel
    whose incoming weights are all zero outputs zero, so removing it changes
    nothing, except that a LayerNorm after the conv mixes channels (its mean and
    variance run over all of them): removing a conv channel shifts them.
    """
    cfg = model.cfg
    if cfg.extra_convs:
        raise ValueError("residual conv blocks tie their channels to the previous "
                         "layer's; neuron pruning supports extra_convs=0 only")
    groups = unit_groups(model)
    if set(keep) != set(groups):
        raise ValueError(f"keep must name every group {sorted(groups)}, got "
                         f"{sorted(keep)}")
    sizes = {len(keep[g]) for g in groups if g.startswith("conv")}
    rnn_sizes = {len(keep[g]) for g in groups if g.startswith("rnn")}
    if len(sizes) != 1 or len(rnn_sizes) != 1:
        raise ValueError("every conv must keep the same number of channels and every "
                         f"GRU direction the same number of units; got {sizes} and "
                         f"{rnn_sizes}")
    for g, idx in keep.items():
        distinct = len(set(idx.tolist())) == len(idx)
        if not distinct or idx.min() < 0 or idx.max() >= groups[g]:
            raise ValueError(f"{g}: keep indices must be distinct and in [0, "
                             f"{groups[g]}), got {idx.tolist()}")
    sd = model.state_dict()
    new = {}
    c_in = torch.arange(cfg.n_mels)
    for i in range(len(model.convs)):
        k = keep[f"conv.{i}"]
        new[f"convs.{i}.weight"] = sd[f"convs.{i}.weight"][k][:, c_in]
        new[f"convs.{i}.bias"] = sd[f"convs.{i}.bias"][k]
        for p in ("weight", "bias"):
            if f"norms.{i}.{p}" in sd:
                new[f"norms.{i}.{p}"] = sd[f"norms.{i}.{p}"][k]
        c_in = k
    h, last = cfg.rnn_hidden, len(model.convs) - 1
    for layer in range(cfg.rnn_layers):
        inp = _rnn_input(keep, layer, h, cfg.bidirectional, last)
        for d in (("fwd", "bwd") if cfg.bidirectional else ("fwd",)):
            k = keep[f"rnn.{d}.{layer}"]
            gates = gate_rows(k, h)  # rows of the r, z and n blocks
            pre = f"rnn.{d}.{layer}."
            new[pre + "weight_ih_l0"] = sd[pre + "weight_ih_l0"][gates][:, inp]
            new[pre + "weight_hh_l0"] = sd[pre + "weight_hh_l0"][gates][:, k]
            new[pre + "bias_ih_l0"] = sd[pre + "bias_ih_l0"][gates]
            new[pre + "bias_hh_l0"] = sd[pre + "bias_hh_l0"][gates]
    inp = _rnn_input(keep, cfg.rnn_layers, h, cfg.bidirectional, last)
    new["head.weight"] = sd["head.weight"][:, inp]
    new["head.bias"] = sd["head.bias"]
    small = CTCModel(replace(cfg, conv_channels=sizes.pop(),
                             rnn_hidden=rnn_sizes.pop()))
    small.load_state_dict(new, strict=True)  # copies into the new parameters
    return small.train(model.training)


def scores_for(model: CTCModel, criterion: str, examples: list[Example],
               seed: int = 0) -> dict[str, torch.Tensor]:
    """Unit scores by name: "l1", "l2", "activation", "taylor" or "random"."""
    if criterion in ("l1", "l2"):
        return norm_scores(model, p=float(criterion[1]))
    if criterion == "activation":
        return activation_scores(model, examples)
    if criterion == "taylor":
        return taylor_scores(model, examples)
    if criterion == "random":
        return random_scores(model, seed)
    raise ValueError(f"unknown criterion {criterion!r}; use one of {CRITERIA}")


CRITERIA = ("l1", "l2", "activation", "taylor", "random")


# ----------------------------------------------------------------------------------
# Iterative pruning with fine-tuning.

@dataclass(frozen=True)
class NeuronPruneConfig:
    """Iterative neuron pruning: the widths after each stage, criterion, training."""

    # (conv channels, GRU units per direction) after each stage; 256/144 at the start.
    # The default removes half of the baseline's parameters in one stage (chapter 3.4):
    # 50.7 % of the v2 baseline, whose one conv holds fewer of them (128/112, v1's
    # widths, would remove 44 %).
    widths: tuple[tuple[int, int], ...] = ((128, 104),)
    criterion: str = "taylor"
    calib: int = 256  # training utterances that score the units (activation, Taylor)
    distill: float = 0.5  # weight α of the KL term to the unpruned model (chapter 3.3)
    temperature: float = 2.0
    # fine-tuning after each stage; `stage_steps` (one per stage) overrides its steps.
    # The peak lr that passes the dense control on v2, with its warm-up (issue 26).
    finetune: FinetuneConfig = field(default_factory=lambda: FinetuneConfig(
        steps=2400, lr=1e-3, warmup=0.05))
    stage_steps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}, got "
                             f"{self.criterion!r}")
        if not self.widths:
            raise ValueError("widths needs at least one stage")
        if self.stage_steps and len(self.stage_steps) != len(self.widths):
            raise ValueError(f"stage_steps needs one entry per stage "
                             f"({len(self.widths)}), got {self.stage_steps}")

    def steps(self, stage: int) -> int:
        """Fine-tuning steps after `stage` (1-based)."""
        return self.stage_steps[stage - 1] if self.stage_steps else self.finetune.steps


def prune_units_finetune(model: CTCModel, examples: list[Example],
                         cfg: NeuronPruneConfig,
                         evaluate: Callable[[nn.Module], dict] | None = None,
                         eval_every: int = 0, progress: bool = True
                         ) -> tuple[CTCModel, list[dict]]:
    """Shrink `model` stage by stage along `cfg.widths`, fine-tuning after each.

    Each stage scores the units of the current model, removes the weakest ones
    physically and fine-tunes the smaller model (with the unpruned model as
    teacher when `cfg.distill` > 0). Returns the final model and a history with
    the parameter count and `evaluate(model)` after every removal and fine-tune.
    """
    loss_fn = ctc_loss
    if cfg.distill > 0:  # `remove_units` builds new models: the input is the teacher
        loss_fn = DistillLoss(model, cfg.distill, cfg.temperature)
    calib = examples[: cfg.calib]
    history: list[dict] = []
    step0 = 0
    for stage, (conv_keep, rnn_keep) in enumerate(cfg.widths, start=1):
        scores = scores_for(model, cfg.criterion, calib, seed=cfg.finetune.seed + stage)
        model = remove_units(model, keep_top(scores, conv_keep, rnn_keep))
        entry = dict(stage=stage, step=step0, params=count_params(model), tuned=False)
        if evaluate is not None:
            entry.update(evaluate(model))
        history.append(entry)
        ft = replace(cfg.finetune, seed=cfg.finetune.seed + stage,
                     steps=cfg.steps(stage))

        def ev(step: int, m: nn.Module = model) -> dict:
            return {} if evaluate is None else evaluate(m)

        steps = finetune(model, examples, ft, loss_fn, evaluate=ev,
                         eval_every=eval_every, progress=progress,
                         desc=f"stage {stage}: {conv_keep}/{rnn_keep}")
        for h in steps:
            history.append(dict(h, stage=stage, step=step0 + h["step"],
                                params=entry["params"], tuned=True))
        step0 += ft.steps
    return model, history


# ----------------------------------------------------------------------------------
# Comparison with a library (Torch-Pruning).

class FrontEnd(nn.Module):
    """The conv front end of a `CTCModel` alone: the part Torch-Pruning can trace.

    It shares the model's conv and LayerNorm modules (no copy) and computes what
    `CTCModel.forward` computes on them, without the padding bookkeeping.
    """

    def __init__(self, model: CTCModel) -> None:
        super().__init__()
        self.convs, self.norms = model.convs, model.norms

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, n_mels, T) -> (B, channels, T / 2 ** n_conv)."""
        for conv, norm in zip(self.convs, self.norms):
            x = torch.relu(norm(conv(x).transpose(1, 2)).transpose(1, 2))
        return x


def gru_times(widths: list[int], input_size: int = 288,
              frames: int = 150,  # 3 s of 20 ms output frames
              repeats: int = 50, seed: int = 0) -> dict[int, float]:
    """Single-thread median ms of one GRU direction over `frames` frames, per width.

    The time loop runs `frames` dependent steps, each a (1, H) x (H, 3H) product:
    at small H the fixed cost of a step outweighs its arithmetic (chapter 3.4).
    The widths take turns in every repeat, so a slow moment hits all of them.
    """
    torch.manual_seed(seed)
    x = torch.randn(1, frames, input_size)  # (batch, frames, features)
    grus = {h: nn.GRU(input_size, h, batch_first=True) for h in widths}
    with one_thread(), torch.inference_mode():
        return interleaved_ms({h: lambda g=g: g(x) for h, g in grus.items()},
                              repeats, warmup=3)

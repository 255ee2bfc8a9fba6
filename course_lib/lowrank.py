"""Low-rank factorization (低秩分解): W ≈ U V from a truncated SVD (chapter 5).

A weight matrix W (m, n) of rank r costs r (m + n) parameters instead of m n, so
the factorization pays off only when r < m n / (m + n). The truncated SVD
W_r = U_r S_r V_r^T is the best rank-r approximation in the Frobenius norm
(Eckart-Young), with error ||W - W_r||_F^2 = sum_{i > r} s_i^2: the "energy" that a
rank keeps is the share of sum s_i^2 in its first r singular values.

What is factorized in the CTC model, and how it stays an ordinary network:
- a convolution (C_out, C_in, k) is the matrix (C_out, C_in k); rank r turns it into
  a conv C_in -> r with the same kernel and stride, then a 1x1 conv r -> C_out;
- the input weights of a bidirectional GRU layer, both directions stacked
  (2 x 3H, I): a shared projection I -> r (`BiGRU.proj`), then two GRUs of input
  size r. The recurrent weights (3H, H) stay whole: `nn.GRU`'s fused kernel has no
  place for a factor inside its recurrence (an LSTM does: `proj_size`).
The head (29 x 288) is below its break-even rank and stays whole too.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from .models import CTCModel
from .train import Example, FinetuneConfig, finetune

Ranks = dict[str, int]  # factorized matrix ("conv0", "rnn1", ...) -> rank


class LowRankConv1d(nn.Module):
    """Conv1d C_in -> C_out of rank r: C_in -> r (kernel k), then 1x1 r -> C_out."""

    def __init__(self, conv: nn.Conv1d, rank: int) -> None:
        super().__init__()
        self.reduce = nn.Conv1d(conv.in_channels, rank, conv.kernel_size[0],
                                stride=conv.stride[0], padding=conv.padding[0],
                                bias=False)
        self.expand = nn.Conv1d(rank, conv.out_channels, 1, bias=conv.bias is not None)
        # what CTCModel reads of a conv (lengths, residual blocks)
        self.kernel_size, self.stride = conv.kernel_size, conv.stride
        self.padding = conv.padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T) -> (B, rank, T') -> (B, C_out, T')."""
        return self.expand(self.reduce(x))


def matrices(model: CTCModel) -> dict[str, torch.Tensor]:
    """The matrices this chapter factorizes, as 2-D views (rows = outputs)."""
    out = {}
    for i, conv in enumerate(model.convs):
        if isinstance(conv, nn.Conv1d):
            out[f"conv{i}"] = conv.weight.detach().flatten(1)  # (C_out, C_in k)
    for i, fwd in enumerate(model.rnn.fwd):
        if isinstance(model.rnn.proj[i], nn.Identity):
            grus = [fwd] + ([model.rnn.bwd[i]] if model.rnn.bwd else [])
            out[f"rnn{i}"] = torch.cat([g.weight_ih_l0.detach() for g in grus])
    return out  # rnn<i>: (directions x 3H, I)


def break_even(w: torch.Tensor) -> float:
    """The rank below which U V has fewer parameters than W: m n / (m + n)."""
    m, n = w.shape
    return m * n / (m + n)


def energy_rank(s: torch.Tensor, energy: float) -> int:
    """The smallest r whose first r singular values hold `energy` of sum s^2."""
    if not 0.0 < energy <= 1.0:
        raise ValueError(f"energy must be in (0, 1], got {energy}")
    share = torch.cumsum(s.double() ** 2, 0) / (s.double() ** 2).sum()
    return int(torch.searchsorted(share, torch.tensor(energy, dtype=share.dtype)
                                  - 1e-12)) + 1


def singular_values(model: CTCModel) -> dict[str, torch.Tensor]:
    """Singular values (descending) of every factorizable matrix."""
    return {n: torch.linalg.svdvals(w) for n, w in matrices(model).items()}


def choose_ranks(model: CTCModel, energy: float) -> Ranks:
    """Per-matrix rank that keeps `energy`; where it would not pay, a matrix stays."""
    ranks = {}
    for name, w in matrices(model).items():
        r = energy_rank(torch.linalg.svdvals(w), energy)
        if r < break_even(w):
            ranks[name] = r
    return ranks


def _parse(name: str) -> tuple[str, int]:
    """"conv1" -> ("conv", 1); "rnn0" -> ("rnn", 0)."""
    m = re.fullmatch(r"(conv|rnn)(\d+)", name)
    if m is None:
        raise ValueError(f"unknown matrix {name!r}; expected conv<i> or rnn<i>")
    return m[1], int(m[2])


def factorized_shapes(model: CTCModel, ranks: Ranks) -> CTCModel:
    """Give `model` (in place) the modules of a factorization with `ranks`.

    The new modules are freshly initialized; `factorize` fills them from the SVD,
    `models.load_model` from a saved file.
    """
    for name, r in ranks.items():
        kind, i = _parse(name)
        if kind == "conv":
            model.convs[i] = LowRankConv1d(model.convs[i], r)
        else:
            rnn, hidden = model.rnn, model.cfg.rnn_hidden
            rnn.proj[i] = nn.Linear(rnn.fwd[i].input_size, r, bias=False)
            rnn.fwd[i] = nn.GRU(r, hidden, batch_first=True)
            if rnn.bwd:
                rnn.bwd[i] = nn.GRU(r, hidden, batch_first=True)
    model.low_rank = {**getattr(model, "low_rank", {}), **ranks}
    return model


def _split(w: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """W (m, n) -> U (m, r), V (r, n) with U V the best rank-r approximation."""
    u, s, vh = torch.linalg.svd(w.double(), full_matrices=False)
    root = s[:r].sqrt()  # split S evenly, so both factors have the same scale
    return (u[:, :r] * root).float(), (root[:, None] * vh[:r]).float()


@torch.no_grad()
def factorize(model: CTCModel, ranks: Ranks) -> CTCModel:
    """A copy of `model` with each named matrix replaced by its rank-r SVD factors."""
    weights = matrices(model)
    low = factorized_shapes(copy.deepcopy(model), ranks)
    for name, r in ranks.items():
        u, v = _split(weights[name], r)
        kind, i = _parse(name)
        if kind == "conv":
            old, new = model.convs[i], low.convs[i]
            new.reduce.weight.copy_(v.view_as(new.reduce.weight))  # (r, C_in, k)
            new.expand.weight.copy_(u.unsqueeze(-1))  # (C_out, r, 1)
            if old.bias is not None:
                new.expand.bias.copy_(old.bias)
        else:
            rnn = low.rnn
            rnn.proj[i].weight.copy_(v)  # (r, I)
            old = [model.rnn.fwd[i]] + ([model.rnn.bwd[i]] if rnn.bwd else [])
            new = [rnn.fwd[i]] + ([rnn.bwd[i]] if rnn.bwd else [])
            for d, (g_old, g_new) in enumerate(zip(old, new)):
                rows = slice(d * g_old.weight_ih_l0.shape[0],
                             (d + 1) * g_old.weight_ih_l0.shape[0])
                g_new.weight_ih_l0.copy_(u[rows])  # (3H, r)
                for p in ("weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                    getattr(g_new, p).copy_(getattr(g_old, p))
    return low.eval()


# ----------------------------------------------------------------------------------
# The factorized baseline, fine-tuned, cached and shipped.

@dataclass(frozen=True)
class LowRankConfig:
    """Ranks from one energy threshold, then a fine-tune with the baseline as
    teacher: (1 - alpha) CTC + alpha T^2 KL, the loss of chapter 3.3."""

    energy: float = 0.75
    alpha: float = 0.5
    temperature: float = 2.0
    train: FinetuneConfig = field(default_factory=lambda: FinetuneConfig(
        steps=2000, lr=1e-3, warmup=0.05))


SHIPPED = Path(__file__).parent / "artifacts" / "lowrank.safetensors"


def result_key(cfg: LowRankConfig, baseline_file: Path) -> str:
    """Hash of everything the fine-tuned low-rank model depends on."""
    from .utils import config_hash, sha256_file

    return config_hash(dict(baseline=sha256_file(baseline_file), lowrank=asdict(cfg)))


def lowrank_baseline(cfg: LowRankConfig = LowRankConfig(), eval_every: int = 250,
                     progress: bool = True, allow_shipped: bool = True
                     ) -> tuple[CTCModel, Path, list[dict]]:
    """The baseline factorized at `cfg.energy` and fine-tuned, as a model file.

    Cached by the baseline's sha256 and the configuration; the package carries
    the default result (`python -m course_lib lowrank --ship`), used only when
    its recorded key equals this call's. History: dev WER along the fine-tune.
    """
    from .baseline import baseline_path, dev_wer, load_baseline, train_examples
    from .distill import DistillLoss
    from .models import cached_or_shipped, load_model, read_metadata, save_model
    from .utils import cache_dir, sha256_file

    base = baseline_path(progress)
    key = result_key(cfg, base)
    path = cache_dir() / "models" / f"lowrank-{key}" / "model.safetensors"
    if cached_or_shipped(path, SHIPPED if allow_shipped else None, key):
        return load_model(path), path, read_metadata(path)["history"]
    teacher = load_baseline(progress)
    model = factorize(teacher, choose_ranks(teacher, cfg.energy))
    examples: list[Example] = train_examples(progress=progress)
    t0 = time.perf_counter()
    loss = DistillLoss(teacher, cfg.alpha, cfg.temperature)
    history = finetune(model, examples, cfg.train, loss_fn=loss,
                       evaluate=lambda step: dict(dev_wer=dev_wer(model)),
                       eval_every=eval_every, progress=progress)
    save_model(model.eval(), path, lowrank_config=asdict(cfg), history=history,
               seconds=round(time.perf_counter() - t0, 1), result_key=key,
               baseline_sha256=sha256_file(base))
    return load_model(path), path, history

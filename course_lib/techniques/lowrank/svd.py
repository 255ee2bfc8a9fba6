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

import torch
from torch import nn

from ...core.model import (CTCModel, Ranks, factorized_shapes,
                           parse_matrix_name)


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


def svd_factors(w: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
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
        u, v = svd_factors(weights[name], r)
        kind, i = parse_matrix_name(name)
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

"""The CTC acoustic model of every chapter (chapter 1); files: `modelfile`.

log-mel (B, T, 80) -> per-utterance normalization -> `n_conv` strided Conv1d
(T / 2**n_conv: 2 in the running example v1, 40 ms frames; 1 in v2, 20 ms) ->
LayerNorm -> 3-layer bidirectional GRU -> Linear CTC head over 29 characters.
About 1.5 M parameters (1.2 M in v2): Conv, recurrent and Linear layers, so that
every compression technique in the book has something real to act on.

Padding never changes a result: normalization statistics use valid frames only,
padded frames are zeroed after every convolution, and the backward GRU of each layer
reads every utterance reversed *within its own length* (`reverse_padded`), so it
starts at the last real frame and never reads padding. This gives exactly what a
packed sequence gives, with the plain GRU kernels, which are about 1.8x faster on CPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .text import VOCAB


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the CTC model."""

    n_mels: int = 80
    conv_channels: int = 256
    conv_kernel: int = 5
    n_conv: int = 2  # each halves the frame rate: 10 ms -> 20 ms -> 40 ms
    extra_convs: int = 0  # residual stride-1 conv blocks after the strided ones
    rnn_hidden: int = 144
    rnn_layers: int = 3
    bidirectional: bool = True
    dropout: float = 0.05
    conv_norm: bool = True  # LayerNorm over channels after each conv (per frame)
    vocab_size: int = len(VOCAB)
    upsample: int = 1  # CTC symbols emitted per conv frame (see CTCModel)


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, max_len) bool mask, True on valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of x (B, T, C) within its length; padding stays put."""
    t = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, T)
    idx = lengths[:, None] - 1 - t  # (B, T): source frame of each output frame
    idx = torch.where(idx >= 0, idx, t)  # padded frames map to themselves
    return x.gather(1, idx.unsqueeze(-1).expand_as(x))


class BiGRU(nn.Module):
    """A stack of bidirectional GRU layers, each direction its own `nn.GRU`.

    The forward GRU is causal, so padding at the end cannot reach a valid frame;
    the backward GRU runs on `reverse_padded` input, so the same holds for it.
    """

    def __init__(self, input_size: int, hidden: int, layers: int, dropout: float,
                 bidirectional: bool = True) -> None:
        super().__init__()
        self.fwd = nn.ModuleList()
        self.bwd = nn.ModuleList()
        # A linear map of each layer's input, shared by both directions: Identity
        # (no weights) unless chapter 5 factorizes the input weights (`lowrank`).
        self.proj = nn.ModuleList(nn.Identity() for _ in range(layers))
        size = input_size
        for _ in range(layers):
            self.fwd.append(nn.GRU(size, hidden, batch_first=True))
            if bidirectional:
                self.bwd.append(nn.GRU(size, hidden, batch_first=True))
            size = hidden * (2 if bidirectional else 1)
        self.dropout = nn.Dropout(dropout)

    def layer(self, i: int, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Layer `i` alone: x (B, T, C) -> (B, T, H * directions)."""
        if i > 0:
            x = self.dropout(x)
        x = self.proj[i](x)  # (B, T, rank) after a low-rank factorization
        y, _ = self.fwd[i](x)
        if self.bwd:
            yb, _ = self.bwd[i](reverse_padded(x, lengths))
            y = torch.cat([y, reverse_padded(yb, lengths)], dim=-1)
        return y

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) -> (B, T, H * directions); frames >= length are garbage."""
        for i in range(len(self.fwd)):
            x = self.layer(i, x, lengths)
        return x


class CTCModel(nn.Module):
    """Conv front end + BiGRU + Linear head; returns log-probabilities for CTC."""

    def __init__(self, cfg: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        convs, ch = [], cfg.n_mels
        for _ in range(cfg.n_conv):
            convs.append(nn.Conv1d(ch, cfg.conv_channels, cfg.conv_kernel, stride=2,
                                   padding=cfg.conv_kernel // 2))
            ch = cfg.conv_channels
        for _ in range(cfg.extra_convs):
            convs.append(nn.Conv1d(ch, ch, cfg.conv_kernel, stride=1,
                                   padding=cfg.conv_kernel // 2))
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(
            nn.LayerNorm(cfg.conv_channels) if cfg.conv_norm else nn.Identity()
            for _ in convs)
        self.rnn = BiGRU(ch, cfg.rnn_hidden, cfg.rnn_layers, cfg.dropout,
                         cfg.bidirectional)
        self.dropout = nn.Dropout(cfg.dropout)
        out = cfg.rnn_hidden * (2 if cfg.bidirectional else 1)
        # The head emits `upsample` CTC symbols per conv frame (40 ms: 40/upsample ms):
        # room for blanks when speech is too dense for one symbol per frame.
        self.head = nn.Linear(out, cfg.vocab_size * cfg.upsample)

    def conv_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frame counts after the strided convolutions."""
        for conv in self.convs:
            lengths = self.conv_lengths_one(conv, lengths)
        return lengths

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """CTC output frames for input frame counts (conv frames x upsample)."""
        return self.conv_lengths(lengths) * self.cfg.upsample

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, n_mels), lengths (B,) -> log-probs (B, T', V), lengths (B,)."""
        x, lengths = self.front(feats, lengths)  # (B, T', C)
        y = self.rnn(x, lengths)  # (B, T', 2H)
        return self.output(y, lengths)

    def stage(self, name: str, *args: torch.Tensor):
        """Run one execution stage alone (chapter 3.5), in the order of `stages()`:
        "conv<i>" (x, lengths) -> (x, lengths), where conv0 takes the features
        (B, T, n_mels) and the last conv returns (B, T', C); "rnn<i>" (x, lengths)
        -> x; "head" (x, lengths) -> what `forward` returns."""
        if name not in self.stage_prefixes():
            raise ValueError(f"unknown stage {name!r}; this model has {self.stages()}")
        if name == "head":
            return self.output(*args)
        if name.startswith("rnn"):
            return self.rnn.layer(int(name[3:]), *args)
        i, (x, lengths) = int(name[4:]), args
        if i == 0:
            x = self.normalize(x, lengths)
        x, lengths = self.conv_block(i, x, lengths)
        if i == len(self.convs) - 1:
            x = self.dropout(x.transpose(1, 2))  # (B, T', C)
        return x, lengths

    def stage_prefixes(self) -> dict[str, tuple[str, ...]]:
        """Execution stage -> the state-dict prefixes it reads, in order (ch. 3.5)."""
        stages = {f"conv{i}": (f"convs.{i}.", f"norms.{i}.")
                  for i in range(len(self.convs))}
        stages.update({f"rnn{i}": (f"rnn.proj.{i}.", f"rnn.fwd.{i}.", f"rnn.bwd.{i}.")
                       for i in range(self.cfg.rnn_layers)})
        stages["head"] = ("head.",)
        return stages

    def stages(self) -> list[str]:
        """The execution stages in order: conv0.., rnn0.., head (chapter 3.5)."""
        return list(self.stage_prefixes())

    def front(self, feats: torch.Tensor, lengths: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalization and convolutions: (B, T, n_mels) -> (B, T', C), lengths."""
        x = self.normalize(feats, lengths)  # (B, n_mels, T)
        for i in range(len(self.convs)):
            x, lengths = self.conv_block(i, x, lengths)
        return self.dropout(x.transpose(1, 2)), lengths  # (B, T', C)

    @staticmethod
    def normalize(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Per-utterance mean/variance over valid frames: (B, T, F) -> (B, F, T)."""
        mask = length_mask(lengths, feats.shape[1]).unsqueeze(-1)  # (B, T, 1)
        n = lengths.clamp(min=1).view(-1, 1, 1).to(feats.dtype)
        mean = (feats * mask).sum(1, keepdim=True) / n  # valid frames only
        var = ((feats - mean) ** 2 * mask).sum(1, keepdim=True) / n
        x = ((feats - mean) / torch.sqrt(var + 1e-5)) * mask
        return x.transpose(1, 2)  # (B, n_mels, T) for Conv1d

    def conv_block(self, i: int, x: torch.Tensor, lengths: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Conv `i`, its LayerNorm and ReLU: (B, C, T) -> (B, C', T'), lengths."""
        conv, norm = self.convs[i], self.norms[i]
        y = torch.relu(norm(conv(x).transpose(1, 2)).transpose(1, 2))
        x = x + y if conv.stride[0] == 1 else y  # residual on stride-1 blocks
        lengths = self.conv_lengths_one(conv, lengths)
        return x * length_mask(lengths, x.shape[-1]).unsqueeze(1), lengths  # re-zero

    def output(self, y: torch.Tensor, lengths: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """The CTC head: (B, T', 2H) -> log-probs (B, T' x upsample, V), lengths."""
        logits = self.head(self.dropout(y))  # (B, T', upsample * V)
        b, t, _ = logits.shape
        logits = logits.view(b, t * self.cfg.upsample, self.cfg.vocab_size)
        return logits.log_softmax(-1), lengths * self.cfg.upsample

    @staticmethod
    def conv_lengths_one(conv: nn.Conv1d, lengths: torch.Tensor) -> torch.Tensor:
        """Frame counts after one convolution."""
        k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        return torch.div(lengths + 2 * p - k, s, rounding_mode="floor") + 1


def count_params(model: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def is_weight_matrix(t: torch.Tensor) -> bool:
    """The rule every technique uses: a tensor of 2 or more dims is a weight matrix
    (a Linear or GRU matrix, a conv kernel); biases and norms are not (chapter 3.1)."""
    return t.ndim >= 2


def weight_matrices(model: nn.Module) -> dict[str, nn.Parameter]:
    """The model's weight matrices by name: what pruning, quantization and weight
    sharing act on (chapters 3.1, 3.2, 4)."""
    return {n: p for n, p in model.named_parameters() if is_weight_matrix(p)}


def parametrize_matrices(model: nn.Module,
                         make: Callable[[str, torch.Tensor], nn.Module | None],
                         unsafe: bool = True) -> dict[str, nn.Module]:
    """Register `make(name, weight)` as the parametrization of every weight matrix
    (skipped where it returns None), in place; return them by name (ch. 3.2, 4).

    The model then computes with what the parametrization returns (fake-quantized or
    shared weights) and trains the parametrization's own parameters. `unsafe=False`
    lets PyTorch check the parametrization's output on registration.
    """
    from torch.nn.utils import parametrize

    out = {}
    for name, p in list(weight_matrices(model).items()):
        module = make(name, p.detach())
        if module is None:
            continue
        owner, _, attr = name.rpartition(".")
        parametrize.register_parametrization(model.get_submodule(owner), attr, module,
                                             unsafe=unsafe)
        out[name] = module
    return out


def remove_parametrizations(model: nn.Module) -> None:
    """Replace every parametrization by the tensor it computes now, in place."""
    from torch.nn.utils import parametrize

    for module in list(model.modules()):
        if parametrize.is_parametrized(module):
            for attr in list(module.parametrizations):
                parametrize.remove_parametrizations(module, attr,
                                                    leave_parametrized=True)


# ----------------------------------------------------------------------------------
# Low-rank shapes (chapter 5): a factorized model is still a CTCModel, so the
# model files and every other chapter can rebuild it.

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


def parse_matrix_name(name: str) -> tuple[str, int]:
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
        kind, i = parse_matrix_name(name)
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

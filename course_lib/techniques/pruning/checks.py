"""Lab 3.1's checks: the magnitude mask, global masks, pruning a model, the schedule.

Each check runs the student's function on small hand-made cases (`run_cases`) and
raises `CheckFailed` with the first failing case (spec §5).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ...core.checking import run_cases
from ...core.model import CTCModel, ModelConfig
from . import masks as reference  # the package's own functions, to compare with


def _same_mask(got: Any, want: torch.Tensor) -> bool:
    return (isinstance(got, torch.Tensor) and got.dtype == torch.bool
            and got.shape == want.shape and torch.equal(got, want))


def check_magnitude_mask(magnitude_mask: Callable[[torch.Tensor, float], torch.Tensor]
                         ) -> None:
    """Lab 3.1: `magnitude_mask(w, sparsity) -> bool keep-mask` (True = kept)."""
    ref = reference.magnitude_mask
    w = torch.tensor([[0.5, -0.1, 2.0], [-3.0, 0.05, -0.2]])
    gen = torch.Generator().manual_seed(0)
    rand = torch.randn(7, 11, generator=gen)
    cases = [
        ("prunes the smallest |w| (half of 6 entries)", (w, 0.5), ref(w, 0.5)),
        ("large negative weights are kept: magnitude, not value", (w, 0.34),
         torch.tensor([[True, False, True], [True, False, True]])),
        ("sparsity 0 keeps everything", (w, 0.0), torch.ones(2, 3, dtype=torch.bool)),
        ("sparsity 1 prunes everything", (w, 1.0), torch.zeros(2, 3, dtype=torch.bool)),
        ("all-equal weights: exactly round(s * n) pruned, lowest index first",
         (torch.ones(2, 4), 0.25),
         torch.tensor([[False, False, True, True], [True, True, True, True]])),
        ("ties are broken by position", (torch.tensor([2.0, 1.0, 1.0, 1.0, 3.0]), 0.4),
         torch.tensor([True, False, False, True, True])),
        ("a random (7, 11) matrix at 70 %: same as the reference", (rand, 0.7),
         ref(rand, 0.7)),
    ]
    run_cases("magnitude_mask", magnitude_mask, cases, compare=_same_mask)


def check_global_masks(global_masks: Callable[[dict, float], dict],
                       magnitude_mask: Callable | None = None) -> None:
    """Lab 3.1: `global_masks({name: w}, sparsity) -> {name: mask}`, one threshold;
    given the student's `magnitude_mask`, a failure it causes is blamed on it."""
    ref = reference.global_masks
    gen = torch.Generator().manual_seed(1)
    small = {"a": torch.tensor([1.0, 2.0, 3.0, 4.0]),
             "b": torch.tensor([10.0, -20.0, 30.0, 40.0])}
    mixed = {"conv": 0.1 * torch.randn(4, 3, 5, generator=gen),
             "rnn": torch.randn(12, 6, generator=gen),
             "head": 3 * torch.randn(5, 12, generator=gen)}

    def same(got: Any, want: dict) -> bool:
        return isinstance(got, dict) and set(got) == set(want) and all(
            _same_mask(got[k], want[k]) for k in want)

    cases = [
        ("one threshold for all tensors: the small layer goes first", (small, 0.5),
         {"a": torch.zeros(4, dtype=torch.bool), "b": torch.ones(4, dtype=torch.bool)}),
        ("sparsity 0 keeps everything", (small, 0.0),
         {k: torch.ones(4, dtype=torch.bool) for k in small}),
        ("sparsity 1 prunes everything", (small, 1.0),
         {k: torch.zeros(4, dtype=torch.bool) for k in small}),
        ("layers of different scale, 80 %: same as the reference", (mixed, 0.8),
         ref(mixed, 0.8)),
    ]
    run_cases("global_masks", global_masks, cases, compare=same,
              builds_on=_earlier(magnitude_mask=magnitude_mask))


def _earlier(**answers: Callable | None) -> dict[str, Callable[[], None]]:
    """The checks of the earlier exercises the student handed in (None: not given)."""
    checks = {"magnitude_mask": check_magnitude_mask,
              "global_masks": check_global_masks}
    return {name: (lambda c=checks[name], f=fn: c(f))
            for name, fn in answers.items() if fn is not None}


def check_prune_model(prune_model: Callable[[torch.nn.Module, float], dict],
                      global_masks: Callable | None = None,
                      magnitude_mask: Callable | None = None) -> None:
    """Lab 3.1: `prune_model(model, sparsity)` prunes weights in place, not biases;
    given the student's earlier answers, a failure they cause is blamed on them."""
    def trial(sparsity: float) -> str:
        torch.manual_seed(0)
        model = CTCModel(ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=2))
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        want = reference.masks_for(model, sparsity, "global")
        got = prune_model(model, sparsity)
        problems = []
        if not isinstance(got, dict) or set(got) != set(want):
            return f"returned masks for {sorted(got) if isinstance(got, dict) else got}"
        for n, p in model.named_parameters():
            if n in want:
                if not torch.equal(got[n], want[n]):
                    problems.append(f"mask of {n} differs from global magnitude "
                                    "pruning")
                elif not torch.equal(p.detach(), before[n] * want[n]):
                    problems.append(f"{n} is not W * M after pruning")
            elif not torch.equal(p.detach(), before[n]):
                problems.append(f"{n} (a bias or norm) was changed")
        return "; ".join(problems[:2]) or "ok"

    cases = [(f"a small CTCModel at {int(100 * s)} %", (s,), "ok") for s in (0.5, 0.9)]
    run_cases("prune_model", trial, cases,
              builds_on=_earlier(magnitude_mask=magnitude_mask,
                                 global_masks=global_masks))


def check_cubic_sparsity(cubic_sparsity: Callable[..., float]) -> None:
    """Lab 3.1: `cubic_sparsity(step, s_i, s_f, t0, n, dt)`, Zhu & Gupta's schedule."""
    ref = reference.cubic_sparsity
    args = [(0, 0.0, 0.9, 10, 4, 5), (10, 0.0, 0.9, 10, 4, 5),
            (15, 0.0, 0.9, 10, 4, 5), (17, 0.0, 0.9, 10, 4, 5),
            (25, 0.1, 0.8, 10, 4, 5), (30, 0.0, 0.9, 10, 4, 5),
            (99, 0.0, 0.9, 10, 4, 5), (7, 0.2, 0.95, 0, 10, 1)]
    names = ["before t0 the sparsity is s_i", "at t0 the sparsity is s_i",
             "one dt after t0: s_f + (s_i - s_f)(1 - 1/4)^3",
             "between updates it holds the last value",
             "with s_i > 0", "at t0 + n dt it reaches s_f",
             "after the ramp it stays s_f",
             "dt = 1 updates every step"]
    cases = [(nm, a, ref(*a)) for nm, a in zip(names, args)]
    run_cases("cubic_sparsity", cubic_sparsity, cases,
              compare=lambda got, want: isinstance(got, (int, float))
              and math.isclose(got, want, abs_tol=1e-9))

"""Check functions for the labs: hand-made inputs, clear pass/fail messages (spec §5).

Each `check_*` runs the student's function on small cases whose answers are known,
prints one line per case, and raises `CheckFailed` if any case fails, so that a
blank or wrong answer can never pass silently.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from .decode import greedy_decode
from .text import VOCAB


class CheckFailed(AssertionError):
    """Raised by a check when the student's code gives a wrong answer."""


def run_cases(title: str, fn: Callable, cases: list[tuple[str, tuple, Any]],
              compare: Callable[[Any, Any], bool] = lambda a, b: a == b) -> None:
    """Call `fn(*args)` for each (name, args, expected); report and raise on failure."""
    failures = []
    for name, args, expected in cases:
        try:
            got = fn(*args)
        except NotImplementedError:
            failures.append(f"{name}: not implemented yet (fill in the code between "
                            "the fences)")
            continue
        except Exception as exc:  # the student's code crashed: say how
            failures.append(f"{name}: raised {type(exc).__name__}: {exc}")
            continue
        if compare(got, expected):
            print(f"  ok    {name}")
        else:
            failures.append(f"{name}: expected {expected!r}, got {got!r}")
    for f in failures:
        print(f"  FAIL  {f}")
    if failures:
        raise CheckFailed(f"{title}: {len(failures)} of {len(cases)} cases failed; "
                          f"first: {failures[0]}")
    print(f"{title}: all {len(cases)} cases passed")


def spelled_frames(pattern: str, vocab: list[str]) -> torch.Tensor:
    """'hh_e' -> log-probs (T, V) whose argmax spells the pattern ('_' = blank)."""
    index = {c: i for i, c in enumerate(vocab)}
    ids = [0 if c == "_" else index[c] for c in pattern]
    lp = torch.full((len(ids), len(vocab)), -10.0)
    lp[torch.arange(len(ids)), torch.tensor(ids)] = -0.01
    return lp


def check_best_path(best_path: Callable[[torch.Tensor, int], str]) -> None:
    """Lab 1: `best_path(log_probs (T, V), length) -> str`, greedy CTC decoding."""
    cases = [
        ("repeats merge", (spelled_frames("ggooo", VOCAB), 5), "go"),
        ("blanks are dropped", (spelled_frames("_g__o_", VOCAB), 6), "go"),
        ("a blank separates a real double letter",
         (spelled_frames("hhe_llll_l_oo", VOCAB), 13), "hello"),
        ("all blanks give the empty string", (spelled_frames("____", VOCAB), 4), ""),
        ("spaces are characters", (spelled_frames("a_  _b", VOCAB), 6), "a b"),
        ("frames beyond `length` are padding", (spelled_frames("on__xyz", VOCAB), 4),
         "on"),
    ]
    gen = torch.Generator().manual_seed(0)
    for k in range(5):  # random log-probs against the package's decoder
        lp = torch.randn(40, len(VOCAB), generator=gen).log_softmax(-1)
        lp[:, 0] += 1.5  # blank-heavy, as CTC outputs are
        length = 30 + k
        want = greedy_decode(lp[None], torch.tensor([length]))[0]
        cases.append((f"random log-probs #{k} match course_lib.greedy_decode",
                      (lp, length), want))
    run_cases("best_path", best_path, cases)

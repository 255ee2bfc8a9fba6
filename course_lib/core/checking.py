"""Check functions for the labs: hand-made inputs, clear pass/fail messages (spec §5).

Each `check_*` runs the student's function on small cases whose answers are known,
prints one line per case, and raises `CheckFailed` if any case fails, so that a
blank or wrong answer can never pass silently.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Callable

import torch

from .decode import greedy_decode
from .text import VOCAB


class CheckFailed(AssertionError):
    """Raised by a check when the student's code gives a wrong answer."""


def _short(value: Any, limit: int = 200) -> str:
    """repr(value), cut to `limit` characters: a failing case's line stays readable."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def earlier_failures(builds_on: dict[str, Callable[[], None]] | None) -> list[str]:
    """The names in `builds_on` whose check (a call with no argument) fails, run
    quietly: the earlier exercises a failing answer may be failing because of."""
    failed = []
    for name, check in (builds_on or {}).items():
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                check()
        except CheckFailed:
            failed.append(name)
    return failed


def run_cases(title: str, fn: Callable, cases: list[tuple[str, tuple, Any]],
              compare: Callable[[Any, Any], bool] = lambda a, b: a == b,
              builds_on: dict[str, Callable[[], None]] | None = None) -> None:
    """Call `fn(*args)` for each (name, args, expected); report and raise on failure.

    `builds_on` names the earlier exercises `fn` calls, each with a no-argument
    call of its check: when `fn` fails and one of them fails too, the message says
    to fix that one first, so that a later exercise is not blamed for its mistake.
    """
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
            failures.append(f"{name}: expected {_short(expected)}, got {_short(got)}")
    for f in failures:
        print(f"  FAIL  {f}")
    if failures:
        earlier = earlier_failures(builds_on)
        blame = ""
        if earlier:
            verb = "fails its own check" if len(earlier) == 1 else "fail their checks"
            blame = (f" (but {' and '.join(earlier)}, which {title} calls, {verb}: "
                     "fix that first)")
        raise CheckFailed(f"{title}: {len(failures)} of {len(cases)} cases failed; "
                          f"first: {failures[0]}{blame}")
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

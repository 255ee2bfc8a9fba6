"""Lab 3.4's checks: removing units of a Linear pair and of a GRU.

Each check runs the student's function on small hand-made cases (`run_cases`) and
raises `CheckFailed` with the first failing case (spec §5).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ...core.checking import run_cases
from . import units as reference  # the package's own functions, to compare with


def _compare_layers(got: Any, want: tuple, names: tuple[str, ...]) -> list[str]:
    """Shape and value differences between the student's layers and the reference's."""
    if not isinstance(got, tuple) or len(got) != len(want):
        return [f"expected a tuple of {len(want)} layers, got {type(got).__name__}"]
    problems = []
    for label, g, w in zip(names, got, want):
        for attr in ("batch_first", "bidirectional", "num_layers"):  # GRU settings
            if hasattr(w, attr) and getattr(g, attr, None) != getattr(w, attr):
                problems.append(f"{label} was built with {attr}="
                                f"{getattr(g, attr, None)}, expected {getattr(w, attr)}"
                                " (the model feeds (batch, time, features))")
        for pname, wp in w.named_parameters():
            gp = getattr(g, pname, None)
            if not isinstance(gp, torch.Tensor):
                problems.append(f"{label} has no {pname}")
            elif gp.shape != wp.shape:
                problems.append(f"{label}.{pname} has shape {tuple(gp.shape)}, "
                                f"expected {tuple(wp.shape)}")
            elif not torch.allclose(gp.detach(), wp.detach()):
                problems.append(f"{label}.{pname} holds the wrong entries")
    return problems


def _removal_problems(got: Any, want: tuple, original: tuple, names: tuple[str, ...],
                      run: Callable[[tuple], torch.Tensor], units: int,
                      keep: list[int], dead: list[int]) -> list[str]:
    """Layer differences; and if only dead units went, outputs must stay the same."""
    problems = _compare_layers(got, want, names)
    only_dead = set(range(units)) - set(keep) <= set(dead)
    if not problems and only_dead and not torch.allclose(run(got), run(original),
                                                         atol=1e-6):
        problems.append("outputs changed although only dead units were removed")
    return problems


def _zero_units(rows: list[torch.Tensor], units: list[int], block: int) -> None:
    """Zero the incoming weights of `units` (in each of the stacked row blocks)."""
    with torch.no_grad():
        for t in rows:
            for b in range(t.shape[0] // block):
                t[[b * block + u for u in units]] = 0.0


def check_remove_linear_units(remove: Callable[..., tuple]) -> None:
    """Lab 3.4: `remove(fc1, fc2, keep) -> (fc1', fc2')` for fc2(relu(fc1(x)))."""
    ref = reference.remove_linear_units
    def trial(keep: list[int], dead: list[int]) -> str:
        torch.manual_seed(1)
        fc1, fc2 = torch.nn.Linear(4, 6), torch.nn.Linear(6, 3)
        _zero_units([fc1.weight, fc1.bias], dead, 6)
        x = torch.randn(5, 4)
        idx = torch.tensor(keep)
        problems = _removal_problems(
            remove(fc1, fc2, idx), ref(fc1, fc2, idx), (fc1, fc2),
            ("fc1", "fc2"), lambda l: l[1](torch.relu(l[0](x))), 6, keep, dead)
        return "; ".join(problems[:2]) or "ok"

    cases = [
        ("keep every unit: same layers, same outputs", ([0, 1, 2, 3, 4, 5], []), "ok"),
        ("remove units 1 and 4 whose weights are zero: outputs unchanged",
         ([0, 2, 3, 5], [1, 4]), "ok"),
        ("remove live units 0, 2 and 3: rows of fc1, columns of fc2", ([1, 4, 5], []),
         "ok"),
    ]
    run_cases("remove_linear_units", trial, cases)


def check_remove_gru_units(remove: Callable[..., tuple]) -> None:
    """Lab 3.4: `remove(gru, consumer, keep) -> (gru', consumer')`, one-layer GRU."""
    ref = reference.remove_gru_units
    def trial(keep: list[int], dead: list[int]) -> str:
        torch.manual_seed(2)
        gru, head = torch.nn.GRU(3, 5, batch_first=True), torch.nn.Linear(5, 2)
        _zero_units([gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0,
                     gru.bias_hh_l0], dead, 5)
        x = torch.randn(2, 7, 3)  # (batch, time, features)
        idx = torch.tensor(keep)
        problems = _removal_problems(
            remove(gru, head, idx), ref(gru, head, idx), (gru, head),
            ("gru", "consumer"), lambda l: l[1](l[0](x)[0]), 5, keep, dead)
        if any("weight_ih" in p and "shape" in p for p in problems):
            problems.append("hint: the gates are 3 stacked blocks (r, z, n) of H rows")
        return "; ".join(problems[:3]) or "ok"

    cases = [
        ("keep every unit: same GRU, same outputs", ([0, 1, 2, 3, 4], []), "ok"),
        ("remove unit 2 whose weights and biases are zero: outputs unchanged",
         ([0, 1, 3, 4], [2]), "ok"),
        ("remove live units 0 and 3: gate rows, recurrent and consumer columns",
         ([1, 2, 4], []), "ok"),
    ]
    run_cases("remove_gru_units", trial, cases)

"""Check functions for the labs: hand-made inputs, clear pass/fail messages (spec §5).

Each `check_*` runs the student's function on small cases whose answers are known,
prints one line per case, and raises `CheckFailed` if any case fails, so that a
blank or wrong answer can never pass silently.
"""

from __future__ import annotations

from typing import Any, Callable

import torch


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


def _frames(pattern: str, vocab: list[str]) -> torch.Tensor:
    """'hh_e' -> log-probs (T, V) whose argmax spells the pattern ('_' = blank)."""
    index = {c: i for i, c in enumerate(vocab)}
    ids = [0 if c == "_" else index[c] for c in pattern]
    lp = torch.full((len(ids), len(vocab)), -10.0)
    lp[torch.arange(len(ids)), torch.tensor(ids)] = -0.01
    return lp


def check_best_path(best_path: Callable[[torch.Tensor, int], str]) -> None:
    """Lab 1: `best_path(log_probs (T, V), length) -> str`, greedy CTC decoding."""
    from .decode import greedy_decode
    from .text import VOCAB

    cases = [
        ("repeats merge", (_frames("ggooo", VOCAB), 5), "go"),
        ("blanks are dropped", (_frames("_g__o_", VOCAB), 6), "go"),
        ("a blank separates a real double letter",
         (_frames("hhe_llll_l_oo", VOCAB), 13), "hello"),
        ("all blanks give the empty string", (_frames("____", VOCAB), 4), ""),
        ("spaces are characters", (_frames("a_  _b", VOCAB), 6), "a b"),
        ("frames beyond `length` are padding", (_frames("on__xyz", VOCAB), 4), "on"),
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


# ----------------------------------------------------------------------------------
# Lab 3.1: weight pruning.

def _same_mask(got: Any, want: torch.Tensor) -> bool:
    return (isinstance(got, torch.Tensor) and got.dtype == torch.bool
            and got.shape == want.shape and torch.equal(got, want))


def check_magnitude_mask(magnitude_mask: Callable[[torch.Tensor, float], torch.Tensor]
                         ) -> None:
    """Lab 3.1: `magnitude_mask(w, sparsity) -> bool keep-mask` (True = kept)."""
    from .pruning import magnitude_mask as ref

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


def check_global_masks(global_masks: Callable[[dict, float], dict]) -> None:
    """Lab 3.1: `global_masks({name: w}, sparsity) -> {name: mask}`, one threshold."""
    from .pruning import global_masks as ref

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
    run_cases("global_masks", global_masks, cases, compare=same)


def check_prune_model(prune_model: Callable[[torch.nn.Module, float], dict]) -> None:
    """Lab 3.1: `prune_model(model, sparsity)` prunes weights in place, not biases."""
    from .models import CTCModel, ModelConfig
    from .pruning import masks_for

    def trial(sparsity: float) -> str:
        torch.manual_seed(0)
        model = CTCModel(ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=2))
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        want = masks_for(model, sparsity, "global")
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
    run_cases("prune_model", trial, cases)


def check_cubic_sparsity(cubic_sparsity: Callable[..., float]) -> None:
    """Lab 3.1: `cubic_sparsity(step, s_i, s_f, t0, n, dt)`, Zhu & Gupta's schedule."""
    import math

    from .pruning import cubic_sparsity as ref

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


# ----------------------------------------------------------------------------------
# Lab 3.2: quantization.

def _codes_close(got: Any, want: tuple) -> bool:
    """(q, scale, zero) agree: scales within 1e-6, zeros equal, codes equal (a code may
    differ by one in under 1 % of entries: w / s and w * (1 / s) round differently
    right at a boundary)."""
    if not (isinstance(got, tuple) and len(got) == 3):
        return False
    q, s, z = (torch.as_tensor(t) for t in got)
    wq, ws, wz = want
    if q.shape != wq.shape or s.numel() != ws.numel() or z.numel() != wz.numel():
        return False
    if not torch.allclose(s.flatten().double(), ws.flatten().double(), rtol=1e-6):
        return False
    if not torch.equal(z.flatten().round().long(), wz.flatten().round().long()):
        return False
    diff = (q.long() - wq.long()).abs()
    return int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 0.01


def check_quantize(quantize: Callable[[torch.Tensor, int, bool], tuple]) -> None:
    """Lab 3.2: `quantize(w, bits, per_channel) -> (q, scale, zero)`, asymmetric."""
    from .quantize import QuantSpec, qparams
    from .quantize import quantize as ref_q

    def ref(w: torch.Tensor, bits: int, pc: bool) -> tuple:
        spec = QuantSpec(bits, symmetric=False, per_channel=pc)
        s, z = qparams(w, spec)
        return ref_q(w, s, z, spec), s, z

    gen = torch.Generator().manual_seed(0)
    w = torch.randn(5, 7, generator=gen) * torch.tensor([0.1, 1, 3, 0.5, 2])[:, None]

    def via_torch(pc: bool) -> tuple:  # torch's own kernels on the same (s, z)
        s, z = ref(w, 8, pc)[1:]
        if pc:
            q = torch.quantize_per_channel(w, s.flatten().double(), z.flatten().long(),
                                           0, torch.quint8)
        else:
            q = torch.quantize_per_tensor(w, float(s), int(z), torch.quint8)
        return q.int_repr().to(torch.int32), s, z

    cases = [
        ("4-bit on [-1, 2]: s = 3/15, z = 5",
         (torch.tensor([-1.0, 0.0, 0.6, 2.0]), 4, False),
         (torch.tensor([0, 5, 8, 15]), torch.tensor(0.2), torch.tensor(5.0))),
        ("a constant positive tensor (range widened to include 0)",
         (torch.full((3,), 0.7), 8, False), ref(torch.full((3,), 0.7), 8, False)),
        ("an all-negative tensor", (-torch.rand(4, 3, generator=gen) - 0.5, 6, False),
         None),
        ("an all-zero tensor (zero range: no division by zero)",
         (torch.zeros(2, 3), 8, True), ref(torch.zeros(2, 3), 8, True)),
        ("8-bit per-tensor matches torch.quantize_per_tensor", (w, 8, False),
         via_torch(False)),
        ("8-bit per-channel matches torch.quantize_per_channel", (w, 8, True),
         via_torch(True)),
    ]
    cases[2] = (cases[2][0], cases[2][1], ref(*cases[2][1]))
    for bits in (2, 3, 5, 7):
        cases.append((f"{bits}-bit per-channel on random rows", (w, bits, True),
                      ref(w, bits, True)))
    run_cases("quantize", quantize, cases, compare=_codes_close)


def check_dequantize(dequantize: Callable[..., torch.Tensor]) -> None:
    """Lab 3.2: `dequantize(q, scale, zero) -> s (q - z)`, and the s/2 error bound."""
    from .quantize import QuantSpec, qparams, quantize

    gen = torch.Generator().manual_seed(1)
    w = torch.randn(4, 9, generator=gen)
    spec = QuantSpec(5, symmetric=False, per_channel=True)
    s, z = qparams(w, spec)
    q = quantize(w, s, z, spec)

    def bound(got: Any, _: Any) -> bool:
        return isinstance(got, torch.Tensor) and bool(
            ((got - w).abs() <= s / 2 + 1e-6).all())

    cases = [("codes [0, 5, 8, 15], s = 0.2, z = 5",
              (torch.tensor([0, 5, 8, 15]), torch.tensor(0.2), torch.tensor(5.0)),
              torch.tensor([-1.0, 0.0, 0.6, 2.0]))]
    run_cases("dequantize", dequantize, cases,
              compare=lambda g, e: isinstance(g, torch.Tensor) and torch.allclose(
                  g.float(), e, atol=1e-6))
    run_cases("dequantize (round trip)", dequantize,
              [("5-bit per-channel round trip is within s/2 of w", (q, s, z), None)],
              compare=bound)


def check_fake_quant_ste(fake_quant: Callable[..., torch.Tensor]) -> None:
    """Lab 3.2: `fake_quant(w, scale, zero, qmin, qmax)`: round forward, STE back."""

    def trial(values: list[float], scale: float, qmin: int, qmax: int) -> tuple:
        w = torch.tensor(values, requires_grad=True)
        out = fake_quant(w, torch.tensor(scale), torch.tensor(0.0), qmin, qmax)
        out.sum().backward()
        grad = None if w.grad is None else [round(g, 6) for g in w.grad.tolist()]
        return [round(v, 6) for v in out.detach().tolist()], grad

    cases = [
        ("forward rounds to the grid", ([0.26, -0.49, 0.04], 0.1, -10, 10),
         ([0.3, -0.5, 0.0], [1.0, 1.0, 1.0])),
        ("gradient passes straight through rounding", ([0.12, 0.77], 0.5, -4, 4),
         ([0.0, 1.0], [1.0, 1.0])),
        ("clipped values get no gradient", ([-3.0, 0.2, 5.0], 0.1, -10, 10),
         ([-1.0, 0.2, 1.0], [0.0, 1.0, 0.0])),
    ]
    run_cases("fake_quant", trial, cases)


def _compare_layers(got: Any, want: tuple, names: tuple[str, ...]) -> list[str]:
    """Shape and value differences between the student's layers and the reference's."""
    if not isinstance(got, tuple) or len(got) != len(want):
        return [f"expected a tuple of {len(want)} layers, got {type(got).__name__}"]
    problems = []
    for label, g, w in zip(names, got, want):
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
    from .neurons import remove_linear_units

    def trial(keep: list[int], dead: list[int]) -> str:
        torch.manual_seed(1)
        fc1, fc2 = torch.nn.Linear(4, 6), torch.nn.Linear(6, 3)
        _zero_units([fc1.weight, fc1.bias], dead, 6)
        x = torch.randn(5, 4)
        idx = torch.tensor(keep)
        problems = _removal_problems(
            remove(fc1, fc2, idx), remove_linear_units(fc1, fc2, idx), (fc1, fc2),
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
    from .neurons import remove_gru_units

    def trial(keep: list[int], dead: list[int]) -> str:
        torch.manual_seed(2)
        gru, head = torch.nn.GRU(3, 5, batch_first=True), torch.nn.Linear(5, 2)
        _zero_units([gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0,
                     gru.bias_hh_l0], dead, 5)
        x = torch.randn(2, 7, 3)  # (batch, time, features)
        idx = torch.tensor(keep)
        problems = _removal_problems(
            remove(gru, head, idx), remove_gru_units(gru, head, idx), (gru, head),
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


def check_kd_loss(kd_loss: Callable[..., torch.Tensor]) -> None:
    """Lab 3.3: `kd_loss(student, teacher, lengths, T)`: T² KL(teacher‖student)."""
    from .distill import kd_kl

    gen = torch.Generator().manual_seed(3)
    s = torch.randn(2, 5, 4, generator=gen)  # (batch, frames, vocab) logits
    t = torch.randn(2, 5, 4, generator=gen)
    lengths = torch.tensor([5, 2])
    s_pad = s.clone()
    s_pad[1, 2:] = 50.0  # garbage where the second utterance is padding

    def trial(student: torch.Tensor, teacher: torch.Tensor, n: torch.Tensor,
              temp: float) -> float:
        out = kd_loss(student, teacher, n, temp)
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            raise TypeError(f"expected a scalar tensor, got {out!r}")
        return round(float(out), 5)

    def ref(student: torch.Tensor, teacher: torch.Tensor, n: torch.Tensor,
            temp: float) -> float:
        return round(float(kd_kl(student, teacher, n, temp)), 5)

    # torch's own KL on the valid frames: KL(teacher || student) = kl_div(log_s, log_t)
    valid = [(0, i) for i in range(5)] + [(1, i) for i in range(2)]
    ls = torch.stack([torch.log_softmax(s[b, i] / 2.0, -1) for b, i in valid])
    lt = torch.stack([torch.log_softmax(t[b, i] / 2.0, -1) for b, i in valid])
    torch_kl = 4.0 * torch.nn.functional.kl_div(ls, lt, log_target=True,
                                                reduction="batchmean")
    cases = [
        ("identical teacher and student give zero", (t, t, lengths, 2.0), 0.0),
        ("equals T² x torch.nn.functional.kl_div on the valid frames (T = 2)",
         (s, t, lengths, 2.0), round(float(torch_kl), 5)),
        ("padded frames do not count", (s_pad, t, lengths, 2.0),
         round(float(torch_kl), 5)),
        ("KL(teacher || student), not the reverse (T = 1)", (s, t, lengths, 1.0),
         ref(s, t, lengths, 1.0)),
        ("T² scaling (T = 4)", (s, t, lengths, 4.0), ref(s, t, lengths, 4.0)),
    ]
    run_cases("kd_loss", trial, cases, compare=lambda g, e: abs(g - e) <= 1e-4)


# ----------------------------------------------------------------------------------
# Lab 3.5: shards, checksums, lazy loading.

def _lab_state() -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """A hand-made 'model': four named tensors in three parts."""
    state = {"enc.weight": torch.arange(12, dtype=torch.float32).view(3, 4),
             "enc.bias": torch.tensor([0.5, -1.0, 2.0]),
             "dec.weight": torch.full((2, 3), 0.25),
             "head.bias": torch.tensor([7.0, 8.0])}
    parts = {"enc": ["enc.weight", "enc.bias"], "dec": ["dec.weight"],
             "head": ["head.bias"]}
    return state, parts


def _shard_problems(folder: Any, index: Any, state: dict, parts: dict) -> list[str]:
    """What is wrong with a written shard folder and its index (empty: nothing)."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file

    from .utils import sha256_file

    folder = Path(folder)
    if not isinstance(index, dict) or not isinstance(index.get("parts"), list):
        return [f"write_shards must return the index, a dict with a 'parts' list; "
                f"got {index!r}"]
    if not (folder / "index.json").exists():
        return ["no index.json in the folder"]
    if json.loads((folder / "index.json").read_text()) != index:
        return ["index.json differs from the index you returned"]
    names = [p.get("name") for p in index["parts"]]
    if names != list(parts):
        return [f"parts {names}, expected {list(parts)} in that order"]
    problems = []
    for part in index["parts"]:
        path = folder / str(part.get("file"))
        if not path.is_file():
            problems.append(f"part {part['name']!r}: file {part.get('file')!r} missing")
            continue
        if part.get("sha256") != sha256_file(path):
            problems.append(f"part {part['name']!r}: 'sha256' is not the sha256 of "
                            "the file's bytes")
        tensors = load_file(str(path))
        if sorted(tensors) != sorted(parts[part["name"]]):
            problems.append(f"part {part['name']!r} holds {sorted(tensors)}, expected "
                            f"{sorted(parts[part['name']])}")
            continue
        for k, t in tensors.items():
            if not torch.equal(t, state[k]):
                problems.append(f"tensor {k!r} changed on the way to disk")
            info = part.get("tensors", {}).get(k, {})
            shape = list(state[k].shape)
            if info.get("shape") != shape or info.get("dtype") != "float32":
                problems.append(f"index entry of {k!r} is {info}, expected shape "
                                f"{shape} and dtype 'float32'")
    return problems


def check_write_shards(write_shards: Callable[[dict, dict, Any], dict]) -> None:
    """Lab 3.5: `write_shards(state, parts, folder) -> index`, files + manifest."""
    import tempfile

    state, parts = _lab_state()

    def trial(order: list[str]) -> str:
        chosen = {p: parts[p] for p in order}
        with tempfile.TemporaryDirectory() as folder:
            index = write_shards(state, chosen, folder)
            problems = _shard_problems(folder, index, state, chosen)
        return problems[0] if problems else "ok"

    cases = [("three parts: files, checksums, tensors and index",
              (["enc", "dec", "head"],), "ok"),
             ("the index keeps the parts in the given order",
              (["head", "enc", "dec"],), "ok")]
    run_cases("write_shards", trial, cases)


def reference_write_shards(state: dict, parts: dict, folder: Any) -> dict:
    """Lab 3.5's shard writer, the reference: the format `check_write_shards` and
    `check_lazy_shards` expect (one safetensors file per part, `index.json`)."""
    import json
    from pathlib import Path

    from safetensors.torch import save_file

    from .utils import sha256_file

    folder = Path(folder)
    index = {"parts": []}
    for name, keys in parts.items():
        save_file({k: state[k] for k in keys}, str(folder / f"{name}.safetensors"))
        index["parts"].append({
            "name": name, "file": f"{name}.safetensors",
            "sha256": sha256_file(folder / f"{name}.safetensors"),
            "tensors": {k: {"shape": list(state[k].shape), "dtype": "float32"}
                        for k in keys}})
    (folder / "index.json").write_text(json.dumps(index))
    return index


def check_lazy_shards(lazy_shards: Callable[[Any], Any]) -> None:
    """Lab 3.5: `lazy_shards(folder)` -> an object whose `.load(name)` reads one part,
    after checking its sha256, only when asked."""
    import tempfile
    from pathlib import Path

    state, parts = _lab_state()

    def trial(case: str) -> str:
        with tempfile.TemporaryDirectory() as folder:
            reference_write_shards(state, parts, folder)
            shards = lazy_shards(folder)
            # Damage one part *after* opening: a lazy loader has not read it yet.
            f = Path(folder, "dec.safetensors")
            data = bytearray(f.read_bytes())
            data[-1] ^= 0x01  # one flipped bit in the last weight
            f.write_bytes(bytes(data))
            if case == "good":
                got = shards.load("enc")
                if sorted(got) != sorted(parts["enc"]) or not all(
                        torch.equal(got[k], state[k]) for k in parts["enc"]):
                    return f"load('enc') gave {got!r}"
                return "ok"
            if case == "tampered":
                try:
                    shards.load("dec")
                except ValueError:
                    return "ok"
                return "load('dec') of a tampered file did not raise ValueError"
            Path(folder, "head.safetensors").unlink()
            try:
                shards.load("head")
            except (ValueError, FileNotFoundError):
                return "ok"
            return "load('head') of a missing file did not raise"

    cases = [("opening reads only the index; load('enc') gives its tensors",
              ("good",), "ok"),
             ("a tampered byte is caught by the checksum (ValueError)",
              ("tampered",), "ok"),
             ("a missing shard is refused", ("missing",), "ok")]
    run_cases("lazy_shards", trial, cases)

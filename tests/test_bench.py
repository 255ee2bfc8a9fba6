"""Chapter 4 benchmark: the side-by-side timing loop and its table (no timing
is asserted: speed depends on the machine)."""

import torch

from course_lib import bench


def test_side_by_side_times_every_recognizer_and_reports_ratios():
    calls = {"baseline": 0, "other": 0}

    def make(name):
        def fn(w):
            calls[name] += 1
            return "x"
        return fn

    waves = [torch.zeros(16000), torch.zeros(8000)]
    lat = bench.side_by_side({n: make(n) for n in calls}, waves, rounds=2)
    assert calls == {"baseline": 1 + 2 * 2, "other": 1 + 2 * 2}  # warm-up + rounds
    assert set(lat) == {"baseline", "other"}
    assert all(v.median_ms >= 0 and v.repeats == 2 for v in lat.values())
    text = bench.table(lat)
    assert text.splitlines()[1].startswith("baseline") and "1.00x" in text


def test_side_by_side_takes_turns_on_every_wave():
    order = []
    waves = [torch.zeros(160), torch.zeros(320)]
    fns = {n: (lambda w, n=n: order.append((n, w.numel()))) for n in ("a", "b")}
    bench.side_by_side(fns, waves, rounds=1, warmup=0)
    # each wave goes through both functions before the next wave: a slow moment of
    # the machine hits both, not a whole block of one function's calls
    assert order == [("a", 160), ("b", 160), ("a", 320), ("b", 320)]


def test_interleaved_ms_takes_turns_and_gives_medians():
    from course_lib.core.metrics import interleaved_ms

    order = []
    ms = interleaved_ms({k: (lambda k=k: order.append(k)) for k in (1, 2)},
                        repeats=3, warmup=1)
    assert order == [1, 2] * 4  # one warm-up round, then three rounds in turn
    assert set(ms) == {1, 2} and all(v >= 0 for v in ms.values())

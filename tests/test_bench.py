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

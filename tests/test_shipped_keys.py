"""Every shipped result's cache key, pinned: a refactor must not retrain anything.

Each zoo function computes its result's key from its configuration (and its
teacher's file) and takes the shipped file only when the file records that key. A
change that moves a default, renames a field or reorders a config would silently
make the package retrain hours of results; this test names the result instead.
"""

import pytest

import course_lib as cl
from course_lib import zoo
from course_lib.techniques.distillation.students import (METHODS, SCARCE,
                                                       SCARCE_METHODS, DistillConfig)
from course_lib.zoo import baseline, deepcomp, lowrank, neurons, pruned, students

# The running example v2's shipped results and the keys their files record.
PINNED = {
    "baseline": "7be1586207e4", "pruned90": "42b3193aa984",
    "neurons": "4d3bfb347d2c", "lowrank": "30c7d993b19f",
    "deepcomp": "62e4ae6439bf", "student-deep": "fae844719ac0",
    "student-ctc": "0e8b388e5afb", "student-frame": "60bc9a40da95",
    "student-sequence": "842444f08a09", "student-frame-sequence": "0d92b3ad92ca",
    "student-ctc-2000": "542c62004b69", "student-sequence-2000": "e1ab1260feac",
}


class _NotShipped(Exception):
    """A zoo function asked for a result whose shipped file does not fit its key."""


def test_every_shipped_result_keeps_its_key_and_its_file_fits(cache, monkeypatch):
    assert set(PINNED) == set(zoo.SHIPPED), "pin the key of every shipped result"
    real = zoo.cached_result
    seen: dict[str, str] = {}

    def spy(kind, key, filename, make, load, shipped=None, plain=("format",),
            match="result_key"):
        seen[shipped] = key
        if not zoo.shipped_fits(shipped, key, match, plain):
            raise _NotShipped(shipped)
        return real(kind, key, filename, make, load, shipped, plain, match)

    for module in (baseline, deepcomp, lowrank, neurons, pruned, students):
        monkeypatch.setattr(module, "cached_result", spy)
    makers = [pruned.long_pruned_baseline, neurons.neuron_pruned_baseline,
              lowrank.lowrank_baseline, deepcomp.deep_compressed_baseline,
              deepcomp.deep_compressed_student]
    for method in METHODS:
        makers.append(lambda progress, m=method: students.distilled_student(
            DistillConfig(method=m), progress=progress))
    for method in SCARCE_METHODS:
        makers.append(lambda progress, m=method: students.distilled_student(
            DistillConfig(method=m), train_limit=SCARCE, progress=progress))
    for make in makers:
        try:
            make(progress=False)
        except _NotShipped as exc:
            pytest.fail(f"{exc}: its shipped file no longer fits its key "
                        f"{seen[str(exc)]} (was {PINNED[str(exc)]})")
    assert seen == PINNED
    assert baseline.baseline_key() == PINNED["baseline"] and cl.shipped_matches()

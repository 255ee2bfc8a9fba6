"""One verdict rule and one table for every chapter's targets (chapter 2)."""

import pytest

import course_lib as cl
from course_lib.core.targets import Target, Targets


def test_each_kind_of_target_gets_its_verdict():
    assert Target("test WER", 0.042, 0.05).verdict == "met"
    assert Target("test WER", 0.051, 0.05).verdict == "TARGET NOT MET"
    assert Target("speed-up", 1.4, 1.5, at_most=False, unit="x").met is False
    assert Target("parameters", 1.2e6, unit="").verdict == "no target"
    # paired: the interval's upper end decides, not the point estimate
    inside = Target.paired_delta("int8", dict(delta=0.001, lo=-0.002, hi=0.004), 0.005)
    unsure = Target.paired_delta("int8", dict(delta=0.001, lo=-0.002, hi=0.006), 0.005)
    assert inside.met and not unsure.met
    assert inside.met == cl.metrics.within(dict(hi=0.004), 0.005)
    with pytest.raises(ValueError, match="needs its interval"):
        Target("x", 0.1, 0.2, paired=True)
    with pytest.raises(ValueError, match="unit 'dB'"):
        Target("x", 0.1, unit="dB")


def test_the_table_reads_the_same_as_text_and_html():
    table = Targets([Target("test WER", 0.042, 0.05, interval=(0.04, 0.045)),
                     Target.paired_delta("int8 vs fp32",
                                         dict(delta=0.003, lo=-0.001, hi=0.007), 0.005),
                     Target("file / fp32", 0.26, unit="%")])
    lines = table.text().splitlines()
    assert lines[0].split()[:2] == ["target", "measured"]
    assert lines[2].startswith("test WER") and lines[2].endswith("met")
    assert "4.20 %" in lines[2] and "[4.00 %, 4.50 %]" in lines[2]
    assert "<= 5.00 %" in lines[2]
    assert "+0.30" in lines[3] and "[-0.10, +0.70]" in lines[3]
    assert lines[3].endswith("TARGET NOT MET") and lines[4].endswith("no target")
    assert [t.name for t in table.missed] == ["int8 vs fp32"]
    page = table._repr_html_()
    assert page.count("<tr") == 4 and 'class="target-missed"' in page
    assert table["test WER"].met
    with pytest.raises(ValueError, match="share a name"):
        Targets([Target("a", 1.0), Target("a", 2.0)])

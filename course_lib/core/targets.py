"""A chapter's targets as data, judged by one rule and shown one way (chapter 2).

Every chapter ends by comparing what it measured with its targets. `Target` holds
one comparison: the measured value, its limit (or none: a reported number), the
direction, and, for "no worse than the baseline + x", the paired bootstrap interval
of the difference (`Target.paired`), whose upper end must be within the limit
(`metrics.within`: the data must rule out a larger loss). `Targets` renders them as
one table, as text and as HTML in a notebook, with "met", "TARGET NOT MET" or
"no target" in its last column.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ledger import html_table, text_table
from .metrics import within

MET, NOT_MET, NO_TARGET = "met", "TARGET NOT MET", "no target"
UNITS = ("%", "points", "x", "s", "min", "")


@dataclass(frozen=True)
class Target:
    """One measured value against its limit: `unit` "%" and "points" are fractions
    (shown times 100), "x" a ratio, "s" and "min" times, "" a plain number."""

    name: str
    value: float
    limit: float | None = None  # None: reported without a target
    at_most: bool = True  # the value must be <= limit (False: >= limit)
    unit: str = "%"
    interval: tuple[float, float] | None = None  # 95 % interval, when measured
    paired: bool = False  # a paired difference: its interval's far end is judged

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"{self.name}: unit {self.unit!r} is not one of {UNITS}")
        if self.paired and self.interval is None:
            raise ValueError(f"{self.name}: a paired target needs its interval")

    @classmethod
    def paired_delta(cls, name: str, delta: dict[str, float], limit: float
                     ) -> Target:
        """"WER <= baseline + limit" from `metrics.paired_wer(refs, model, base)`."""
        return cls(name, delta["delta"], limit, unit="points",
                   interval=(delta["lo"], delta["hi"]), paired=True)

    @property
    def met(self) -> bool | None:
        """True or False against the limit; None when there is no target."""
        if self.limit is None:
            return None
        if self.paired:
            lo, hi = self.interval
            return within(dict(hi=hi), self.limit) if self.at_most else lo >= self.limit
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    @property
    def verdict(self) -> str:
        """"met", "TARGET NOT MET" or "no target"."""
        return NO_TARGET if self.met is None else MET if self.met else NOT_MET

    def show(self, x: float | None) -> str:
        """A value in this target's unit, e.g. "4.20 %", "+0.31", "2.0x"."""
        if x is None:
            return "-"
        if self.unit == "%":
            return f"{100 * x:.2f} %"
        if self.unit == "points":
            return f"{100 * x:+.2f}"
        if self.unit == "x":
            return f"{x:.2f}x"
        if self.unit in ("s", "min"):
            return f"{x:.1f} {self.unit}"
        return f"{x:g}"

    def cells(self) -> list[str]:
        """The row: target, measured, 95 % interval, limit, verdict."""
        interval = ("" if self.interval is None else
                    f"[{self.show(self.interval[0])}, {self.show(self.interval[1])}]")
        limit = "" if self.limit is None else (
            f"{'<=' if self.at_most else '>='} {self.show(self.limit)}")
        return [self.name, self.show(self.value), interval, limit, self.verdict]


HEAD = ["target", "measured", "95 % CI", "limit", "verdict"]


class Targets:
    """A chapter's targets: one table (text or HTML) and the list of misses."""

    def __init__(self, targets: list[Target]) -> None:
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            raise ValueError(f"two targets share a name: {names}")
        self.targets = list(targets)

    @property
    def missed(self) -> list[Target]:
        """The targets not met (a reported number without a target is not missed)."""
        return [t for t in self.targets if t.met is False]

    def __getitem__(self, name: str) -> Target:
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(f"no target named {name!r}")

    def text(self) -> str:
        """An aligned text table (for the command line and for print)."""
        return text_table([HEAD] + [t.cells() for t in self.targets], left=(0, 4))

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        """The table as notebooks and the HTML book show it."""
        classes = [{True: "target-met", False: "target-missed", None: "target-none"}[
            t.met] for t in self.targets]
        return html_table([HEAD] + [t.cells() for t in self.targets],
                          "course-targets", row_classes=classes)

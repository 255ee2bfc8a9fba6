"""The ledger: one measured record per model/technique/configuration (chapter 2).

`measure(...)` evaluates a model on the test set of unseen voices and its saved
artifact on disk, and `Ledger.add` stores the record in `cache_dir()/ledger.json`
(written atomically; a record with the same name is replaced). Every chapter adds
its rows the same way; `python -m course_lib report` prints them all.

Besides the test WER every record can say how the model does out of its
training distribution, each with a 95 % interval: with the lexicon decoder
(`wer_lexicon`), on isolated words and free strings (`wer_words`) and on the
unseen real speaker (`wer_real`). Older ledgers, without them, still load.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .corpus.grammar import REPORT_GROUP
from .example import EXAMPLE
from .metrics import count_nonzero, file_sizes, measure_latency, score
from .utils import atomic_write_json, cache_dir, sha256_file


@dataclass
class Record:
    """One ledger row. WER/CER are fractions on the test set (jiwer's convention)."""

    name: str
    chapter: str
    wer: float
    cer: float
    wer_ci95: tuple[float, float]
    params: int
    nonzero_params: int
    file_bytes: int
    compressed_bytes: int  # zlib level 9
    lzma_bytes: int
    latency_ms: float | None  # single thread, median per utterance
    rtf: float | None
    n_test: int
    artifact: str
    artifact_sha256: str
    config: dict = field(default_factory=dict)
    created: str = ""
    cer_ci95: tuple[float, float] | None = None
    wer_lexicon: float | None = None  # the same test set, lexicon decoder
    wer_lexicon_ci95: tuple[float, float] | None = None
    wer_words: float | None = None  # isolated words and free strings of the test set
    wer_words_ci95: tuple[float, float] | None = None
    wer_real: float | None = None  # the unseen real speaker
    wer_real_ci95: tuple[float, float] | None = None
    # the baseline's extra columns (chapter 1): every real speaker on his own,
    # {speaker: [wer, lo, hi]}, and the greedy WER on 400 of its training utterances
    wer_speakers: dict[str, list[float]] | None = None
    wer_fit: float | None = None
    wer_fit_ci95: tuple[float, float] | None = None


CI_FIELDS = tuple(name for name in Record.__dataclass_fields__
                  if name.endswith("_ci95"))


def _default_ledger_path() -> Path:
    return cache_dir() / EXAMPLE.ledger


class Ledger:
    """The persistent list of records, keyed by name."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path else _default_ledger_path()

    def records(self) -> list[Record]:
        """All records, in the order they were first added."""
        if not self.path.exists():
            return []
        try:
            raw = json.loads(self.path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.path}: corrupt ledger ({exc}); delete it and "
                             "re-run the chapters to rebuild it") from exc
        out = []
        for r in raw:
            for name in CI_FIELDS:  # JSON lists -> tuples
                if r.get(name) is not None:
                    r[name] = tuple(r[name])
            out.append(Record(**r))
        return out

    def add(self, record: Record) -> Record:
        """Insert or replace the record with the same name (atomic write)."""
        rows = self.records()
        names = [r.name for r in rows]
        if record.name in names:
            rows[names.index(record.name)] = record
        else:
            rows.append(record)
        atomic_write_json(self.path, [asdict(r) for r in rows])
        return record

    def get(self, name: str) -> Record:
        """The record called `name`."""
        for r in self.records():
            if r.name == name:
                return r
        raise KeyError(f"no ledger record named {name!r} in {self.path}")

    def table(self, chapters: tuple[str, ...] | None = None) -> str:
        """The ledger as a fixed-width text table: every row, or those of `chapters`."""
        return format_table([r for r in self.records()
                             if chapters is None or r.chapter in chapters])

    def view(self, chapters: tuple[str, ...] | None = None) -> LedgerView:
        """The rows of `chapters` (all if None) as a notebook shows them: two HTML
        tables that fit a book page, accuracy and cost (`print` gives the text)."""
        return LedgerView([r for r in self.records()
                           if chapters is None or r.chapter in chapters])


OUT_OF_DOMAIN = (("lexicon %", "wer_lexicon"), ("words %", "wer_words"),
                 ("real %", "wer_real"))  # the table's extra columns, when measured


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _interval(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"{100 * ci[0]:.2f}-{100 * ci[1]:.2f}"


# The ledger's columns: (heading, value of a record). The text table has them all
# (the out-of-domain ones when some record has them); the HTML view splits them in two.
SCORES = (("WER %", lambda r: _percent(r.wer)),
          ("95% CI", lambda r: _interval(r.wer_ci95)),
          ("CER %", lambda r: _percent(r.cer)))
OOD = tuple((label, lambda r, name=name: _percent(getattr(r, name)))
            for label, name in OUT_OF_DOMAIN)
COST = (("params", lambda r: f"{r.params:,}"),
        ("nonzero", lambda r: f"{r.nonzero_params:,}"),
        ("file KB", lambda r: f"{r.file_bytes / 1000:.1f}"),
        ("zlib KB", lambda r: f"{r.compressed_bytes / 1000:.1f}"),
        ("ms/utt", lambda r: "-" if r.latency_ms is None else f"{r.latency_ms:.1f}"),
        ("RTF", lambda r: "-" if r.rtf is None else f"{r.rtf:.4f}"))


def _rows(records: list[Record], columns) -> list[list[str]]:
    """Headings, then one row per record: name, chapter, then `columns`."""
    return ([["name", "ch", *(h for h, _ in columns)]]
            + [[r.name, r.chapter, *(value(r) for _, value in columns)]
               for r in records])


def text_table(rows: list[list[str]], left: tuple[int, ...] = (0,)) -> str:
    """Rows of strings, headings first -> an aligned text table with a rule under
    the headings; the columns `left` flush left, the others flush right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i in left else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def html_table(rows: list[list[str]], cls: str, caption: str = "",
               row_classes: list[str] | None = None) -> str:
    """The same rows as an HTML table of class `cls` (every cell escaped)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in rows[0])
    body = []
    for i, row in enumerate(rows[1:]):
        attr = f' class="{row_classes[i]}"' if row_classes else ""
        cells = "".join(f"<td>{html.escape(c)}</td>" for c in row)
        body.append(f"<tr{attr}>{cells}</tr>")
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<table class="{cls}">{title}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def format_table(records: list[Record]) -> str:
    """Records -> an aligned text table (WER/CER in %, sizes in KB); the columns
    of `OUT_OF_DOMAIN` appear when some record has them."""
    ood = [col for col, (_, name) in zip(OOD, OUT_OF_DOMAIN)
           if any(getattr(r, name) is not None for r in records)]
    return text_table(_rows(records, (*SCORES, *ood, *COST)))


class LedgerView:
    """Ledger rows for a notebook: an accuracy and a cost table in HTML (chapter 2).

    The text table of `format_table` is 120 to 180 characters wide; a book page at
    1280 px shows about 90, so the HTML splits the columns into two tables, each
    with the row names: what a model gets right, and what it costs.
    """

    def __init__(self, records: list[Record]) -> None:
        self.records = records

    def __str__(self) -> str:
        return format_table(self.records)

    def _repr_html_(self) -> str:
        return (html_table(_rows(self.records, (*SCORES, *OOD)), "course-ledger",
                           "accuracy: test WER (greedy) with its 95 % interval, and "
                           "out of domain")
                + html_table(_rows(self.records, COST), "course-ledger",
                             "cost: parameters, bytes on disk, one-thread latency"))


def measure(name: str, chapter: str, model: torch.nn.Module,
            artifact: str | os.PathLike, refs: list[str], hyps: list[str],
            latency_fn: Callable[[torch.Tensor], object] | None = None,
            latency_waves: list[torch.Tensor] | None = None,
            config: dict | None = None, ledger: Ledger | None = None,
            kinds: list[str] | None = None, lexicon_hyps: list[str] | None = None,
            real: tuple[list[str], list[str]] | None = None,
            speakers: dict[str, tuple[list[str], list[str]]] | None = None,
            fit: tuple[list[str], list[str]] | None = None) -> Record:
    """Measure one model + artifact and add the record to the ledger (chapter 2).

    `hyps` are the model's transcripts of the test references `refs`; the latency
    is measured on `latency_waves` with `latency_fn` (waveform -> transcript).
    Optional, each scored with its interval: `kinds` (each test utterance's text
    kind) gives `wer_words`, `lexicon_hyps` (the same utterances decoded with the
    lexicon) `wer_lexicon`, `real` (refs, hyps of the unseen real speaker)
    `wer_real`, `speakers` ({speaker: (refs, hyps)}) `wer_speakers`, and `fit`
    (refs, hyps of training utterances) `wer_fit`.
    """
    wer, wer_ci = score(refs, hyps)
    cer, cer_ci = score(refs, hyps, unit="char")
    scores: dict = dict(cer_ci95=cer_ci)
    if lexicon_hyps is not None:
        scores["wer_lexicon"], scores["wer_lexicon_ci95"] = score(refs, lexicon_hyps)
    if kinds is not None:
        if len(kinds) != len(refs):
            raise ValueError(f"{len(kinds)} kinds for {len(refs)} test utterances")
        words = [i for i, k in enumerate(kinds) if REPORT_GROUP[k] == "words"]
        if words:
            scores["wer_words"], scores["wer_words_ci95"] = score(
                [refs[i] for i in words], [hyps[i] for i in words])
    if real is not None:
        scores["wer_real"], scores["wer_real_ci95"] = score(*real)
    if speakers:
        scores["wer_speakers"] = {s: [w, *ci] for s, (w, ci) in
                                  ((s, score(*pair)) for s, pair in speakers.items())}
    if fit is not None:
        scores["wer_fit"], scores["wer_fit_ci95"] = score(*fit)
    sizes = file_sizes(artifact)
    lat = None
    if latency_fn is not None and latency_waves:
        lat = measure_latency(latency_fn, latency_waves)
    record = Record(
        name=name, chapter=str(chapter), wer=wer, cer=cer, wer_ci95=wer_ci,
        params=sum(p.numel() for p in model.parameters()),
        nonzero_params=count_nonzero(model), file_bytes=sizes["file_bytes"],
        compressed_bytes=sizes["zlib_bytes"], lzma_bytes=sizes["lzma_bytes"],
        latency_ms=None if lat is None else round(lat.median_ms, 3),
        rtf=None if lat is None else round(lat.rtf, 5), n_test=len(refs),
        artifact=str(artifact), artifact_sha256=sha256_file(artifact),
        config=config or {},
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **scores)
    return (ledger or Ledger()).add(record)

"""Command line: `python -m course_lib <command>` (report, corpus, train, ...)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from ..core.corpus.build import CorpusConfig, build_corpus, repair_corpus, verify_corpus
from ..core.corpus.real import (ATTRIBUTION, REAL_DIR_ENV, checksums, fetch_real,
                                verify_real)
from ..core.evaluation import CORPUS, latency_waves
from ..core.inference import recognize
from ..core.ledger import Ledger
from ..core.metrics import side_by_side
from ..core.model import ModelConfig, count_params
from ..core.training import TrainConfig, train
from ..core.utils import atomic_copy
from ..techniques.distillation.students import METHODS, DistillConfig
from ..techniques.quantization.quant import int8_engine
from ..zoo import shipped_file
from ..zoo.baseline import MODEL, load_baseline, train_baseline
from ..zoo.deepcomp import deep_compressed_baseline, deep_compressed_student
from ..zoo.lowrank import lowrank_baseline
from ..zoo.neurons import neuron_pruned_baseline
from ..zoo.pruned import long_pruned_baseline
from ..zoo.students import distilled_student, shipped_name
from .bench import run
from .labs import generate_student_copies, init_course
from .study import ARMS, run_arm
from .study import table as study_table


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m course_lib")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report", help="print the ledger of measured results")
    r.add_argument("--json", action="store_true", help="print JSON instead of a table")
    c = sub.add_parser("corpus", help="build (or verify / repair) the corpus")
    c.add_argument("--splits", default="train,dev,test")
    c.add_argument("--verify", action="store_true")
    c.add_argument("--repair", action="store_true")
    t = sub.add_parser("train", help="train a CTC model (also under torchrun)")
    t.add_argument("--out", required=True)
    t.add_argument("--tiny", action="store_true",
                   help="a tiny corpus and model, for smoke tests")
    t.add_argument("--epochs", type=int, default=None)
    b = sub.add_parser("train-baseline",
                       help="train the running example's baseline into the cache "
                            "(COURSE_LIB_EXAMPLE picks the example)")
    b.add_argument("--ship", action="store_true",
                   help="also copy it to course_lib/artifacts/ (for maintainers)")
    d = sub.add_parser("distill", help="train the chapter 3.3 students (KD and not)")
    d.add_argument("--method", default="all",
                   help="ctc, frame, sequence, frame+sequence or all (default)")
    d.add_argument("--labelled", type=int, default=None, metavar="N",
                   help="learn from the first N transcripts only (chapter 3.3.5 ships "
                        "N=2000 for ctc and sequence)")
    d.add_argument("--ship", action="store_true",
                   help="also copy them to course_lib/artifacts/ (for maintainers)")
    for name, text in (
            ("prune-neurons", "shrink the baseline by neuron pruning (chapter 3.4)"),
            ("deep-compress", "prune 90 %%, share and Huffman-code the baseline, and "
                              "share and code the distilled student (ch. 4)"),
            ("lowrank", "factorize and fine-tune the baseline (ch. 5)")):
        sub.add_parser(name, help=text).add_argument(
            "--ship", action="store_true",
            help="also copy it to course_lib/artifacts/ (for maintainers)")
    bq = sub.add_parser("bench-int8", help="float32 vs int8 latency (chapter 3.2)")
    bq.add_argument("--n", type=int, default=100, help="test utterances to time")
    bq.add_argument("--repeats", type=int, default=3)
    be = sub.add_parser("bench", help="latency of every package model side by side "
                        "(chapter 4 benchmark)")
    be.add_argument("--n", type=int, default=24, help="test utterances to time")
    be.add_argument("--rounds", type=int, default=3)
    be.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    lab = sub.add_parser("labs", help="write the labs' nbgrader metadata and their "
                         "student copies")
    lab.add_argument("--check", action="store_true",
                     help="only check that the metadata and student copies are current")
    room = sub.add_parser("classroom", help="set up an nbgrader course folder, one "
                          "assignment per lab (book: For instructors)")
    room.add_argument("dir", type=Path, help="the course folder (created if missing)")
    fr = sub.add_parser("fetch-real", help="download the real recordings (FSDD, CC "
                        "BY-SA 4.0) at the pinned commit and check every file")
    fr.add_argument("--dest", type=Path, default=None,
                    help=f"folder to fill (default: {REAL_DIR_ENV}, else <cache>/fsdd)")
    fr.add_argument("--verify", action="store_true",
                    help="only check the folder's files against their SHA-256")
    st = sub.add_parser("study", help="train and score arms of the v3 design study "
                        "(issue 40), or print its table")
    st.add_argument("arms", nargs="*", help=f"arms to run, of {sorted(ARMS)}")
    st.add_argument("--table", action="store_true", help="print the finished arms")
    args = p.parse_args(argv)

    if args.cmd == "report":
        ledger = Ledger()
        if args.json:
            print(json.dumps([asdict(x) for x in ledger.records()], indent=2))
        else:
            print(ledger.table() if ledger.records() else
                  f"the ledger is empty ({ledger.path}): run a chapter notebook first")
        return 0
    if args.cmd == "corpus":
        corpus = build_corpus(None, splits=tuple(args.splits.split(",")))
        print(f"corpus at {corpus.root}: " + ", ".join(
            f"{s} {m['count']} utts / {m['hours']} h" for s, m in corpus.info.items()))
        if args.repair:
            print("repaired:", repair_corpus(corpus) or "nothing to repair")
        elif args.verify:
            bad = verify_corpus(corpus)
            print("damaged:", bad or "none")
            return 1 if bad else 0
        return 0
    if args.cmd == "fetch-real":
        if args.verify:
            problems = verify_real(args.dest)
            print("\n".join(problems) if problems else
                  f"all {len(checksums())} recordings match their SHA-256")
            return 1 if problems else 0
        try:
            dest = fetch_real(args.dest)
        except (OSError, ValueError) as exc:
            print(f"fetch-real: {exc}")
            return 1
        print(f"{len(checksums())} recordings checked into {dest / 'recordings'} "
              f"({ATTRIBUTION})")
        return 0
    if args.cmd == "study":
        unknown = sorted(set(args.arms) - set(ARMS))
        if unknown:
            p.error(f"unknown arms {unknown}; the study has {sorted(ARMS)}")
        for name in args.arms:
            run_arm(ARMS[name])
        print(study_table())
        return 0
    if args.cmd == "train":
        # the running example's corpus and model (`example`), the generic recipe
        corpus_cfg, model_cfg, cfg = CORPUS, MODEL, TrainConfig()
        if args.tiny:
            corpus_cfg = CorpusConfig(n_train=48, n_dev=16, n_test=16, chunk_size=48)
            model_cfg = ModelConfig(conv_channels=32, rnn_hidden=24, rnn_layers=1)
            cfg = TrainConfig(epochs=2, batch_size=8, threads=1)
        if args.epochs:
            cfg = TrainConfig(**{**asdict(cfg), "epochs": args.epochs})
        result = train(args.out, corpus_cfg, model_cfg, cfg)
        if result.path:
            print(f"saved {result.path} after {result.seconds:.1f} s")
        return 0
    if args.cmd == "train-baseline":
        path = train_baseline()
        print(f"baseline saved to {path}")
        if args.ship:
            print(f"shipped copy: {atomic_copy(path, shipped_file('baseline'))}")
        return 0
    if args.cmd in ("prune-neurons", "lowrank", "deep-compress"):
        name, make = {"prune-neurons": ("neurons", neuron_pruned_baseline),
                      "lowrank": ("lowrank", lowrank_baseline),
                      "deep-compress": ("deepcomp", deep_compressed_baseline)
                      }[args.cmd]
        model, path, history = make(allow_shipped=False)
        print(f"{count_params(model):,} parameters, dev WER "
              f"{100 * history[-1]['dev_wer']:.2f} %: {path}")
        if args.ship:
            print(f"shipped copy: {atomic_copy(path, shipped_file(name))}")
            if args.cmd == "deep-compress":  # and the pruned model it starts from
                pruned_path = long_pruned_baseline()[1]
                print(f"shipped copy: "
                      f"{atomic_copy(pruned_path, shipped_file('pruned90'))}")
        if args.cmd == "deep-compress":  # the student route too
            model, path, history = deep_compressed_student(allow_shipped=False)
            print(f"student route: {count_params(model):,} parameters, dev WER "
                  f"{100 * history[-1]['dev_wer']:.2f} %: {path}")
            if args.ship:
                ship = shipped_file("student-deep")
                print(f"shipped copy: {atomic_copy(path, ship)}")
        return 0
    if args.cmd == "distill":
        methods = METHODS if args.method == "all" else (args.method,)
        for method in methods:
            _, path, history = distilled_student(DistillConfig(method),
                                                 train_limit=args.labelled,
                                                 allow_shipped=False)
            print(f"{method}: dev WER {100 * history[-1]['dev_wer']:.2f} %: {path}",
                  flush=True)
            if args.ship:
                ship = shipped_file(shipped_name(method, args.labelled))
                print(f"shipped copy: {atomic_copy(path, ship)}")
        return 0
    if args.cmd == "bench-int8":
        model = load_baseline()
        engine = int8_engine(model)
        waves = latency_waves(args.n)
        lat = side_by_side({"fp32": lambda w: recognize(model, w),
                            "int8": lambda w: recognize(engine, w)},
                           waves, args.repeats)
        fp32, int8 = lat["fp32"], lat["int8"]
        print(f"{len(waves)} test utterances, {args.repeats} repeats, one thread, the "
              "two models in turn on each; int8: PyTorch dynamic quantization of the "
              "GRU and Linear layers")
        print(f"float32: median {fp32.median_ms:.2f} ms/utt, RTF {fp32.rtf:.4f}")
        print(f"int8   : median {int8.median_ms:.2f} ms/utt, RTF {int8.rtf:.4f}")
        print(f"int8 is {fp32.median_ms / int8.median_ms:.2f}x as fast as float32")
        return 0
    if args.cmd == "bench":
        print(run(args.n, args.rounds, onnx=not args.no_onnx))
        return 0
    if args.cmd == "labs":
        stale = generate_student_copies(check_only=args.check)
        if args.check and stale:
            print("stale student copies:", ", ".join(map(str, stale)))
            return 1
        print("student copies are current" if args.check else "student copies written")
        return 0
    if args.cmd == "classroom":
        released = init_course(args.dir)
        print(f"course folder {args.dir}: {len(released)} assignments, student "
              f"copies in {args.dir / 'release'}; next: put submissions in "
              "submitted/<student>/<lab>/, then `nbgrader autograde <lab>` there")
        return 0
    return 2

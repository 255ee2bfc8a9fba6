"""course_lib: the companion package of "Compressing Speech Recognition Models".

The book imports it as `import course_lib as cl`; every helper says in its
docstring which chapter introduces it. The package is built in layers, each in
its own folder, and a layer imports only the layers below it
(`tests/test_layers.py` checks this):

1. `core`: the corpus, the model and its files, training, inference, metrics,
   the ledger;
2. `techniques`: one package per chapter (pruning, quantization, distillation,
   neurons, splitting, lowrank, entropy, export), each with its lab's checks;
   `combined`: methods that combine them (Deep Compression, quantized shards,
   Huffman-coded int8);
3. `zoo`: the course's trained results, cached by configuration and shipped;
4. `app`: the command line, the benchmark, the memory probe, plots, labs.

This module is the facade the book reads, sectioned by chapter below.
"""

# Chapter 1: the task, the corpus, the model, training, decoding.
from .core import checking, modelfile, utils
from .core.audio import AudioError, check_waveform, load_audio
from .core.batching import Example, collate, featurize, length_batches
from .core.corpus import augment, grammar, synth
from .core.corpus.build import (Corpus, CorpusConfig, Utterance, build_corpus,
                                open_corpus, repair_corpus, verify_corpus)
from .core.corpus.synth import Voice, synthesize
from .core.classical import pocketsphinx_transcripts
from .core.decode import collapse, greedy_decode, snap_to_vocabulary
from .core.example import EXAMPLE, RunningExample
from .core.corpus import real
from .core.evaluation import (CORPUS, dev_examples, dev_wer, latency_waves,
                              real_examples, real_transcripts, record_model,
                              test_transcripts, train_examples)
from .core.features import FeatureConfig, log_mel
from .core.inference import frame_log_probs, recognize, transcribe
from .core.lexicon import grammar_lm, lexicon_decode, lexicon_decoder
from .core.losses import DistillLoss, ctc_loss, kd_kl
from .core.model import (CTCModel, ModelConfig, count_params, is_weight_matrix,
                         length_mask, weight_matrices)
from .core.modelfile import load_model, read_metadata, save_model
from .core.text import VOCAB, decode_ids, encode, normalize
from .core.training import (FinetuneConfig, TrainConfig, checkpoint_seconds, finetune,
                            finetune_control, train)
from .core.utils import cache_dir, config_hash, seed_everything
from .zoo import baseline
from .zoo.baseline import (baseline_path, baseline_record, load_baseline,
                           shipped_matches)

# Chapter 2: measuring, the ledger.
from .core import ledger, metrics
from .core.ledger import Ledger, Record, measure
from .core.targets import Target, Targets
from .core.metrics import (bootstrap_wer_ci, count_nonzero, error_rates, file_sizes,
                           measure_latency, paired_bootstrap, side_by_side,
                           word_errors)

# Chapters 3.1-3.5: one package per technique (with its lab's checks).
from .techniques import distillation, neurons, pruning, quantization, splitting
from .techniques.pruning import sparse_io
from .techniques.splitting import pipeline, shards
from .zoo.neurons import neuron_pruned_baseline
from .zoo.pruned import long_pruned_baseline, pruned_baseline
from .zoo.quantized import qat_baseline, shared_baseline
from .zoo.students import distilled_student

# Chapters 4 and 5: combining techniques, export, low rank, entropy coding.
from .combined import deepcomp, huffman_int8, quantized_shards
from .techniques import entropy, export, lowrank
from .zoo.deepcomp import deep_compressed_baseline, deep_compressed_student
from .zoo.lowrank import lowrank_baseline

# Tools: the trained results, the benchmark, the memory probe, plots, labs.
from . import zoo
from .app import bench, labs, memory, parallel, recap, viz

__version__ = "0.1.0"

__all__ = [
    "EXAMPLE", "RunningExample", "pocketsphinx_transcripts",
    # chapter 1
    "checking", "modelfile", "utils", "AudioError", "check_waveform", "load_audio",
    "Example", "collate", "featurize", "length_batches", "augment", "grammar",
    "synth", "Corpus", "CorpusConfig", "Utterance", "build_corpus", "open_corpus",
    "repair_corpus", "verify_corpus", "Voice", "synthesize", "collapse",
    "greedy_decode", "snap_to_vocabulary", "real", "real_examples",
    "real_transcripts", "record_model", "CORPUS", "dev_examples", "dev_wer",
    "latency_waves", "test_transcripts", "train_examples", "FeatureConfig", "log_mel",
    "frame_log_probs", "recognize", "transcribe", "lexicon_decode",
    "lexicon_decoder", "grammar_lm", "DistillLoss", "ctc_loss",
    "kd_kl", "CTCModel", "ModelConfig", "count_params", "is_weight_matrix",
    "length_mask", "weight_matrices", "load_model", "read_metadata", "save_model",
    "VOCAB", "decode_ids", "encode", "normalize", "FinetuneConfig", "TrainConfig",
    "checkpoint_seconds", "finetune", "finetune_control", "train", "cache_dir",
    "config_hash", "seed_everything", "baseline",
    "baseline_path", "baseline_record", "load_baseline", "shipped_matches",
    # chapter 2
    "ledger", "metrics", "Ledger", "Record", "measure", "bootstrap_wer_ci",
    "count_nonzero", "error_rates", "file_sizes", "measure_latency",
    "paired_bootstrap", "side_by_side", "word_errors", "Target", "Targets",
    # chapters 3.1-3.5
    "distillation", "neurons", "pruning", "quantization", "splitting", "sparse_io",
    "pipeline", "shards", "neuron_pruned_baseline", "long_pruned_baseline",
    "pruned_baseline", "qat_baseline", "shared_baseline", "distilled_student",
    # chapters 4 and 5
    "deepcomp", "huffman_int8", "quantized_shards", "entropy", "export", "lowrank",
    "deep_compressed_baseline", "deep_compressed_student", "lowrank_baseline",
    # tools
    "zoo", "bench", "labs", "memory", "parallel", "recap", "viz",
]

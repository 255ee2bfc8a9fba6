"""course_lib: the companion package of "Compressing Speech Recognition Models".

The book imports it as `import course_lib as cl`; every helper says in its
docstring which chapter introduces it.
"""

from . import (augment, checks, distill, grammar, labs, lowrank, neurons, parallel,
               pipeline, pruning, quantize, shards, sparse_io, viz)
from .audio import AudioError, check_waveform, load_audio
from .baseline import (baseline_path, baseline_record, latency_waves, load_baseline,
                       shipped_matches, test_transcripts)
from .data import (Corpus, CorpusConfig, Utterance, build_corpus, open_corpus,
                   repair_corpus, verify_corpus)
from .decode import collapse, greedy_decode, snap_to_vocabulary
from .features import FeatureConfig, log_mel
from .ledger import Ledger, Record, measure
from .metrics import (bootstrap_wer_ci, count_nonzero, error_rates, file_sizes,
                      measure_latency, paired_bootstrap, side_by_side,
                      word_errors)
from .models import CTCModel, ModelConfig, count_params, load_model, save_model
from .synth import Voice, synthesize
from .text import VOCAB, decode_ids, encode, normalize
from .train import (FinetuneConfig, TrainConfig, collate, ctc_loss, featurize, finetune,
                    recognize, train, transcribe)
from .utils import cache_dir, config_hash, seed_everything

__version__ = "0.1.0"

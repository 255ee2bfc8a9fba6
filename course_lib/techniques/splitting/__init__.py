"""Model splitting (模型切分; the article's 模型剪裁), chapter 3.5: shards with an
index manifest, checks before use, on-demand loading (`shards`), a pipeline of
processes (`pipeline`); lab 3.5's checks (`checks`).
"""

from . import checks
from .shards import (FORMAT, INDEX, Codec, codec_of, load_part, load_sharded, map_part,
                     meta_model, model_id, model_tensors, OnDemand, read_index,
                     register_codec, ShardError, size_parts, stage_parts,
                     stage_prefixes, stored_tensors, verify_shards, write_shards)
from .pipeline import (recv_tensor, run_pipeline, send_tensor, split_stages)

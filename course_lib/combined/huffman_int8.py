"""Chapter 3.2's int8 file with its codes Huffman-coded (chapters 3.2 + 5).

The same file as `quantization.save_quantized` (format, scales, zeros, float
tensors), except that the codes of all weight matrices are one Huffman-coded
stream, in layout order, instead of fixed-width fields: lossless, so the loaded
model is the same, and the file is smaller by what the codes' histogram allows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from ..core.modelfile import write_container
from ..techniques.entropy.huffman import decode, encode, stream_tensors, tensors_stream
from ..techniques.quantization.quant import (QuantSpec, load_quantized,
                                                quantized_tensors)

PREFIX = "huffman"  # the stream's tensors: huffman/data, huffman/lengths, ...


def save_quantized_huffman(model: torch.nn.Module, path: str | os.PathLike,
                           spec: QuantSpec = QuantSpec(), **meta: object) -> Path:
    """`save_quantized`, with the codes of all tensors one Huffman-coded stream."""
    tensors, header, codes = quantized_tensors(model, spec, packed=False)
    stream = encode(np.concatenate([q.flatten().numpy() for q, _, _ in
                                    codes.values()]))
    tensors.update(stream_tensors(stream, PREFIX))
    return write_container(path, tensors, header, **meta)


def huffman_codes(tensors: dict[str, torch.Tensor], meta: dict[str, str]
                  ) -> dict[str, np.ndarray]:
    """Every weight's codes by name, cut from the decoded stream in layout order."""
    stream = decode(tensors_stream(tensors, PREFIX))
    out, start = {}, 0
    for name, dims in json.loads(meta["layout"]).items():
        if f"{name}/dense" not in tensors:
            size = int(np.prod(dims))
            out[name], start = stream[start:start + size], start + size
    return out


def load_quantized_huffman(path: str | os.PathLike) -> torch.nn.Module:
    """Load `save_quantized_huffman`'s file: the same model as the packed file's."""
    return load_quantized(path, read_codes=huffman_codes)

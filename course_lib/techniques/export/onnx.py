"""Export for deployment (chapter 4): the CTC model as ONNX, run by ONNX Runtime.

`torch.onnx.export` with the TorchScript-based exporter (`dynamo=False`): the
newer `torch.export` path cannot trace the bidirectional GRU stack of this model
in torch 2.11 (chapter 4 shows the error). Batch and frame axes are dynamic, and
padding is handled in the graph as in PyTorch (`reverse_padded`), so batched
transcription gives the same results.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from ...core.utils import atomic_write_bytes


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, opset: int = 17
                ) -> Path:
    """Write `model` (feats (B, T, n_mels), lengths (B,)) as ONNX, atomically."""
    model = model.eval()
    feats = torch.randn(2, 64, model.cfg.n_mels)  # (batch, frames, mels): an example
    lengths = torch.tensor([64, 50])
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notices
        out = Path(tmp) / "model.onnx"
        torch.onnx.export(
            model, (feats, lengths), str(out), dynamo=False, opset_version=opset,
            input_names=["feats", "lengths"], output_names=["log_probs", "out_lengths"],
            dynamic_axes={"feats": {0: "batch", 1: "frames"}, "lengths": {0: "batch"},
                          "log_probs": {0: "batch", 1: "out_frames"},
                          "out_lengths": {0: "batch"}})
        return atomic_write_bytes(path, out.read_bytes())


class OnnxModel:
    """An ONNX Runtime session called like a `CTCModel` (torch in, torch out)."""

    def __init__(self, path: str | os.PathLike, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # one thread, like every timing here
        opts.inter_op_num_threads = 1
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), opts,
                                            providers=["CPUExecutionProvider"])

    def eval(self) -> "OnnxModel":
        """Nothing to switch; here so that `train.transcribe` can call it."""
        return self

    def __call__(self, feats: torch.Tensor, lengths: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, n_mels), lengths (B,) -> log-probs (B, T', V), lengths (B,)."""
        log_probs, out_lengths = self.session.run(
            None, {"feats": feats.detach().numpy().astype(np.float32),
                   "lengths": lengths.detach().numpy().astype(np.int64)})
        return torch.from_numpy(log_probs), torch.from_numpy(out_lengths)

"""Chapter 4: ONNX export, run by ONNX Runtime, gives the PyTorch model's outputs
for batches with padding."""

import pytest
import torch

import course_lib as cl

pytest.importorskip("onnxruntime")
from course_lib import export  # noqa: E402


def test_onnx_outputs_equal_pytorch_on_padded_batches(tmp_path):
    torch.manual_seed(0)
    cfg = cl.ModelConfig(conv_channels=16, rnn_hidden=12, rnn_layers=2)
    m = cl.CTCModel(cfg).eval()
    path = export.export_onnx(m, tmp_path / "m.onnx")
    onnx_model = export.OnnxModel(path)
    for batch, frames, lengths in ((1, 37, [37]), (3, 90, [90, 61, 12])):
        x = torch.randn(batch, frames, 80)
        n = torch.tensor(lengths)
        with torch.no_grad():
            ref, ref_len = m(x, n)
        out, out_len = onnx_model(x, n)
        assert torch.equal(out_len, ref_len)
        for b, t in enumerate(ref_len.tolist()):  # frames past a length are padding
            torch.testing.assert_close(out[b, :t], ref[b, :t], atol=1e-4, rtol=1e-4)

"""Export for deployment, chapter 4: ONNX export and ONNX Runtime (`onnx`).
"""

from .onnx import (export_onnx, OnnxModel)

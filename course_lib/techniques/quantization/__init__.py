"""Quantization (量化), chapter 3.2: the affine quantizer, calibration, the int8
engine, QAT with a straight-through estimator, k-means weight sharing, and the
quantized and codebook files (`quant`); lab 3.2's checks (`checks`).
"""

from . import checks
from .quant import (CFORMAT, ENGINE_SPEC, QFORMAT, ActivationQuantizer,
                       add_weight_fake_quant, calibrate, CodesReader,
                       collect_activations, dequantize, dequantize_codes,
                       engine_weights, fake_quantize, fake_quantize_ste, int8_engine,
                       kmeans_1d, load_codebook, load_quantized, naive_power_of_two,
                       qparams, quantization_error, quantize, quantized_tensors,
                       QuantSpec, remove_weight_fake_quant, save_codebook,
                       save_quantized, share_weights, Shared, weight_codes)

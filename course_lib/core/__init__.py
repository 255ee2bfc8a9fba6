"""Layer 1, the core: the running example that every chapter compresses.

The corpus (grammar, synthesis, augmentation, building: `corpus`), text and audio,
features, the CTC model and its files (`model`, `modelfile`), batching, the losses
(CTC, and the distillation loss that several chapters share), training, inference
and decoding, evaluation on the fixed test set, metrics, the ledger, and the
harness of the labs' checks. The core imports nothing from the layers above it
(`techniques`, `combined`, `zoo`, `app`); `tests/test_layers.py` checks this.
"""

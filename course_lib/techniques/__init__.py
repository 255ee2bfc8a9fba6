"""Layer 2, the techniques: one package per chapter of the article, each the
technique's own code and its lab's checks beside it.

`pruning` (3.1), `quantization` (3.2), `distillation` (3.3), `neurons` (3.4),
`splitting` (3.5), `lowrank` and `entropy` (5), `export` (4). A technique imports
only `core` and its own package: it takes the model, the examples, the teacher
and the evaluation function as arguments and never loads the baseline itself
(the recipes that do are in `zoo`). Methods that combine techniques are in
`combined`. `tests/test_layers.py` checks the rule.
"""

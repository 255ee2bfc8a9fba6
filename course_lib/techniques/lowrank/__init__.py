"""Low-rank factorization (低秩分解), chapter 5: ranks from the singular values,
the SVD split of convolutions and GRU input weights (`svd`).
"""

from .svd import (break_even, choose_ranks, energy_rank, factorize, matrices,
                  singular_values, svd_factors)

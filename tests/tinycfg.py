"""The tiny corpus configuration shared by the unit tests."""

import course_lib as cl

TINY = cl.CorpusConfig(n_train=40, n_dev=12, n_test=12, chunk_size=20)

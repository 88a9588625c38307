"""Whether TensorFlow is installed, asked once per process.

The detection and segmentation pipelines run with or without it. The answer
is cached: an import that fails is retried on every ``import`` statement, and
two threads of a ``keras.utils.PyDataset`` retrying it at once can see each
other's half-made module.
"""

import functools


@functools.lru_cache(maxsize=None)
def tensorflow_available():
    """Whether TensorFlow imports here."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True

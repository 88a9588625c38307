"""What every classification source hands the pipeline: named splits of uint8 images and labels.

A source (ELPV, a tensorflow-datasets name, an image folder) knows its class
names and its splits. Reading a split gives a ``tf.data.Dataset`` of
``(image, label)`` pairs in a fixed order: ``image`` uint8 ``(H, W, C)`` with
C = 1 (greyscale) or 3, at the source's resolution, ``label`` int32. Resizing,
augmentation, batching and caching are the pipeline's business
(`keras_coordatt.data.classification.pipeline`), so every source gets the
same preprocessing.
"""

import dataclasses
from typing import Callable
from typing import Sequence

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of a source, in a fixed order.

    Args:
        name: the split's name as the user wrote it (``"train"``, ``"train[:90%]"``).
        dataset: ``(image uint8 (H, W, 1 or 3), label int32)`` pairs.
        num_examples: how many pairs ``dataset`` yields.
        labels: every label in order, where the source knows them without
            reading images (then label checks run before training starts).
        files: the file (or record) each example comes from, for error messages.
        in_memory: ``dataset`` is already decoded and held in memory, so
            caching it again would only copy it.
        shorter_side: the images' shorter side where every image has the same
            known size (for the cache's memory estimate); None if unknown.
    """

    name: str
    dataset: tf.data.Dataset
    num_examples: int
    labels: np.ndarray | None = None
    files: Sequence[str] | None = None
    in_memory: bool = False
    shorter_side: int | None = None


@dataclasses.dataclass(frozen=True)
class Source:
    """A named data source: its class names and how to read a split.

    Args:
        name: how the user named it (``"elpv"``, ``"tfds:cifar10"``, ``"folder:/data"``).
        class_names: label ``i`` is ``class_names[i]``.
        default_eval_split: the split to evaluate on when none is named.
        read_split: ``read_split(name, limit, shuffle_files)`` returns a
            ``Split`` holding the first ``limit`` examples (all when ``limit``
            is None); with ``shuffle_files``, a source stored in shards may
            read them in a new order each pass. It raises a ``ValueError``
            listing the source's splits for an unknown name.
        notes: a line or two for ``Datasets.describe()``: provenance, licence,
            how the splits were made.
    """

    name: str
    class_names: list[str]
    default_eval_split: str
    read_split: Callable[[str, int | None, bool], Split]
    notes: str = ""

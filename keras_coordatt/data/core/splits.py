"""Split names and fixed splits, the same for every source and task.

Folder sources find their splits in folders named ``SPLIT_FOLDERS``
(``train`` and the evaluation ones); labeling tools name their validation
folder ``val`` (VOC, COCO), ``valid`` (Roboflow) or ``validation``. A
source evaluates on the first of ``EVAL_SPLITS`` it has. A split made here
(`stratified_split`) is drawn with its own seed, never the run's, so every
run of a dataset is scored on the same examples.
"""

import os

import numpy as np

# The evaluation splits' names, in the order a source's default is chosen.
EVAL_SPLITS = ("val", "valid", "validation", "test")
# Split folders, in the order a source lists them.
SPLIT_FOLDERS = ("train",) + EVAL_SPLITS


def default_eval_split(splits):
    """The split to evaluate on: the first of ``EVAL_SPLITS`` in ``splits``, else the last."""
    return next((split for split in EVAL_SPLITS if split in splits), list(splits)[-1])


def split_order(names):
    """Split folder names, the usual ones (train, val, ...) first in that order."""
    return ([name for name in SPLIT_FOLDERS if name in names]
            + [name for name in names if name not in SPLIT_FOLDERS])


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
        strata: one hashable key per example (a class, or a class and a type;
            the same key for all: a plain random split).
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


def read_split_lists(name, folder, scan):
    """``{split: [id, ...]}`` from a folder of ``<split>.txt`` files, one id first on a line.

    A VOC devkit's ``ImageSets/Main`` and ``ImageSets/Segmentation``; its
    ``<class>_<split>.txt`` files list the same images per class and are
    passed over. Listed through ``scan`` (a `FolderScan`); a list without ids,
    or a folder without lists, is a ValueError naming the file or folder.
    """
    ids = {}
    for path in scan.files(folder, (".txt",)):
        split = os.path.splitext(os.path.basename(path))[0]
        if "_" in split:
            continue
        with open(path) as lines:
            ids[split] = [line.split()[0] for line in lines if line.strip()]
        if not ids[split]:
            raise ValueError(f"{name}: split {split!r} ({path}) lists no images")
    if not ids:
        raise ValueError(f"{name}: {folder} has no <split>.txt image lists")
    return ids

"""An image-folder tree as a source: one subfolder per class.

Two layouts::

    root/train/<class>/*.jpg   root/val/<class>/*.jpg      splits named after the folders
                               (or valid/, validation/,     ("train", "val", ...)
                               test/)
    root/<class>/*.jpg                                      a fixed stratified split:
                                                            80% "train", 20% "test"

Class names are the sorted class folder names (of ``train/`` in the first
layout), at least two; images may sit in nested folders below their class
folder. Files ending in .jpg, .jpeg, .png, .gif, .bmp or .webp (any case) are
images. Hidden entries (``.ipynb_checkpoints/``, ``.DS_Store``) are no
classes or images, and other files (``notes.txt``) no images: they are
skipped, and a line names them.

Bad data fails with the path in the message, before any training starts: a
missing root, a single class folder (the root is often one level too high or
too low), a class folder without images, a file whose first bytes are no
JPEG, PNG, GIF, BMP or WebP signature, and a file that starts like an image but
does not decode (truncated, corrupt): every image is decoded once when the
source is opened (in parallel; a line says how long it took when that is more
than a few seconds), and the files that decoded are remembered for the rest
of the process.
"""

import os

import numpy as np
import tensorflow as tf

from keras_coordatt.data.classification.source import Source
from keras_coordatt.data.classification.source import Split
from keras_coordatt.data.core.folders import FolderScan
from keras_coordatt.data.core.images import IMAGE_EXTENSIONS
from keras_coordatt.data.core.images import read_all
from keras_coordatt.data.core.images import read_image
from keras_coordatt.data.core.splits import EVAL_SPLITS
from keras_coordatt.data.core.splits import limited
from keras_coordatt.data.core.splits import stratified_split
from keras_coordatt.data.core.splits import unknown_split_error

TEST_FRACTION = 0.2
SPLIT_SEED = 0

# Files decoded once in this process, by (path, size, modification time).
_DECODED = set()

# The first bytes of each format tf.io.decode_image reads.
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def load_image_folder(root):
    """The source for an image folder tree at ``root``."""
    root = os.path.expanduser(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder {root!r} does not exist")
    source_name = f"folder:{root}"
    scan = FolderScan(source_name, root)
    top = _class_folders(scan, root)
    eval_folders = [name for name in EVAL_SPLITS if name in top]
    has_train = "train" in top
    if has_train != bool(eval_folders):
        if has_train:
            found = "train/"
            missing = ", ".join(f"{name}/" for name in EVAL_SPLITS[:-1]) + f" or {EVAL_SPLITS[-1]}/"
        else:
            found, missing = f"{eval_folders[0]}/", "train/"
        raise ValueError(
            f"image folder {root!r} has {found} but no {missing}: give both, or only class folders"
        )
    if has_train:
        files, labels, class_names = _list_images(scan, os.path.join(root, "train"))
        parts = {"train": (files, labels)}
        for name in eval_folders:
            files, labels, _ = _list_images(scan, os.path.join(root, name), class_names)
            parts[name] = (files, labels)
        parts = {name: _shuffled(*part) for name, part in parts.items()}
        layout = f"splits from the folders {', '.join(parts)}"
        default_eval_split = eval_folders[0]
    else:
        files, labels, class_names = _list_images(scan, root, present=top)
        indices = stratified_split(labels, TEST_FRACTION, SPLIT_SEED)
        parts = {
            name: (files[index], labels[index]) for name, index in zip(("train", "test"), indices)
        }
        layout = (
            f"fixed split stratified by class, {1 - TEST_FRACTION:.0%} train / "
            f"{TEST_FRACTION:.0%} test, split seed {SPLIT_SEED}"
        )
        default_eval_split = "test"
    scan.note()
    check_decodes(np.concatenate([files for files, _ in parts.values()]))

    def read_split(name, limit, shuffle_files=False):
        if name not in parts:
            raise unknown_split_error(source_name, name, list(parts))
        files, labels = parts[name]
        count = limited(len(files), limit)
        files, labels = files[:count], labels[:count]
        dataset = tf.data.Dataset.from_tensor_slices((files, labels)).map(
            lambda path, label: (_decode(path), label), num_parallel_calls=tf.data.AUTOTUNE
        )
        return Split(name, dataset, count, labels=labels, files=files)

    return Source(
        name=source_name,
        class_names=class_names,
        default_eval_split=default_eval_split,
        read_split=read_split,
        notes=f"image folder {root}: {layout}",
    )


def _shuffled(files, labels):
    order = np.random.default_rng(SPLIT_SEED).permutation(len(files))
    return files[order], labels[order]


def _class_folders(scan, folder):
    """The names of ``folder``'s subfolders, sorted; the files beside them are skipped."""
    names = []
    for entry in scan.entries(folder):
        if entry.is_dir():
            names.append(entry.name)
        else:
            scan.skip(entry.path)
    if not names:
        raise ValueError(f"image folder {folder!r} has no class subfolders")
    return names


def _list_images(scan, folder, class_names=None, present=None):
    """Every image under ``folder/<class>/`` with its label, checked by signature.

    Returns ``(files, labels, class_names)``; without ``class_names`` the
    classes are the class folders found (``present``, when already listed).
    """
    present = present if present is not None else _class_folders(scan, folder)
    if class_names is None:
        class_names = present
        if len(class_names) == 1:
            raise ValueError(
                f"image folder {folder!r} has one class folder, {class_names[0]!r}: a classifier "
                "needs two or more. Name the folder that holds one subfolder per class"
            )
    unknown = sorted(set(present) - set(class_names))
    if unknown:
        raise ValueError(
            f"{folder!r} has class folders {unknown} that train/ lacks; "
            f"the classes are {class_names}"
        )
    files, labels = [], []
    for label, name in enumerate(class_names):
        if name not in present:
            continue
        class_folder = os.path.join(folder, name)
        found = scan.files(class_folder, IMAGE_EXTENSIONS, recursive=True)
        if not found:
            raise ValueError(
                f"class folder {class_folder!r} has no images "
                f"(files ending in {', '.join(IMAGE_EXTENSIONS)})"
            )
        for path in found:
            _check_signature(path)
        files += found
        labels += [label] * len(found)
    return np.array(files), np.array(labels, dtype=np.int32), class_names


def _check_signature(path):
    with open(path, "rb") as f:
        head = f.read(12)
    if not (head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")):
        raise ValueError(
            f"{path} is not an image: its first bytes {head[:8]!r} are no JPEG, PNG, GIF, BMP "
            f"or WebP signature"
        )


def check_decodes(files):
    """Decodes every file once (in threads); a ValueError names the first that fails."""
    todo = [path for path in map(str, files) if _identity(path) not in _DECODED]
    if not todo:
        return
    # Each decoded image is dropped at once: only whether it decodes is kept.
    read_all(lambda path: read_image(path) is None, todo,
             f"decoded {len(todo):,} images once to check them")
    _DECODED.update(map(_identity, todo))


def _identity(path):
    stat = os.stat(path)
    return path, stat.st_size, stat.st_mtime_ns


def _decode(path):
    # In Python, not in the graph: a decode error inside tf.data says
    # "Invalid JPEG data" without naming the file; this one names it.
    image = tf.py_function(lambda path: read_image(path.numpy().decode()), [path], tf.uint8)
    image.set_shape((None, None, 3))
    return image

"""An image-folder tree as a source: one subfolder per class.

Two layouts::

    root/train/<class>/*.jpg   root/val/<class>/*.jpg      splits named after the folders
                               (or validation/, test/)      ("train", "val", ...)
    root/<class>/*.jpg                                      a fixed stratified split:
                                                            80% "train", 20% "test"

Class names are the sorted class folder names (of ``train/`` in the first
layout); images may sit in nested folders below their class folder. Files
ending in .jpg, .jpeg, .png, .gif, .bmp or .webp (any case) are images; other
files are ignored.

Bad data fails with the path in the message, before any training starts: a
missing root, a class folder without images, a file whose first bytes are no
JPEG, PNG, GIF, BMP or WebP signature, and a file that starts like an image but
does not decode (truncated, corrupt): every image is decoded once when the
source is opened (in parallel; a line says how long it took when that is more
than a few seconds), and the files that decoded are remembered for the rest
of the process.
"""

import concurrent.futures
import os
import time

import numpy as np
import tensorflow as tf

from keras_coordatt.data.source import Source
from keras_coordatt.data.source import Split
from keras_coordatt.data.source import limited
from keras_coordatt.data.source import stratified_split
from keras_coordatt.data.source import unknown_split_error

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
EVAL_FOLDERS = ("val", "validation", "test")
TEST_FRACTION = 0.2
SPLIT_SEED = 0

# Files decoded once in this process, by (path, size, modification time).
_DECODED = set()
# How long a decode check may take before it says so.
QUIET_SECONDS = 3.0

# The first bytes of each format tf.io.decode_image reads.
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def load_image_folder(root):
    """The source for an image folder tree at ``root``."""
    root = os.path.expanduser(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder {root!r} does not exist")
    eval_folders = [name for name in EVAL_FOLDERS if os.path.isdir(os.path.join(root, name))]
    has_train = os.path.isdir(os.path.join(root, "train"))
    if has_train != bool(eval_folders):
        if has_train:
            found, missing = "train/", "val/, validation/ or test/"
        else:
            found, missing = f"{eval_folders[0]}/", "train/"
        raise ValueError(
            f"image folder {root!r} has {found} but no {missing}: give both, or only class folders"
        )
    if has_train:
        class_names = _class_folders(os.path.join(root, "train"))
        parts = {}
        for name in ["train"] + eval_folders:
            files, labels = _list_images(os.path.join(root, name), class_names)
            order = np.random.default_rng(SPLIT_SEED).permutation(len(files))
            parts[name] = (files[order], labels[order])
        layout = f"splits from the folders {', '.join(parts)}"
        default_eval_split = eval_folders[0]
    else:
        class_names = _class_folders(root)
        files, labels = _list_images(root, class_names)
        indices = stratified_split(labels, TEST_FRACTION, SPLIT_SEED)
        parts = {
            name: (files[index], labels[index]) for name, index in zip(("train", "test"), indices)
        }
        layout = (
            f"fixed split stratified by class, {1 - TEST_FRACTION:.0%} train / "
            f"{TEST_FRACTION:.0%} test, split seed {SPLIT_SEED}"
        )
        default_eval_split = "test"
    check_decodes(np.concatenate([files for files, _ in parts.values()]))
    source_name = f"folder:{root}"

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


def _class_folders(folder):
    names = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    if not names:
        raise ValueError(f"image folder {folder!r} has no class subfolders")
    return names


def _list_images(folder, class_names):
    """Every image file under ``folder/<class>/`` with its label, checked by signature."""
    present = _class_folders(folder)
    unknown = sorted(set(present) - set(class_names))
    if unknown:
        raise ValueError(
            f"{folder!r} has class folders {unknown} that train/ lacks; "
            f"the classes are {class_names}"
        )
    files, labels = [], []
    for label, name in enumerate(class_names):
        class_folder = os.path.join(folder, name)
        found = [
            os.path.join(where, file)
            for where, _, files_here in sorted(os.walk(class_folder, followlinks=True))
            for file in sorted(files_here)
            if file.lower().endswith(IMAGE_EXTENSIONS)
        ]
        if not found and name in present:
            raise ValueError(
                f"class folder {class_folder!r} has no images "
                f"(files ending in {', '.join(IMAGE_EXTENSIONS)})"
            )
        for path in found:
            _check_signature(path)
        files += found
        labels += [label] * len(found)
    return np.array(files), np.array(labels, dtype=np.int32)


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
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for path, error in zip(todo, pool.map(_decode_error, todo)):
            if error:
                raise ValueError(f"cannot decode image file {path}: {error}")
            _DECODED.add(_identity(path))
    seconds = time.perf_counter() - started
    if seconds > QUIET_SECONDS:
        print(f"decoded {len(todo):,} images once to check them: {seconds:.0f} s "
              f"({len(todo) / seconds:,.0f} per second)", flush=True)


def _identity(path):
    stat = os.stat(path)
    return path, stat.st_size, stat.st_mtime_ns


def _decode_error(path):
    """None if ``path`` decodes, else TensorFlow's reason."""
    try:
        tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except tf.errors.OpError as error:
        return " ".join(error.message.split())
    return None


def _decode(path):
    # In Python, not in the graph: a decode error inside tf.data says
    # "Invalid JPEG data" without naming the file; this one names it.
    def decode(path):
        path = path.numpy().decode()
        try:
            return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(f"cannot decode image file {path}: {error.message}") from None

    image = tf.py_function(decode, [path], tf.uint8)
    image.set_shape((None, None, 3))
    return image

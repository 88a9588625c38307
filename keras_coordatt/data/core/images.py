"""Image files: which names are images, and the one decoder every source uses.

A file that cannot be read or decoded is a ValueError naming it, whether it is
met while a source is checked or inside a ``tf.data`` pipeline (where
TensorFlow's own decode error would not say which file it was).
"""

import concurrent.futures
import os
import time

import numpy as np
import tensorflow as tf

# Files ending in these (any case) are images: what tf.io.decode_image reads.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
# How long reading every file of a source may take before a line says how long it took.
QUIET_SECONDS = 3.0


def read_image(path):
    """The image file at ``path`` as uint8 ``(H, W, 3)``; greyscale and RGBA become RGB.

    Raises a ValueError naming the file when it is missing or does not decode
    (corrupt, truncated, not an image).
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise ValueError(f"cannot read image file {path}: {error.strerror or error}") from None
    try:
        return tf.io.decode_image(data, channels=3, dtype=tf.uint8,
                                  expand_animations=False).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        reason = " ".join((error.message or type(error).__name__).split())
        raise ValueError(f"cannot decode image file {path} (corrupt, truncated or not an "
                         f"image?): {reason}") from None


def load_image(example):
    """An example's image as uint8 ``(H, W, 3)``: the array it holds, or its file decoded.

    Raises a ValueError naming the file when it does not decode (see
    `read_image`) or has a size other than the example's ``width`` x
    ``height`` (where the example gives them), and naming the example when its
    array is not uint8 ``(H, W, 3)``.
    """
    image = example["image"]
    if isinstance(image, (np.ndarray, tf.Tensor)):
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"example {example.get('id')!r}: the image is {image.dtype} "
                             f"{image.shape}, not uint8 (H, W, 3)")
        return image
    path = os.fspath(image)
    image = read_image(path)
    size = (example.get("width"), example.get("height"))
    if None not in size and (image.shape[1], image.shape[0]) != tuple(int(s) for s in size):
        raise ValueError(f"{path}: the image is {image.shape[1]}x{image.shape[0]} pixels, "
                         f"its annotation says {int(size[0])}x{int(size[1])}")
    return image


def image_of(example):
    """An example's uint8 ``(H, W, 3)`` image: the array it holds as it is, or its file read.

    The pipelines' fast path: arrays (tiles, built-in datasets) were made by
    this library and are not checked again.
    """
    image = example["image"]
    if isinstance(image, np.ndarray):
        return image
    return load_image(example)


def read_all(read, paths, what):
    """``[read(path) for path in paths]``, in threads; the first error raised stops it.

    A line says how long it took when that is more than ``QUIET_SECONDS``;
    ``what`` says what was done (``"decoded 2,000 images once to check them"``).
    """
    paths = list(paths)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(read, paths))
    seconds = time.perf_counter() - started
    if seconds > QUIET_SECONDS:
        print(f"{what}: {seconds:.0f} s ({len(paths) / seconds:,.0f} per second)", flush=True)
    return results

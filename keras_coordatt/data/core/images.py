"""Image files: which names are images, and the one decoder every source uses.

A file that cannot be read or decoded is a ValueError naming it, whether it is
met while a source is checked or inside a ``tf.data`` pipeline (where
TensorFlow's own decode error would not say which file it was). TensorFlow
decodes where it is installed (``tf.io.decode_image``, what the classifier's
``tf.data`` pipeline uses too); without it, Pillow does.
"""

import concurrent.futures
import os
import time

import numpy as np

from keras_coordatt.data.core.optional import tensorflow_available

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
    if not tensorflow_available():
        return _decode_with_pillow(data, path)
    import tensorflow as tf

    try:
        return tf.io.decode_image(data, channels=3, dtype=tf.uint8,
                                  expand_animations=False).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        reason = " ".join((error.message or type(error).__name__).split())
        raise _undecodable(path, reason) from None


def _decode_with_pillow(data, path):
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"), np.uint8)
    except (OSError, ValueError, SyntaxError) as error:  # PIL's errors for bad files
        raise _undecodable(path, str(error) or type(error).__name__) from None


def _undecodable(path, reason):
    return ValueError(f"cannot decode image file {path} (corrupt, truncated or not an "
                      f"image?): {' '.join(reason.split())}")


def is_array(value):
    """Whether an example's image or mask is an array (NumPy or a TensorFlow tensor), not a path."""
    return isinstance(value, np.ndarray) or type(value).__module__.startswith("tensorflow")


def load_image(example):
    """An example's image as uint8 ``(H, W, 3)``: the array it holds, or its file decoded.

    Raises a ValueError naming the file when it does not decode (see
    `read_image`) or has a size other than the example's ``width`` x
    ``height`` (where the example gives them), and naming the example when its
    array is not uint8 ``(H, W, 3)``.
    """
    image = example["image"]
    if is_array(image):
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

"""What every segmentation source gives: named splits of images with masks of class indices.

A mask's value is the class index; ``IGNORE_LABEL`` (255) marks pixels that
are not scored and give no loss (VOC's object outlines, Cityscapes' unused
labels, a pet's trimap border). Examples are dicts ``{"image": path,
"mask": path, "id": str}`` (arrays in place of paths for tensorflow-datasets
and built-in sources); `keras_coordatt.data.core.images.load_image` and
`load_mask` decode them, `SegmentationSplit.as_tf_dataset` gives ``{"image":
uint8 (H, W, 3), "mask": uint8 (H, W)}``.

Checked when decoded, each a ValueError naming the file: a mask whose size
is not its image's, a mask value outside ``[0, num_classes)`` other than
255, a mask that is RGB (colours, not class indices), an image that does not
decode. Mask PNGs need Pillow.
"""

import os

import numpy as np

from keras_coordatt.data.core.examples import ExampleSource
from keras_coordatt.data.core.examples import ExampleSplit
from keras_coordatt.data.core.images import is_array
from keras_coordatt.data.core.images import load_image

# The mask value of pixels without a class: not scored, no loss.
IGNORE_LABEL = 255


class SegmentationSplit(ExampleSplit):
    """A split of a segmentation source: ``as_tf_dataset`` gives ``{"image": uint8 (H, W, 3),
    "mask": uint8 (H, W)}`` per example, mask values class indices or 255."""


class SegmentationSource(ExampleSource):
    """A segmentation source: mask value ``i`` is ``class_names[i]``; 255 is ignored."""


def load_mask(example, num_classes=None):
    """The example's mask as uint8 ``(H, W)`` of class indices (255: ignore).

    A palette PNG gives its palette indices, a greyscale one its values.
    Raises a ValueError naming the file when it is missing or unreadable,
    holds colours (RGB) instead of indices, or (with ``num_classes``) has
    values outside ``[0, num_classes)`` other than 255.
    """
    mask = example["mask"]
    if is_array(mask):
        where, values = f"example {example.get('id')!r}'s mask", np.asarray(mask)
        if values.ndim == 3 and values.shape[-1] == 1:
            values = values[..., 0]
    else:
        where = os.fspath(mask)
        values = read_mask_file(where)[0]
    if values.ndim != 2:
        raise ValueError(f"{where}: the mask has the shape {values.shape}, not (H, W)")
    if example.get("label_ids") is not None:  # stored label ids -> class indices
        table = np.asarray(example["label_ids"], np.uint8)
        unknown = values >= len(table)
        if unknown.any():
            raise ValueError(f"{where}: mask values {np.unique(values[unknown]).tolist()} are "
                             f"not label ids of this dataset (0 to {len(table) - 1})")
        values = table[values]
    if values.dtype != np.uint8:
        if values.size and (values.min() < 0 or values.max() > IGNORE_LABEL):
            raise ValueError(f"{where}: mask values up to {values.max()}, more than a uint8 "
                             "class index holds")
        values = values.astype(np.uint8)
    if num_classes is not None:
        bad = (values >= num_classes) & (values != IGNORE_LABEL)
        if bad.any():
            raise ValueError(f"{where}: mask values {np.unique(values[bad]).tolist()} are "
                             f"outside [0, {num_classes}) and not {IGNORE_LABEL} (ignore)")
    return values


def load_segmentation_example(example, num_classes=None):
    """``(image uint8 (H, W, 3), mask uint8 (H, W))`` of an example, their sizes checked."""
    image = load_image(example)
    mask = load_mask(example, num_classes)
    if mask.shape != image.shape[:2]:
        raise ValueError(
            f"{_name(example['mask'], 'the mask')}: the mask is {mask.shape[1]}x{mask.shape[0]} "
            f"pixels, its image {_name(example['image'], '')} {image.shape[1]}x{image.shape[0]}")
    return image, mask


def segmentation_split(name, examples, num_classes=None):
    """A `SegmentationSplit` of example dicts (paths or arrays).

    Its ``tf.data`` decodes each pair with `load_segmentation_example` (in
    parallel, in order), so a bad file fails naming it.
    """
    examples = list(examples)

    def load(index):
        return load_segmentation_example(examples[int(index)], num_classes)

    def read(index):
        import tensorflow as tf

        image, mask = tf.py_function(load, [index], [tf.uint8, tf.uint8])
        image.set_shape([None, None, 3])
        mask.set_shape([None, None])
        return {"image": image, "mask": mask}

    def dataset_fn():
        import tensorflow as tf

        return tf.data.Dataset.range(len(examples)).map(
            read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    return SegmentationSplit(name, examples, dataset_fn)


def mask_of(example):
    """An example's uint8 ``(H, W)`` mask: the array it holds as it is, or its PNG read."""
    mask = example["mask"]
    if isinstance(mask, np.ndarray):
        return mask
    return load_mask(example)


def read_mask_file(path):
    """A mask PNG's ``(values (H, W), palette)``: a palette PNG's indices and its palette
    (a flat RGB list), a greyscale PNG's values and None. RGB masks are refused."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading mask PNGs needs Pillow: pip install pillow") from None
    try:
        with Image.open(path) as mask:
            mask.load()
            mode = mask.mode
            if mode in ("RGB", "RGBA", "LA", "CMYK", "YCbCr", "HSV"):
                raise ValueError(f"{path}: the mask is a {mode} image; a mask holds class "
                                 "indices: a palette ('P') or greyscale PNG")
            values = np.asarray(mask)
            palette = mask.getpalette() if mode == "P" else None
    except OSError as error:
        raise ValueError(f"{path}: cannot read the mask ({error})") from None
    return (values.astype(np.uint8) if values.dtype == bool else values), palette


def _name(item, fallback):
    return fallback if is_array(item) else os.fspath(item)

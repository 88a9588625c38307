"""The segmentation pipeline's augmentation and eval resize in NumPy, image and mask together.

An image is float32 ``(H, W, 3)`` with values 0..255, its mask uint8
``(H, W)`` of class indices with 255 = ignore. Training examples get
DeepLab's random rescale (0.5-2), a random square crop (padded with zeros
and the ignore label where the image is smaller), a left-right flip and,
for top-down imagery, any of the 8 flips and quarter turns
(`augment_pair`); eval examples are resized to the square (`resize_pair`).
Every random draw comes from the ``numpy.random.Generator`` passed in.
"""

import numpy as np

from keras_coordatt.data.core.arrays import resize_bilinear
from keras_coordatt.data.core.arrays import resize_nearest
from keras_coordatt.data.segmentation.source import IGNORE_LABEL


def augment_pair(image, mask, rng, side, scale_range=(0.5, 2.0), aerial=False):
    """Rescale, pad and crop to ``side`` x ``side`` and flip the image and its mask together.

    Args:
        image: float ``(H, W, 3)``, 0..255.
        mask: uint8 ``(H, W)`` (or ``(H, W, 1)``) class indices, 255 = ignore.
        rng: a ``numpy.random.Generator``, the only source of randomness.
        side: the output's side.
        scale_range: the random rescale's ``(low, high)``; ``(1, 1)`` turns it off.
        aerial: also flip top-bottom and transpose, each with probability 1/2.

    Returns:
        ``(image, mask)``: float32 ``(side, side, 3)`` (bilinear, antialiased
        when shrinking; 0 in the padding) and uint8 ``(side, side)`` (nearest
        neighbours; 255 in the padding).
    """
    image = np.asarray(image, np.float32)
    mask = _plain(mask)
    scale = rng.uniform(*scale_range)
    height = max(1, int(image.shape[0] * scale))
    width = max(1, int(image.shape[1] * scale))
    image = resize_bilinear(image, height, width)
    mask = resize_nearest(mask, height, width)
    padded_h, padded_w = max(height, side), max(width, side)
    if (padded_h, padded_w) != (height, width):
        canvas = np.zeros((padded_h, padded_w, image.shape[2]), np.float32)
        canvas[:height, :width] = image
        labels = np.full((padded_h, padded_w), IGNORE_LABEL, np.uint8)
        labels[:height, :width] = mask
        image, mask = canvas, labels
    top = rng.integers(0, padded_h - side + 1)
    left = rng.integers(0, padded_w - side + 1)
    image = image[top:top + side, left:left + side]
    mask = mask[top:top + side, left:left + side]
    mirror, upside_down, transpose = rng.random(3) < 0.5
    if mirror:
        image, mask = image[:, ::-1], mask[:, ::-1]
    if aerial and upside_down:
        image, mask = image[::-1], mask[::-1]
    if aerial and transpose:
        image, mask = np.swapaxes(image, 0, 1), mask.T
    return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(mask, np.uint8)


def resize_pair(image, mask, side):
    """The eval path: the image (bilinear, antialiased) and the mask (nearest neighbours)
    resized to ``side`` x ``side``; float32 ``(side, side, 3)`` and uint8 ``(side, side)``."""
    image = resize_bilinear(np.asarray(image, np.float32), side, side)
    return image, np.ascontiguousarray(resize_nearest(_plain(mask), side, side), np.uint8)


def _plain(mask):
    """A mask as uint8 ``(H, W)`` (a trailing channel of 1 dropped)."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"a mask is (H, W) or (H, W, 1), got the shape {mask.shape}")
    return mask.astype(np.uint8, copy=False)

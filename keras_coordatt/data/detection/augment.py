"""The detection pipeline's augmentations in NumPy: colours, flips, zoom-out, the min-IoU crop.

An image is float32 ``(H, W, 3)`` with values 0..255, its boxes float32
``(N, 4)`` pixel ``xyxy``, its labels int32 ``(N,)``. Every random draw
comes from the ``numpy.random.Generator`` passed in, so a generator made
from (epoch seed, example) gives the same example every time, with or
without TensorFlow (``tf.data`` calls `augment_example` through
``tf.numpy_function``). `augment_example` chains them:

- ``"ssd"``: SSD's photometric distortion, zoom-out (the image on a canvas
  up to 4x its sides, filled with the mean pixel), the min-IoU random crop
  and a horizontal flip;
- ``"aerial"``: the photometric distortion and any of the 8 flips and
  quarter turns (top-down imagery has no up), object sizes unchanged.
"""

import numpy as np

from keras_coordatt.data.core.arrays import adjust_brightness
from keras_coordatt.data.core.arrays import adjust_contrast
from keras_coordatt.data.core.arrays import adjust_hue
from keras_coordatt.data.core.arrays import adjust_saturation
from keras_coordatt.tasks.boxes import box_iou

_KINDS = ("ssd", "aerial")  # what augment_example does
MEAN_PIXEL = (123.0, 117.0, 104.0)  # the fill of SSD's zoom-out
MIN_IOU_CHOICES = (0.1, 0.3, 0.5, 0.7, 0.9)
CROP_TRIALS = 32

# The photometric distortion's ranges, on images scaled to [0, 1]: brightness
# +-32 of 255, contrast and saturation x0.5-1.5, hue +-0.05 of the circle (18 degrees).
_PHOTOMETRIC_LOW = (-32 / 255, 0.5, 0.5, -0.05)
_PHOTOMETRIC_HIGH = (32 / 255, 1.5, 1.5, 0.05)


def augment_example(image, boxes, labels, rng, kind):
    """One example augmented the ``"ssd"`` or ``"aerial"`` way (see the module docstring).

    Args:
        image: float ``(H, W, 3)``, 0..255.
        boxes: ``(N, 4)`` pixel ``xyxy`` boxes of the image.
        labels: ``(N,)`` their class labels.
        rng: a ``numpy.random.Generator``, the only source of randomness.
        kind: ``"ssd"`` or ``"aerial"``.

    Returns:
        ``(image, boxes, labels)``: float32 ``(H', W', 3)`` 0..255, float32
        ``(M, 4)``, int32 ``(M,)`` (the crop may drop boxes).
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    image = np.asarray(image, np.float32)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels, np.int32).reshape(-1)
    image = photometric_distortion(image, rng)
    if kind == "aerial":
        image, boxes = dihedral(image, boxes, rng)
    else:
        image, boxes = zoom_out(image, boxes, rng)
        image, boxes, labels = min_iou_crop(image, boxes, labels, rng)
        image, boxes = flip(image, boxes, rng, horizontal=True)
    return (np.ascontiguousarray(image, np.float32), np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(labels, np.int32))


def photometric_distortion(image, rng):
    """SSD's colour distortions, each with probability 1/2, in this order: brightness +-32,
    contrast x0.5-1.5, saturation x0.5-1.5, hue +-18 degrees.

    Computed on the image scaled to ``[0, 1]`` (``tf.image``'s adjustments,
    `keras_coordatt.data.core.arrays`), clipped, scaled back: float image
    0..255 in, float32 0..255 out. Always draws 8 numbers from ``rng``.
    """
    chances = rng.random(4) < 0.5
    brightness, contrast, saturation, hue = rng.uniform(_PHOTOMETRIC_LOW, _PHOTOMETRIC_HIGH)
    x = np.asarray(image, np.float32) / np.float32(255)
    if chances[0]:
        x = adjust_brightness(x, brightness)
    if chances[1]:
        x = adjust_contrast(x, contrast)
    if chances[2]:
        x = adjust_saturation(x, saturation)
    if chances[3]:
        x = adjust_hue(x, hue)
    return np.clip(x, 0, 1) * np.float32(255)


def flip(image, boxes, rng, horizontal=True):
    """A left-right (or top-bottom) mirror with probability 1/2, the boxes mirrored with it."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if rng.random() >= 0.5:
        return image, boxes
    x1, y1, x2, y2 = boxes.T
    if horizontal:
        width = np.float32(image.shape[1])
        return image[:, ::-1], np.stack([width - x2, y1, width - x1, y2], axis=-1)
    height = np.float32(image.shape[0])
    return image[::-1], np.stack([x1, height - y2, x2, height - y1], axis=-1)


def dihedral(image, boxes, rng):
    """Any of the 8 flips and quarter turns of the square, the boxes with the pixels: a
    transpose, a left-right and a top-bottom mirror, each with probability 1/2."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if rng.random() < 0.5:
        image, boxes = np.swapaxes(image, 0, 1), boxes[:, [1, 0, 3, 2]]
    image, boxes = flip(image, boxes, rng, horizontal=True)
    return flip(image, boxes, rng, horizontal=False)


def zoom_out(image, boxes, rng, max_ratio=4.0, probability=0.5):
    """With ``probability``, the image placed at random on a canvas ``ratio`` times its sides
    (``ratio`` uniform in ``[1, max_ratio)``), filled with ``MEAN_PIXEL``: objects become
    smaller. The boxes move with the image. Always draws 4 numbers from ``rng``."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    zoom, ratio = rng.random() < probability, rng.uniform(1.0, max_ratio)
    corner = rng.random(2)
    if not zoom:
        return image, boxes
    height, width = image.shape[:2]
    canvas_h, canvas_w = int(height * ratio), int(width * ratio)
    top, left = int(corner[0] * (canvas_h - height)), int(corner[1] * (canvas_w - width))
    canvas = np.empty((canvas_h, canvas_w, image.shape[2]), np.float32)
    canvas[...] = np.asarray(MEAN_PIXEL, np.float32)
    canvas[top:top + height, left:left + width] = image
    shift = np.array([left, top, left, top], np.float32)
    return canvas, boxes + shift


def min_iou_crop(image, boxes, labels, rng):
    """SSD's random crop: a window (0.3-1 of each side, aspect h/w 1/2-2) whose IoU with every
    box reaches a randomly chosen minimum (0.1 ... 0.9, or none), or the whole image.

    The draw is uniform over 7 choices: keep the image, one of
    ``MIN_IOU_CHOICES``, or any window. Of ``CROP_TRIALS`` candidate windows
    the first that qualifies (also: some box's centre strictly inside) is
    used; if none does, or the draw says keep, the image is unchanged. The
    window is cut at whole pixels (left and top rounded down, at least one
    pixel); boxes whose centre is inside it are kept, shifted and clipped to
    it. An image without boxes is not cropped.

    Returns:
        ``(image, boxes, labels)``, boxes float32 ``(M, 4)``, labels ``(M,)``.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels).reshape(-1)
    height, width = image.shape[:2]
    window, keep = _crop_window(height, width, boxes, rng)[:2]
    left, top = int(window[0]), int(window[1])
    right, bottom = max(int(window[2]), left + 1), max(int(window[3]), top + 1)
    offset = np.array([left, top, left, top], np.float32)
    limit = np.array([right - left, bottom - top] * 2, np.float32)
    kept = np.clip(boxes[keep] - offset, 0, limit)
    return image[top:bottom, left:right], kept, labels[keep]


def _crop_window(height, width, boxes, rng):
    """`min_iou_crop`'s choice: ``(window, keep, minimum, found)``: the float ``xyxy`` window
    (the whole image when none qualified), the boxes kept, the drawn minimum IoU (0: keep the
    image, -1: any window) and whether a candidate window qualified."""
    choice = rng.integers(0, len(MIN_IOU_CHOICES) + 2)
    minimum = ((0.0,) + MIN_IOU_CHOICES + (-1.0,))[choice]
    sides = rng.uniform(0.3, 1.0, (CROP_TRIALS, 2))
    corner = rng.random((CROP_TRIALS, 2))
    crop_w, crop_h = sides[:, 0] * width, sides[:, 1] * height
    x0, y0 = corner[:, 0] * (width - crop_w), corner[:, 1] * (height - crop_h)
    windows = np.stack([x0, y0, x0 + crop_w, y0 + crop_h], axis=-1)  # (T, 4)
    aspect = crop_h / crop_w
    iou = box_iou(windows, boxes.astype(np.float64), np)  # (T, N)
    lowest = np.concatenate([iou, np.full((CROP_TRIALS, 1), 2.0)], axis=1).min(axis=1)
    centres = np.stack([boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3]], axis=-1) / 2
    inside = ((centres[None, :, 0] > windows[:, None, 0])
              & (centres[None, :, 0] < windows[:, None, 2])
              & (centres[None, :, 1] > windows[:, None, 1])
              & (centres[None, :, 1] < windows[:, None, 3]))  # (T, N)
    qualifies = ((aspect >= 0.5) & (aspect <= 2.0) & (lowest >= minimum) & inside.any(axis=1)
                 & (choice > 0))
    if not qualifies.any():
        return np.array([0.0, 0.0, width, height]), np.ones(len(boxes), bool), minimum, False
    pick = int(np.argmax(qualifies))
    return windows[pick], inside[pick], minimum, True

"""Detection examples -> batches an SSD trains on: tiling, box-aware augmentation, anchor targets.

An example is a dict ``{"image": uint8 (H, W, 3) or a path, "boxes": (N, 4)
float pixel xyxy, "labels": (N,) int 0-based}`` (what
`keras_coordatt.data.detection` sources give). The pipeline:

- optionally cuts large images into square tiles (`tile_examples`), keeping a
  box in a tile when at least half of it is inside (clipped to the tile);
- augments the training examples, all randomness stateless and a function of
  (seed, epoch, example), so a resumed epoch sees the same batches:
  ``"ssd"``: SSD's photometric distortion, zoom-out (the image on a canvas up
  to 4x its size, filled with the mean pixel), the min-IoU random crop (a crop
  whose IoU with every box is at least one of 0.1/0.3/0.5/0.7/0.9, or any
  crop, or none; boxes kept when their centre is inside) and a horizontal
  flip; ``"aerial"``: the photometric distortion and any of the 8 flips and
  quarter turns (top-down imagery has no up), no rescaling, so object sizes
  stay those of the test images; ``None``: nothing;
- resizes to the model's square input, applies its pixel range, and matches
  the boxes to the anchors (`keras_coordatt.tasks.anchors.match_anchors`):
  ``(image, {"classes": (A,) int32 targets, 0 background, "boxes": (A, 5)
  coded offsets + the class target})``, what `SSDClassificationLoss` and
  `SSDBoxLoss` read.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_coordatt.data.core.batches import STREAM_SHUFFLE_BUFFER
from keras_coordatt.data.core.batches import seed_of_epoch
from keras_coordatt.data.core.batches import finish_batches
from keras_coordatt.data.core.batches import in_order
from keras_coordatt.data.core.images import image_of
from keras_coordatt.preprocessing import Preprocessing
from keras_coordatt.preprocessing import stretch_to_input
from keras_coordatt.tasks.anchors import anchor_targets
from keras_coordatt.tasks.boxes import box_iou
from keras_coordatt.tasks.tiling import tile_examples as _tile_examples

AUGMENTATIONS = ("ssd", "aerial", None)
MEAN_PIXEL = (123.0, 117.0, 104.0)  # the fill of SSD's zoom-out
MIN_IOU_CHOICES = (0.1, 0.3, 0.5, 0.7, 0.9)
CROP_TRIALS = 32


def tile_examples(examples, tile, overlap=0.0, min_visible=0.5, load=None):
    """`keras_coordatt.tasks.tiling.tile_examples`, reading images from their files too."""
    return _tile_examples(examples, tile, overlap, min_visible, load or image_of)


@dataclasses.dataclass(frozen=True)
class DetectionPipelineOptions:
    """How detection examples become batches.

    Attributes:
        image_size: the model's square input side.
        batch_size: the global batch size.
        anchors: the model's `SSDAnchors` (``model.anchors``).
        preprocessing: the model's `Preprocessing` (its pixel range).
        augment: ``"ssd"``, ``"aerial"`` or None (see the module docstring).
        iou_threshold: the IoU an anchor needs to take a ground truth.
        seed: the shuffle and augmentation seed.
        deterministic: deterministic tf.data (same batches every run).
    """

    image_size: int
    batch_size: int
    anchors: object
    preprocessing: Preprocessing = Preprocessing()
    augment: str | None = "ssd"
    iou_threshold: float = 0.5
    seed: int = 0
    deterministic: bool = False

    def __post_init__(self):
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
        if self.anchors.image_size != self.image_size:
            raise ValueError(f"the anchors are for {self.anchors.image_size}-pixel images, the "
                             f"pipeline makes {self.image_size}-pixel ones")


def detection_batches(examples, options, train, epoch=0):
    """A batched ``tf.data.Dataset`` of ``(image, targets)`` for the examples.

    Training batches are shuffled and augmented per ``(options.seed,
    epoch)`` and drop the last partial batch; eval batches keep the order and
    every example.
    """
    if not examples:
        raise ValueError("no detection examples to make batches from")
    anchors = options.anchors.boxes()
    order = np.arange(len(examples))
    epoch_seed = seed_of_epoch(options.seed, epoch)
    if train:
        order = np.random.default_rng(epoch_seed).permutation(order)

    def generate():
        for index, example in in_order(examples, order):
            yield (image_of(example), np.asarray(example["boxes"], np.float32).reshape(-1, 4),
                   np.asarray(example["labels"], np.int32).reshape(-1), np.int64(index))

    dataset = tf.data.Dataset.from_generator(generate, output_signature=(
        tf.TensorSpec((None, None, 3), tf.uint8), tf.TensorSpec((None, 4), tf.float32),
        tf.TensorSpec((None,), tf.int32), tf.TensorSpec((), tf.int64)))
    if train and not isinstance(examples, list):  # streamed: a seeded shuffle buffer
        dataset = dataset.shuffle(STREAM_SHUFFLE_BUFFER, seed=epoch_seed % 2**31)

    def prepare(image, boxes, labels, index):
        image = tf.cast(image, tf.float32)
        if train and options.augment:
            seed = tf.stack([tf.constant(epoch_seed, tf.int64), index])
            image, boxes, labels = augment_example(image, boxes, labels, seed, options.augment)
        return make_targets(image, boxes, labels, anchors, options)

    return finish_batches(dataset, prepare, options.batch_size, train, len(order))


def make_targets(image, boxes, labels, anchors, options):
    """Resize to the input side, apply the pixel range, and match the boxes to the anchors."""
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    relative = boxes / tf.stack([size[1], size[0], size[1], size[0]])
    image = stretch_to_input(image, options.image_size, options.preprocessing.pixel_range)
    classes, box_targets = tf.numpy_function(
        lambda b, l: anchor_targets(b, l, anchors, options.iou_threshold), [relative, labels],
        [tf.int32, tf.float32], stateful=False)
    count = len(anchors)
    return image, {"classes": tf.ensure_shape(classes, (count,)),
                   "boxes": tf.ensure_shape(box_targets, (count, 5))}


def augment_example(image, boxes, labels, seed, kind):
    """One example augmented (``"ssd"`` or ``"aerial"``); float image 0..255, pixel boxes."""
    seeds = [tf.random.experimental.stateless_fold_in(seed, k) for k in range(8)]
    image = photometric_distortion(image, seeds[0])
    if kind == "aerial":
        return dihedral(image, boxes, seeds[1]) + (labels,)
    image, boxes = zoom_out(image, boxes, seeds[2])
    image, boxes, labels = min_iou_crop(image, boxes, labels, seeds[3])
    image, boxes = flip(image, boxes, seeds[4], horizontal=True)
    return image, boxes, labels


def _chance(seed, probability=0.5):
    return tf.random.stateless_uniform((), seed) < probability


def photometric_distortion(image, seed):
    """SSD's colour distortions, each with probability 1/2: brightness +-32, contrast and
    saturation x0.5-1.5, hue +-18 degrees. Float image 0..255 in and out."""
    seeds = [tf.random.experimental.stateless_fold_in(seed, k) for k in range(8)]
    x = image / 255.0
    x = tf.where(_chance(seeds[0]),
                 tf.image.stateless_random_brightness(x, 32 / 255, seeds[1]), x)
    x = tf.where(_chance(seeds[2]),
                 tf.image.stateless_random_contrast(x, 0.5, 1.5, seeds[3]), x)
    x = tf.where(_chance(seeds[4]),
                 tf.image.stateless_random_saturation(x, 0.5, 1.5, seeds[5]), x)
    x = tf.where(_chance(seeds[6]), tf.image.stateless_random_hue(x, 0.05, seeds[7]), x)
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0


def flip(image, boxes, seed, horizontal=True):
    """A left-right (or top-bottom) mirror with probability 1/2, boxes mirrored with it."""
    width = tf.cast(tf.shape(image)[1 if horizontal else 0], tf.float32)
    x1, y1, x2, y2 = tf.unstack(boxes, axis=-1)
    if horizontal:
        mirrored_image = image[:, ::-1]
        mirrored = tf.stack([width - x2, y1, width - x1, y2], axis=-1)
    else:
        mirrored_image = image[::-1]
        mirrored = tf.stack([x1, width - y2, x2, width - y1], axis=-1)
    do = _chance(seed)
    return tf.cond(do, lambda: mirrored_image, lambda: image), tf.where(do, mirrored, boxes)


def dihedral(image, boxes, seed):
    """Any of the 8 flips and quarter turns of the square's symmetry group, boxes with it."""
    seeds = [tf.random.experimental.stateless_fold_in(seed, k) for k in range(3)]
    x1, y1, x2, y2 = tf.unstack(boxes, axis=-1)
    transpose = _chance(seeds[0])
    image = tf.cond(transpose, lambda: tf.transpose(image, [1, 0, 2]), lambda: image)
    boxes = tf.where(transpose, tf.stack([y1, x1, y2, x2], axis=-1), boxes)
    image, boxes = flip(image, boxes, seeds[1], horizontal=True)
    return flip(image, boxes, seeds[2], horizontal=False)


def zoom_out(image, boxes, seed, max_ratio=4.0, probability=0.5):
    """With ``probability``, the image placed at random on a canvas up to ``max_ratio``
    times its sides, filled with the mean pixel (objects become smaller)."""
    seeds = [tf.random.experimental.stateless_fold_in(seed, k) for k in range(3)]
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    ratio = tf.where(_chance(seeds[0], probability),
                     tf.random.stateless_uniform((), seeds[1], 1.0, max_ratio), 1.0)
    canvas_h, canvas_w = tf.cast(height * ratio, tf.int32), tf.cast(width * ratio, tf.int32)
    corner = tf.random.stateless_uniform((2,), seeds[2])
    top = tf.cast(corner[0] * tf.cast(canvas_h - shape[0], tf.float32), tf.int32)
    left = tf.cast(corner[1] * tf.cast(canvas_w - shape[1], tf.float32), tf.int32)
    mean = tf.constant(MEAN_PIXEL, tf.float32)
    padded = tf.pad(image - mean, [[top, canvas_h - shape[0] - top],
                                   [left, canvas_w - shape[1] - left], [0, 0]]) + mean
    shift = tf.cast(tf.stack([left, top, left, top]), tf.float32)
    return padded, boxes + shift


def min_iou_crop(image, boxes, labels, seed):
    """SSD's random crop: a window (0.3-1 of each side, aspect 1/2-2) whose IoU with every
    box reaches a randomly chosen minimum (0.1 ... 0.9, or none), or the whole image.

    Boxes whose centre falls in the window are kept, clipped to it. Among
    ``CROP_TRIALS`` candidate windows the first that qualifies is used; if
    none does, or the draw says keep, the image is unchanged.
    """
    seeds = [tf.random.experimental.stateless_fold_in(seed, k) for k in range(4)]
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    # choice 0: keep the image; 1..5: a minimum IoU; 6: any window
    choice = tf.random.stateless_uniform((), seeds[0], 0, len(MIN_IOU_CHOICES) + 2, tf.int32)
    minimum = tf.gather(tf.constant((0.0,) + MIN_IOU_CHOICES + (-1.0,)), choice)
    sides = tf.random.stateless_uniform((CROP_TRIALS, 2), seeds[1], 0.3, 1.0)
    crop_w, crop_h = sides[:, 0] * width, sides[:, 1] * height
    corner = tf.random.stateless_uniform((CROP_TRIALS, 2), seeds[2])
    x0, y0 = corner[:, 0] * (width - crop_w), corner[:, 1] * (height - crop_h)
    windows = tf.stack([x0, y0, x0 + crop_w, y0 + crop_h], axis=-1)  # (T, 4)
    aspect_ok = tf.logical_and(crop_h / crop_w >= 0.5, crop_h / crop_w <= 2.0)
    iou = box_iou(windows, boxes, tf)  # (T, N)
    lowest = tf.reduce_min(tf.concat([iou, tf.fill([CROP_TRIALS, 1], 2.0)], axis=1), axis=1)
    centres = tf.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=-1)
    inside = _centres_inside(windows, centres)  # (T, N)
    qualifies = aspect_ok & (lowest >= minimum) & tf.reduce_any(inside, axis=1) & (choice > 0)
    found = tf.reduce_any(qualifies)
    pick = tf.argmax(tf.cast(qualifies, tf.int32), output_type=tf.int32)
    window = tf.where(found, windows[pick], tf.stack([0.0, 0.0, width, height]))
    keep = tf.where(found, inside[pick], tf.ones_like(labels, tf.bool))
    left, top = tf.cast(window[0], tf.int32), tf.cast(window[1], tf.int32)
    right = tf.maximum(tf.cast(window[2], tf.int32), left + 1)
    bottom = tf.maximum(tf.cast(window[3], tf.int32), top + 1)
    cropped = image[top:bottom, left:right]
    offset = tf.cast(tf.stack([left, top, left, top]), tf.float32)
    limit = tf.cast(tf.stack([right - left, bottom - top] * 2), tf.float32)
    kept = tf.clip_by_value(tf.boolean_mask(boxes, keep) - offset, 0.0, limit)
    return cropped, kept, tf.boolean_mask(labels, keep)


def _centres_inside(windows, centres):
    return ((centres[None, :, 0] > windows[:, None, 0]) & (centres[None, :, 0] < windows[:, None, 2])
            & (centres[None, :, 1] > windows[:, None, 1]) & (centres[None, :, 1] < windows[:, None, 3]))

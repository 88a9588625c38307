"""Segmentation examples -> ``(image, mask)`` batches for DeepLabV3, with augmentation.

An example is a dict ``{"image": uint8 (H, W, 3) or a path, "mask": uint8
(H, W) class indices, 255 = ignore, or a path}`` (what
`keras_coordatt.data.segmentation` sources give). Training examples are
augmented with stateless randomness, a function of (seed, epoch, example):
a random rescale (``scale_range``, DeepLab's 0.5-2), a random crop of the
model's side (padded with zeros and the ignore label where the image is
smaller), a left-right flip, and with ``aerial`` any of the 8 flips and
quarter turns. Eval examples are resized to the model's side (the mask with
nearest neighbours). Images get the model's pixel range; masks stay uint8
with 255 = ignore, what ``SparseCategoricalCrossentropy(ignore_class=255)``
and ``MeanIoU(ignore_class=255)`` read.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_coordatt.data.core.batches import STREAM_SHUFFLE_BUFFER
from keras_coordatt.data.core.batches import finish_batches
from keras_coordatt.data.core.batches import in_order
from keras_coordatt.data.core.batches import seed_of_epoch
from keras_coordatt.data.core.images import image_of
from keras_coordatt.data.segmentation.source import IGNORE_LABEL
from keras_coordatt.data.segmentation.source import mask_of
from keras_coordatt.preprocessing import Preprocessing
from keras_coordatt.preprocessing import to_pixel_range


@dataclasses.dataclass(frozen=True)
class SegmentationPipelineOptions:
    """How segmentation examples become batches.

    Attributes:
        image_size: the model's square input side.
        batch_size: the global batch size.
        preprocessing: the model's `Preprocessing` (its pixel range).
        scale_range: the random rescale's range (1, 1 turns it off).
        aerial: also flip top-bottom and turn by quarter turns.
        repeats: each training example this many times per epoch (few large images).
        seed: the shuffle and augmentation seed.
    """

    image_size: int
    batch_size: int
    preprocessing: Preprocessing = Preprocessing()
    scale_range: tuple = (0.5, 2.0)
    aerial: bool = False
    repeats: int = 1
    seed: int = 0


def segmentation_batches(examples, options, train, epoch=0):
    """A batched ``tf.data.Dataset`` of ``(image, mask)``; training shuffled and augmented."""
    if not examples:
        raise ValueError("no segmentation examples to make batches from")
    order = np.arange(len(examples))
    epoch_seed = seed_of_epoch(options.seed, epoch)
    if train:
        order = np.random.default_rng(epoch_seed).permutation(np.tile(order, options.repeats))

    def generate():
        for position, (index, example) in enumerate(in_order(examples, order)):
            image, mask = image_of(example), mask_of(example)
            if image.shape[:2] != mask.shape[:2]:
                raise ValueError(f"example {example.get('id', index)}: image {image.shape[:2]} and "
                                 f"mask {mask.shape[:2]} differ in size")
            yield image, mask, np.int64(position)

    dataset = tf.data.Dataset.from_generator(generate, output_signature=(
        tf.TensorSpec((None, None, 3), tf.uint8), tf.TensorSpec((None, None), tf.uint8),
        tf.TensorSpec((), tf.int64)))
    if train and not isinstance(examples, list):  # streamed: a seeded shuffle buffer
        dataset = dataset.shuffle(STREAM_SHUFFLE_BUFFER, seed=epoch_seed % 2**31)
    side = options.image_size

    def prepare(image, mask, position):
        image = tf.cast(image, tf.float32)
        mask = mask[..., None]
        if train:
            seed = tf.stack([tf.constant(epoch_seed, tf.int64), position])
            image, mask = augment_pair(image, mask, seed, options)
        else:
            image = tf.image.resize(image, (side, side), antialias=True)
            mask = tf.image.resize(mask, (side, side), method="nearest")
        image = to_pixel_range(tf.clip_by_value(image, 0.0, 255.0), options.preprocessing.pixel_range)
        return tf.ensure_shape(image, (side, side, 3)), tf.ensure_shape(mask[..., 0], (side, side))

    streamed = not isinstance(examples, list)  # read once, in its own order
    return finish_batches(dataset, prepare, options.batch_size, train,
                          len(examples) if streamed else len(order))


def augment_pair(image, mask, seed, options):
    """Rescale, crop/pad to the model's side and flip image and mask together."""
    seeds = [tf.random.experimental.stateless_fold_in(seed, k) for k in range(6)]
    side = options.image_size
    low, high = options.scale_range
    scale = tf.random.stateless_uniform((), seeds[0], low, high)
    size = tf.cast(tf.cast(tf.shape(image)[:2], tf.float32) * scale, tf.int32)
    size = tf.maximum(size, 1)
    image = tf.image.resize(image, size, antialias=True)
    mask = tf.image.resize(mask, size, method="nearest")
    # Pad to at least the side (image zeros, mask ignore), then crop at random.
    pad_h, pad_w = tf.maximum(side - size[0], 0), tf.maximum(side - size[1], 0)
    image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]])
    mask = tf.pad(tf.cast(mask, tf.int32) - IGNORE_LABEL, [[0, pad_h], [0, pad_w], [0, 0]]) + IGNORE_LABEL
    both = tf.concat([image, tf.cast(mask, tf.float32)], axis=-1)
    both = tf.image.stateless_random_crop(both, (side, side, 4), seeds[1])
    both = tf.image.stateless_random_flip_left_right(both, seeds[2])
    if options.aerial:
        both = tf.image.stateless_random_flip_up_down(both, seeds[3])
        turn = tf.random.stateless_uniform((), seeds[4], 0, 2, tf.int32)
        both = tf.cond(turn > 0, lambda: tf.transpose(both, [1, 0, 2]), lambda: both)
    return both[..., :3], tf.cast(both[..., 3:], tf.uint8)


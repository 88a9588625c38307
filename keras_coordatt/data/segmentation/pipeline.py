"""Segmentation examples -> ``(image, mask)`` batches for DeepLabV3, with augmentation.

An example is a dict ``{"image": uint8 (H, W, 3) or a path, "mask": uint8
(H, W) class indices, 255 = ignore, or a path}`` (what
`keras_coordatt.data.segmentation` sources give). Training examples are
augmented (`keras_coordatt.data.segmentation.augment`, NumPy), all randomness
a function of (seed, epoch, position in the epoch): a random rescale
(``scale_range``, DeepLab's 0.5-2), a random crop of the model's side (padded
with zeros and the ignore label where the image is smaller), a left-right
flip, and with ``aerial`` any of the 8 flips and quarter turns. Eval examples
are resized to the model's side (the mask with nearest neighbours). Images get
the model's pixel range; masks stay uint8 with 255 = ignore, what
``SparseCategoricalCrossentropy(ignore_class=255)`` and
``MeanIoU(ignore_class=255)`` read. ``tf.data`` runs the NumPy steps through
``tf.numpy_function``; without TensorFlow a ``keras.utils.PyDataset`` does
(`keras_coordatt.data.core.batches`).
"""

import dataclasses

import numpy as np

from keras_coordatt.data.core.arrays import network_input
from keras_coordatt.data.core.batches import LOADERS
from keras_coordatt.data.core.batches import PreparedExamples
from keras_coordatt.data.core.batches import example_batches
from keras_coordatt.data.core.batches import seed_of_epoch
from keras_coordatt.data.core.images import image_of
from keras_coordatt.data.segmentation.augment import augment_pair
from keras_coordatt.data.segmentation.augment import resize_pair
from keras_coordatt.data.segmentation.source import mask_of
from keras_coordatt.preprocessing import Preprocessing


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
        loader: ``"auto"``, ``"tf.data"`` or ``"python"`` (see
            `keras_coordatt.data.core.batches`).
    """

    image_size: int
    batch_size: int
    preprocessing: Preprocessing = Preprocessing()
    scale_range: tuple = (0.5, 2.0)
    aerial: bool = False
    repeats: int = 1
    seed: int = 0
    loader: str = "auto"

    def __post_init__(self):
        if self.loader not in LOADERS:
            raise ValueError(f"loader must be one of {LOADERS}, got {self.loader!r}")


def segmentation_batches(examples, options, train, epoch=0):
    """The batches of ``(image, mask)`` (a ``tf.data.Dataset``, or an `ExampleBatches` where
    ``options.loader`` says so or TensorFlow is absent); training shuffled and augmented."""
    if not examples:
        raise ValueError("no segmentation examples to make batches from")
    order = np.arange(len(examples))
    epoch_seed = seed_of_epoch(options.seed, epoch)
    if train:
        order = np.random.default_rng(epoch_seed).permutation(np.tile(order, options.repeats))
    return example_batches(examples, order, segmentation_examples(options), options.batch_size,
                           train, epoch_seed, options.loader)


def read_pair(example, index):
    """An example's uint8 image ``(H, W, 3)`` and mask ``(H, W)``, checked to be one size."""
    image, mask = image_of(example), mask_of(example)
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(f"example {example.get('id', index)}: image {image.shape[:2]} and "
                         f"mask {mask.shape[:2]} differ in size")
    return image, mask


def segmentation_examples(options):
    """The `PreparedExamples` of segmentation: read, augment (training) or resize, pixel range."""
    side = options.image_size

    def prepare(image, mask, seed):
        image = np.asarray(image, np.float32)
        if seed is None:
            image, mask = resize_pair(image, mask, side)
        else:
            image, mask = augment_pair(image, mask, np.random.default_rng(seed), side,
                                       options.scale_range, options.aerial)
        return network_input(image, side, options.preprocessing.pixel_range), mask

    return PreparedExamples(
        read_pair, prepare, (np.float32, np.uint8), ((side, side, 3), (side, side)),
        lambda images, masks: (images, masks), read_dtypes=(np.uint8, np.uint8),
        read_shapes=((None, None, 3), (None, None)))

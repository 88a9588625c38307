"""Detection examples -> batches an SSD trains on: tiling, box-aware augmentation, anchor targets.

An example is a dict ``{"image": uint8 (H, W, 3) or a path, "boxes": (N, 4)
float pixel xyxy, "labels": (N,) int 0-based}`` (what
`keras_coordatt.data.detection` sources give). The pipeline:

- optionally cuts large images into square tiles (`tile_examples`), keeping a
  box in a tile when at least half of it is inside (clipped to the tile);
- augments the training examples (`keras_coordatt.data.detection.augment`,
  NumPy), all randomness a function of (seed, epoch, position in the epoch), so
  a resumed epoch sees the same batches:
  ``"ssd"``: SSD's photometric distortion, zoom-out (the image on a canvas up
  to 4x its size, filled with the mean pixel), the min-IoU random crop (a crop
  whose IoU with every box is at least one of 0.1/0.3/0.5/0.7/0.9, or any
  crop, or none; boxes kept when their centre is inside) and a horizontal
  flip; ``"aerial"``: the photometric distortion and any of the 8 flips and
  quarter turns (top-down imagery has no up), no rescaling, so object sizes
  stay those of the test images; ``None``: nothing;
- resizes to the model's square input, applies its pixel range, and matches
  the boxes to the anchors (`keras_coordatt.tasks.anchors.anchor_targets`):
  ``(image, {"classes": (A,) int32 targets, 0 background, "boxes": (A, 5)
  coded offsets + the class target})``, what `SSDClassificationLoss` and
  `SSDBoxLoss` read.

Every step is NumPy, one example at a time; ``tf.data`` runs it through
``tf.numpy_function`` and, without TensorFlow, a ``keras.utils.PyDataset``
does (`keras_coordatt.data.core.batches`): the same batches either way.
"""

import dataclasses

import numpy as np

from keras_coordatt.data.core.arrays import network_input
from keras_coordatt.data.core.batches import LOADERS
from keras_coordatt.data.core.batches import PreparedExamples
from keras_coordatt.data.core.batches import example_batches
from keras_coordatt.data.core.batches import seed_of_epoch
from keras_coordatt.data.core.images import image_of
from keras_coordatt.data.detection.augment import augment_example
from keras_coordatt.preprocessing import Preprocessing
from keras_coordatt.tasks.anchors import anchor_targets
from keras_coordatt.tasks.tiling import tile_examples as _tile_examples

AUGMENTATIONS = ("ssd", "aerial", None)


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
        deterministic: kept for configs that set it; the batches are the same every run
            whatever it says.
        loader: ``"auto"``, ``"tf.data"`` or ``"python"`` (see
            `keras_coordatt.data.core.batches`).
    """

    image_size: int
    batch_size: int
    anchors: object
    preprocessing: Preprocessing = Preprocessing()
    augment: str | None = "ssd"
    iou_threshold: float = 0.5
    seed: int = 0
    deterministic: bool = False
    loader: str = "auto"

    def __post_init__(self):
        if self.loader not in LOADERS:
            raise ValueError(f"loader must be one of {LOADERS}, got {self.loader!r}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
        if self.anchors.image_size != self.image_size:
            raise ValueError(f"the anchors are for {self.anchors.image_size}-pixel images, the "
                             f"pipeline makes {self.image_size}-pixel ones")


def detection_batches(examples, options, train, epoch=0):
    """The batches of ``(image, targets)`` for the examples (a ``tf.data.Dataset``, or an
    `ExampleBatches` where ``options.loader`` says so or TensorFlow is absent).

    Training batches are shuffled and augmented per ``(options.seed,
    epoch)`` and drop the last partial batch; eval batches keep the order and
    every example.
    """
    if not examples:
        raise ValueError("no detection examples to make batches from")
    order = np.arange(len(examples))
    epoch_seed = seed_of_epoch(options.seed, epoch)
    if train:
        order = np.random.default_rng(epoch_seed).permutation(order)
    return example_batches(examples, order, detection_examples(options), options.batch_size,
                           train, epoch_seed, options.loader)


def read_example(example, index):
    """An example's uint8 image, float32 pixel boxes ``(N, 4)`` and int32 labels ``(N,)``."""
    return (image_of(example), np.asarray(example["boxes"], np.float32).reshape(-1, 4),
            np.asarray(example["labels"], np.int32).reshape(-1))


def detection_examples(options):
    """The `PreparedExamples` of detection: read, augment (training), resize, targets."""
    anchors = options.anchors.boxes()
    count, side = len(anchors), options.image_size

    def prepare(image, boxes, labels, seed):
        image = np.asarray(image, np.float32)
        if seed is not None and options.augment:
            image, boxes, labels = augment_example(image, boxes, labels,
                                                   np.random.default_rng(seed), options.augment)
        return make_targets(image, boxes, labels, anchors, options)

    def pack(images, classes, boxes):
        return images, {"classes": classes, "boxes": boxes}

    return PreparedExamples(
        read_example, prepare, (np.float32, np.int32, np.float32),
        ((side, side, 3), (count,), (count, 5)), pack,
        read_dtypes=(np.uint8, np.float32, np.int32),
        read_shapes=((None, None, 3), (None, 4), (None,)))


def make_targets(image, boxes, labels, anchors, options):
    """Resize to the input side, apply the pixel range, and match the boxes to the anchors:
    ``(image (S, S, 3) float32, classes (A,) int32, boxes (A, 5) float32)``."""
    height, width = image.shape[:2]
    relative = np.asarray(boxes, np.float32).reshape(-1, 4) / np.array(
        [width, height, width, height], np.float32)
    pixels = network_input(image, options.image_size, options.preprocessing.pixel_range)
    classes, box_targets = anchor_targets(relative, labels, anchors, options.iou_threshold)
    return pixels, classes, box_targets

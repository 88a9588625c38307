"""Data for the three tasks, over one shared core.

- `classification`: ``load_datasets(source, PipelineOptions(...))`` returns
  a `Datasets` with batched ``train`` and ``eval`` ``tf.data`` pipelines;
  ``load_images`` reads raw uint8 images of one split (export checks, int8
  calibration). Sources: ``"elpv"`` (2,624 solar cells in four defect
  classes, a fixed stratified 75/25 split, licence CC BY-NC-SA 4.0),
  ``"tfds:NAME"`` (a tensorflow-datasets dataset), ``"folder:/path"`` (a
  folder per class).
- `detection`: `open_detection_source` (``"voc:PATH"``, ``"coco:PATH"`` in
  COCO's, Roboflow's, Label Studio's or CVAT's layout, ``"tfds:voc/2007"``,
  ``"tfds:coco/2017"``): example dicts per split and a ``tf.data`` of uint8
  images with pixel boxes and labels.
- `segmentation`: `open_segmentation_source` (``"voc:PATH"``,
  ``"masks:PATH"``, ``"cityscapes:PATH"``, ``"tfds:oxford_iiit_pet"``): the
  same with masks of class indices, 255 ignored (``IGNORE_LABEL``).
- `task_data`: ``load_task_datasets(task, spec, options)``, the detection
  and segmentation batches the trainer reads, with the built-in
  ``deepforest`` and ``stardist`` sources.
- `core`: what they share: split names, image decoding, folder listing,
  tensorflow-datasets.

Needs TensorFlow; the ``elpv`` source needs the ``[demo]`` extra
(``elpv-dataset``), ``tfds:`` the ``[train]`` extra (``tensorflow-datasets``),
mask PNGs Pillow.
"""

try:
    import tensorflow  # noqa: F401  (the pipelines below are tf.data)
except ImportError as error:
    raise ImportError(
        "keras_coordatt.data (the trainer's input pipelines) is built on tf.data and TensorFlow "
        "is not installed here: pip install tensorflow-cpu==2.21.0 beside your backend (the "
        "network still trains on it); the layers, models and tasks need no TensorFlow") from error

from keras_coordatt.data.classification.pipeline import SOURCE_FORMS
from keras_coordatt.data.classification.pipeline import Datasets
from keras_coordatt.data.classification.pipeline import PipelineOptions
from keras_coordatt.data.classification.pipeline import load_datasets
from keras_coordatt.data.classification.pipeline import load_images
from keras_coordatt.data.classification.pipeline import open_source
from keras_coordatt.data.core.images import load_image
from keras_coordatt.data.detection.factory import open_detection_source
from keras_coordatt.data.detection.source import DetectionSource
from keras_coordatt.data.detection.source import DetectionSplit
from keras_coordatt.data.detection.source import detection_split
from keras_coordatt.data.segmentation.factory import open_segmentation_source
from keras_coordatt.data.segmentation.source import IGNORE_LABEL
from keras_coordatt.data.segmentation.source import SegmentationSource
from keras_coordatt.data.segmentation.source import SegmentationSplit
from keras_coordatt.data.segmentation.source import load_mask
from keras_coordatt.data.segmentation.source import load_segmentation_example
from keras_coordatt.data.segmentation.source import segmentation_split
from keras_coordatt.data.task_data import TaskDatasets
from keras_coordatt.data.task_data import load_task_datasets

__all__ = [
    "IGNORE_LABEL",
    "SOURCE_FORMS",
    "Datasets",
    "DetectionSource",
    "DetectionSplit",
    "PipelineOptions",
    "SegmentationSource",
    "SegmentationSplit",
    "TaskDatasets",
    "detection_split",
    "load_datasets",
    "load_image",
    "load_images",
    "load_mask",
    "load_segmentation_example",
    "load_task_datasets",
    "open_detection_source",
    "open_segmentation_source",
    "open_source",
    "segmentation_split",
]

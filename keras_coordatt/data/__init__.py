"""Data for training and export checks: ELPV, tensorflow-datasets and image folders.

``load_datasets(source, PipelineOptions(...))`` returns a `Datasets` with
batched ``train`` and ``eval`` ``tf.data`` pipelines; ``load_images`` reads
raw uint8 images of one split (export checks, int8 calibration). Sources:

- ``"elpv"``: 2,624 solar cell images in four defect classes, with a fixed
  stratified 75/25 split (`keras_coordatt.data.elpv`; licence CC BY-NC-SA 4.0);
- ``"tfds:NAME"``: a tensorflow-datasets dataset (`keras_coordatt.data.tfds_source`);
- ``"folder:/path"``: a folder per class (`keras_coordatt.data.image_folder`).

Detection and segmentation data come from `open_detection_source`
(``"voc:PATH"``, ``"coco:PATH"``, ``"tfds:voc/2007"``, ``"tfds:coco/2017"``;
`keras_coordatt.data.detection`) and `open_segmentation_source`
(``"voc:PATH"``, ``"masks:PATH"``, ``"cityscapes:PATH"``, ``"tfds:oxford_iiit_pet"``;
`keras_coordatt.data.segmentation`): example dicts per split and a
``tf.data`` of uint8 images with pixel boxes and labels, or masks.

Needs TensorFlow; the ``elpv`` and ``tfds:`` sources need the ``[train]``
extra (``elpv-dataset``, ``tensorflow-datasets``), mask PNGs Pillow.
"""

from keras_coordatt.data.detection import DetectionSource
from keras_coordatt.data.detection import DetectionSplit
from keras_coordatt.data.detection import detection_split
from keras_coordatt.data.detection import load_image
from keras_coordatt.data.detection import open_detection_source
from keras_coordatt.data.pipeline import SOURCE_FORMS
from keras_coordatt.data.pipeline import Datasets
from keras_coordatt.data.pipeline import PipelineOptions
from keras_coordatt.data.pipeline import load_datasets
from keras_coordatt.data.pipeline import load_images
from keras_coordatt.data.pipeline import open_source
from keras_coordatt.data.segmentation import SegmentationSource
from keras_coordatt.data.segmentation import SegmentationSplit
from keras_coordatt.data.segmentation import load_mask
from keras_coordatt.data.segmentation import load_segmentation_example
from keras_coordatt.data.segmentation import open_segmentation_source
from keras_coordatt.data.segmentation import segmentation_split

__all__ = [
    "SOURCE_FORMS",
    "Datasets",
    "DetectionSource",
    "DetectionSplit",
    "PipelineOptions",
    "SegmentationSource",
    "SegmentationSplit",
    "detection_split",
    "load_datasets",
    "load_image",
    "load_images",
    "load_mask",
    "load_segmentation_example",
    "open_detection_source",
    "open_segmentation_source",
    "open_source",
    "segmentation_split",
]

"""Data for training and export checks: ELPV, tensorflow-datasets and image folders.

``load_datasets(source, PipelineOptions(...))`` returns a `Datasets` with
batched ``train`` and ``eval`` ``tf.data`` pipelines; ``load_images`` reads
raw uint8 images of one split (export checks, int8 calibration). Sources:

- ``"elpv"``: 2,624 solar cell images in four defect classes, with a fixed
  stratified 75/25 split (`keras_coordatt.data.elpv`; licence CC BY-NC-SA 4.0);
- ``"tfds:NAME"``: a tensorflow-datasets dataset (`keras_coordatt.data.tfds_source`);
- ``"folder:/path"``: a folder per class (`keras_coordatt.data.image_folder`).

Needs TensorFlow; the ``elpv`` and ``tfds:`` sources need the ``[train]``
extra (``elpv-dataset``, ``tensorflow-datasets``).
"""

from keras_coordatt.data.pipeline import SOURCE_FORMS
from keras_coordatt.data.pipeline import Datasets
from keras_coordatt.data.pipeline import PipelineOptions
from keras_coordatt.data.pipeline import load_datasets
from keras_coordatt.data.pipeline import load_images
from keras_coordatt.data.pipeline import open_source

__all__ = [
    "SOURCE_FORMS",
    "Datasets",
    "PipelineOptions",
    "load_datasets",
    "load_images",
    "open_source",
]

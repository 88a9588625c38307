"""Data for training: ELPV, tensorflow-datasets and image folders as tf.data pipelines.

``load_datasets(source, ...)`` returns a ``Datasets`` with batched ``train``
and ``eval`` pipelines; ``preprocess_for_eval`` is the eval (and inference)
preprocessing, for export code to reuse. Sources:

- ``"elpv"``: 2,624 solar cell images in four defect classes, with a fixed
  stratified 75/25 split (``training.data.elpv``; licence CC BY-NC-SA 4.0);
- ``"tfds:NAME"``: a tensorflow-datasets dataset (``training.data.tfds_source``);
- ``"folder:/path"``: a folder per class (``training.data.image_folder``).
"""

from training.data.pipeline import Datasets
from training.data.pipeline import load_datasets
from training.data.pipeline import load_images
from training.data.preprocessing import augment_for_train
from training.data.preprocessing import preprocess_for_eval

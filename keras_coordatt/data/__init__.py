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

The classifier's pipelines are ``tf.data`` (TensorFlow needed); the detection
and segmentation ones are NumPy, fed through ``tf.data`` where TensorFlow is
installed and through a ``keras.utils.PyDataset`` where it is not
(`keras_coordatt.data.core.batches`). Names are imported when first used, so
``import keras_coordatt.data`` works without TensorFlow. The ``elpv`` source
needs the ``[demo]`` extra (``elpv-dataset``), ``tfds:`` the ``[train]`` extra
(``tensorflow-datasets``), mask PNGs Pillow.
"""

import importlib

_NAMES = {
    "keras_coordatt.data.classification.pipeline": (
        "SOURCE_FORMS", "Datasets", "PipelineOptions", "load_datasets", "load_images",
        "open_source"),
    "keras_coordatt.data.core.images": ("load_image",),
    "keras_coordatt.data.detection.factory": ("open_detection_source",),
    "keras_coordatt.data.detection.source": ("DetectionSource", "DetectionSplit",
                                             "detection_split"),
    "keras_coordatt.data.segmentation.factory": ("open_segmentation_source",),
    "keras_coordatt.data.segmentation.source": (
        "IGNORE_LABEL", "SegmentationSource", "SegmentationSplit", "load_mask",
        "load_segmentation_example", "segmentation_split"),
    "keras_coordatt.data.task_data": ("TaskDatasets", "load_task_datasets"),
}
_MODULE_OF = {name: module for module, names in _NAMES.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as error:
        if error.name != "tensorflow":
            raise
        raise ImportError(
            f"keras_coordatt.data.{name} (the classifier's input pipeline) is built on tf.data "
            "and TensorFlow is not installed here: pip install tensorflow-cpu==2.21.0 beside "
            "your backend (the network still trains on it); the detection and segmentation "
            "pipelines, the layers, models and tasks need no TensorFlow") from error
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))

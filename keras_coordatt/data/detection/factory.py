"""Opens a detection source by its name: ``voc:PATH``, ``coco:PATH``, ``tfds:NAME``.

``open_detection_source(spec)`` reads the forms `keras_coordatt.data.detection.voc`,
`keras_coordatt.data.detection.coco` and `keras_coordatt.data.detection.tfds`
describe, and gives a `DetectionSource` (see
`keras_coordatt.data.detection.source` for its examples). Annotations are
read and checked when the source is opened (a COCO split when first read),
images only when decoded; bad data is a ValueError naming the file and what
is wrong, an unknown split one listing the splits.
"""

import os

from keras_coordatt.data.detection.coco import open_coco
from keras_coordatt.data.detection.voc import open_voc

SPEC_FORMS = '"voc:PATH", "coco:PATH", "coco:FILE.json" or "tfds:NAME" (e.g. "tfds:voc/2007")'


def open_detection_source(spec, data_dir=None, class_names=None):
    """The detection source ``spec`` names.

    Args:
        spec: ``"voc:PATH"``, ``"coco:PATH"``, ``"coco:FILE.json"`` or ``"tfds:NAME"``.
        data_dir: tensorflow-datasets' data directory (``tfds:`` only).
        class_names: the classes, label ``i`` being ``class_names[i]``; every
            annotated name must be one of them. None: ``voc:`` reads them from
            the files (sorted), ``coco:`` from the categories (in id order),
            ``tfds:`` from the dataset; given to ``tfds:``, they must be the
            dataset's.
    """
    kind, separator, rest = str(spec).partition(":")
    if not separator or not rest or kind not in ("voc", "coco", "tfds"):
        raise ValueError(f"unknown detection dataset {spec!r}; give {SPEC_FORMS}")
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if not class_names or len(set(class_names)) != len(class_names):
            raise ValueError(f"class_names must be distinct names, at least one: {class_names}")
    if kind == "tfds":
        # tensorflow-datasets (and TensorFlow) only for tfds: sources.
        from keras_coordatt.data.detection.tfds import open_tfds

        return open_tfds(rest, data_dir, class_names)
    path = os.path.expanduser(rest)
    if kind == "voc":
        return open_voc(path, class_names)
    return open_coco(path, class_names)

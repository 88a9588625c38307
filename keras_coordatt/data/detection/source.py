"""What every detection source gives: named splits of images with pixel boxes and labels.

Every example is a dict ``{"image": path (or uint8 (H, W, 3) array),
"width", "height", "boxes": float32 (N, 4) pixel xyxy edges, "labels": int32
(N,) indices into ``class_names``, "difficult": bool (N,), "crowd_boxes":
float32 (M, 4), "crowd_labels": int32 (M,), "id": str}``.
`keras_coordatt.data.core.images.load_image` decodes its image. COCO's crowd
regions (``iscrowd``) are not training boxes: they are kept apart in
``crowd_boxes`` for evaluation, which ignores detections there; examples of
COCO sources also carry ``image_id``.
"""


import numpy as np

from keras_coordatt.data.core.examples import ExampleSource
from keras_coordatt.data.core.examples import ExampleSplit
from keras_coordatt.data.core.images import load_image
from keras_coordatt.data.core.splits import limited
from keras_coordatt.data.core.splits import unknown_split_error


class DetectionSplit(ExampleSplit):
    """A split of a detection source: ``as_tf_dataset`` gives ``{"image": uint8 (H, W, 3),
    "boxes": float32 (N, 4) pixel xyxy, "labels": int32 (N,)}`` per example."""


class DetectionSource(ExampleSource):
    """A detection source; ``category_ids`` are set for COCO sources."""


def detection_split(name, examples, notes=""):
    """A `DetectionSplit` of example dicts (images as paths or arrays).

    Its ``tf.data`` decodes each image with `load_image` (in parallel, in
    order), so a bad image fails naming its file.
    """
    examples = list(examples)

    def load(index):
        example = examples[int(index)]
        return (load_image(example), np.asarray(example["boxes"], np.float32).reshape(-1, 4),
                np.asarray(example["labels"], np.int32).reshape(-1))

    def read(index):
        import tensorflow as tf

        image, boxes, labels = tf.py_function(load, [index], [tf.uint8, tf.float32, tf.int32])
        image.set_shape([None, None, 3])
        boxes.set_shape([None, 4])
        labels.set_shape([None])
        return {"image": image, "boxes": boxes, "labels": labels}

    def dataset_fn():
        import tensorflow as tf

        return tf.data.Dataset.range(len(examples)).map(
            read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    return DetectionSplit(name, examples, dataset_fn, notes)


def list_reader(name, examples, notes=lambda split: ""):
    """``read_split`` over ``{split: [example] or a function giving them}``."""

    def read_split(split, limit=None):
        if split not in examples:
            raise unknown_split_error(name, split, list(examples))
        found = examples[split]
        found = found() if callable(found) else found
        if not found:
            raise ValueError(f"{name}: split {split!r} has no examples")
        count = limited(len(found), limit)
        return detection_split(split, found[:count], notes(split))

    return read_split

"""A tensorflow-datasets detection dataset as a source: ``"tfds:NAME"`` (voc/2007, coco/2017, ...).

Any dataset with an ``image`` and ``objects`` holding ``bbox`` (relative
yxyx) and ``label`` works; boxes become pixel xyxy, ``is_crowd`` objects
crowd regions, ``is_difficult`` the difficult flag. Its examples stream
(`keras_coordatt.data.core.tfds.StreamedExamples`); a dataset not prepared
yet is prepared first where that can work.
"""

import tensorflow as tf

from keras_coordatt.data.core.splits import default_eval_split
from keras_coordatt.data.core.tfds import StreamedExamples
from keras_coordatt.data.core.tfds import tfds_builder
from keras_coordatt.data.core.tfds import tfds_split_reader
from keras_coordatt.data.detection.source import DetectionSource
from keras_coordatt.data.detection.source import DetectionSplit

# The 80 COCO category ids in order: what tensorflow-datasets' coco labels 0..79 stand for.
COCO_CATEGORY_IDS = tuple(i for i in range(1, 91)
                          if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))


def open_tfds(name, data_dir=None, class_names=None):
    """The `DetectionSource` of the tensorflow-datasets detection dataset ``name``."""
    source_name = f"tfds:{name}"
    builder = tfds_builder(name, data_dir)
    features = builder.info.features
    objects = features["objects"] if "objects" in features else {}
    if "image" not in features or "bbox" not in objects or "label" not in objects:
        raise ValueError(f"{source_name} is not a detection dataset: it needs an 'image' and "
                         f"'objects' with 'bbox' and 'label'; its features are {list(features)}")
    names = list(objects["label"].names)
    if class_names is not None and class_names != names:
        raise ValueError(f"{source_name}'s classes are {names}, not the class_names given "
                         f"{class_names}")
    has_crowd = "is_crowd" in objects
    has_difficult = "is_difficult" in objects
    id_key = next((k for k in ("image/filename", "file_name", "image/id") if k in features), None)

    def convert(example):
        image = example["image"]
        shape = tf.shape(image)
        height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
        bbox = tf.reshape(tf.cast(example["objects"]["bbox"], tf.float32), [-1, 4])
        boxes = tf.stack([bbox[:, 1] * width, bbox[:, 0] * height,
                          bbox[:, 3] * width, bbox[:, 2] * height], axis=-1)
        labels = tf.cast(example["objects"]["label"], tf.int32)
        crowd = (tf.cast(example["objects"]["is_crowd"], tf.bool) if has_crowd
                 else tf.zeros_like(labels, tf.bool))
        difficult = (tf.cast(example["objects"]["is_difficult"], tf.bool) if has_difficult
                     else tf.zeros_like(labels, tf.bool))
        keep = tf.logical_not(crowd)
        return {
            "image": image, "width": shape[1], "height": shape[0],
            "boxes": tf.boolean_mask(boxes, keep), "labels": tf.boolean_mask(labels, keep),
            "difficult": tf.boolean_mask(difficult, keep),
            "crowd_boxes": tf.boolean_mask(boxes, crowd),
            "crowd_labels": tf.boolean_mask(labels, crowd),
            "id": tf.strings.as_string(example[id_key]) if id_key == "image/id"
            else (example[id_key] if id_key else tf.constant("")),
            **({"image_id": example["image/id"]} if "image/id" in features else {}),
        }

    reader = tfds_split_reader(builder, source_name, convert)

    def read_split(split, limit=None):
        split, full, count = reader(split, limit)

        def dataset_fn():
            return full().map(lambda e: {k: e[k] for k in ("image", "boxes", "labels")})

        return DetectionSplit(split, StreamedExamples(full, count), dataset_fn)

    splits = tuple(builder.info.splits)
    is_coco = builder.name == "coco" and len(names) == len(COCO_CATEGORY_IDS)
    return DetectionSource(
        name=source_name, class_names=names, splits=splits, read_split=read_split,
        default_eval_split=default_eval_split(splits),
        notes=(f"tensorflow-datasets {builder.info.full_name} in {builder.data_dir}; "
               f"licence and citation: {builder.info.homepage}"),
        category_ids=list(COCO_CATEGORY_IDS) if is_coco else None,
    )

"""A tensorflow-datasets segmentation dataset as a source: ``"tfds:oxford_iiit_pet"``.

Each dataset this reader knows (`TFDS_DATASETS`) names its mask feature and
maps its stored values to classes: the Oxford-IIIT Pet trimaps (1 pet, 2
background, 3 border) become background 0 and pet 1, the border 255
(ignored). Its examples stream (`keras_coordatt.data.core.tfds.StreamedExamples`).
"""

import tensorflow as tf

from keras_coordatt.data.core.splits import default_eval_split
from keras_coordatt.data.core.tfds import StreamedExamples
from keras_coordatt.data.core.tfds import tfds_builder
from keras_coordatt.data.core.tfds import tfds_split_reader
from keras_coordatt.data.segmentation.source import IGNORE_LABEL
from keras_coordatt.data.segmentation.source import SegmentationSource
from keras_coordatt.data.segmentation.source import SegmentationSplit

# tensorflow-datasets segmentation datasets: (mask feature, stored value -> class, class names).
TFDS_DATASETS = {
    # Oxford-IIIT Pet trimaps: 1 pet, 2 background, 3 border (ignored).
    "oxford_iiit_pet": ("segmentation_mask", (IGNORE_LABEL, 1, 0, IGNORE_LABEL),
                        ("background", "pet")),
}


def open_tfds(name, data_dir=None, class_names=None):
    """The `SegmentationSource` of a tensorflow-datasets dataset of `TFDS_DATASETS`."""
    source_name = f"tfds:{name}"
    base = name.split("/")[0].split(":")[0]
    if base not in TFDS_DATASETS:
        raise ValueError(f"{source_name}: not a segmentation dataset this reader knows; it "
                         f"reads {', '.join('tfds:' + n for n in TFDS_DATASETS)}")
    mask_key, table, names = TFDS_DATASETS[base]
    if class_names is not None and class_names != list(names):
        raise ValueError(f"{source_name}'s classes are {list(names)}, not the class_names "
                         f"given {class_names}")
    builder = tfds_builder(name, data_dir)
    features = builder.info.features
    id_key = next((k for k in ("file_name", "image/filename") if k in features), None)
    lookup = tf.constant(table, tf.uint8)

    def convert(example):
        stored = tf.cast(example[mask_key][..., 0], tf.int32)
        check = tf.debugging.assert_less(stored, len(table), message=(
            f"{source_name}: a stored mask value outside [0, {len(table)})"))
        with tf.control_dependencies([check]):
            mask = tf.gather(lookup, stored)
        return {"image": example["image"], "mask": mask,
                "id": example[id_key] if id_key else tf.constant("")}

    reader = tfds_split_reader(builder, source_name, convert)

    def read_split(split, limit=None):
        split, full, count = reader(split, limit)

        def dataset_fn():
            return full().map(lambda e: {"image": e["image"], "mask": e["mask"]})

        return SegmentationSplit(split, StreamedExamples(full, count), dataset_fn)

    splits = tuple(builder.info.splits)
    return SegmentationSource(
        name=source_name, class_names=list(names), splits=splits, read_split=read_split,
        default_eval_split=default_eval_split(splits),
        notes=(f"tensorflow-datasets {builder.info.full_name} in {builder.data_dir}, masks "
               f"{mask_key} mapped {dict(enumerate(table))}; licence and citation: "
               f"{builder.info.homepage}"),
    )

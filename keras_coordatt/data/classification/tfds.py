"""A tensorflow-datasets dataset as a classification source: ``"tfds:NAME"``.

Any dataset with an ``image`` and a ``label`` feature works
("tfds:imagenette/160px", "tfds:cifar10", "tfds:imagenet2012"); split names
take the tensorflow-datasets slicing syntax ("train[:90%]", "train+validation").
A dataset not prepared yet is prepared first where that can work
(`keras_coordatt.data.core.tfds`).
"""

import tensorflow as tf

from keras_coordatt.data.classification.source import Source
from keras_coordatt.data.classification.source import Split
from keras_coordatt.data.core.splits import limited
from keras_coordatt.data.core.tfds import check_split
from keras_coordatt.data.core.tfds import tfds_builder


def load_tfds(name, data_dir=None):
    """The source for the tensorflow-datasets dataset ``name``, prepared if it can be.

    Args:
        name: a registered name, optionally with a config (``"imagenette/160px"``).
        data_dir: where prepared datasets live (tensorflow-datasets' default when
            None); for a manual download (imagenet2012) also where its files are.
    """
    source_name = f"tfds:{name}"
    builder = tfds_builder(name, data_dir)
    features = builder.info.features
    missing = [key for key in ("image", "label") if key not in features]
    if missing:
        raise ValueError(
            f"{source_name} has no {' or '.join(repr(key) for key in missing)} feature; "
            f"its features are {list(features)}"
        )
    class_names = list(features["label"].names)
    split_names = list(builder.info.splits)
    image_shape = features["image"].shape
    shorter_side = min(image_shape[:2]) if None not in image_shape[:2] else None

    def read_split(split, limit, shuffle_files=False):
        check_split(source_name, split, split_names)
        count = limited(builder.info.splits[split].num_examples, limit)
        examples = builder.as_dataset(split=split, shuffle_files=shuffle_files and limit is None)

        def image_and_label(example):
            label = tf.cast(example["label"], tf.int32)
            # ImageNet's test split, for one, has no labels and stores -1.
            check = tf.debugging.Assert(
                tf.logical_and(label >= 0, label < len(class_names)),
                [f"{source_name} split {split} has a label outside [0, {len(class_names)}):",
                 label],
            )
            with tf.control_dependencies([check]):
                return example["image"], tf.identity(label)

        dataset = examples.take(count).map(image_and_label, num_parallel_calls=tf.data.AUTOTUNE)
        return Split(split, dataset, count, shorter_side=shorter_side)

    return Source(
        name=source_name,
        class_names=class_names,
        # tensorflow-datasets' own split names; a dataset without either fails naming its splits.
        default_eval_split="validation" if "validation" in split_names else "test",
        read_split=read_split,
        notes=(
            f"tensorflow-datasets {builder.info.full_name} in {builder.data_dir}; "
            f"licence and citation: {builder.info.homepage}"
        ),
    )

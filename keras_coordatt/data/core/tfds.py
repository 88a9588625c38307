"""A tensorflow-datasets dataset as a source: ``"tfds:NAME"``.

Any dataset with an ``image`` and a ``label`` feature works
("tfds:imagenette/160px", "tfds:cifar10", "tfds:imagenet2012"); split names
take the tensorflow-datasets slicing syntax ("train[:90%]", "train+validation").

Where the data is not prepared in ``data_dir`` yet, it is prepared first, but
only when that can work: a download needs the download hosts to answer (a
3 s connection test, instead of tensorflow-datasets' minutes of retries when
offline), and a manual download (ImageNet) needs its files in the manual
folder. Otherwise the error says what to do.
"""

import os
import re
import socket
import urllib.parse

import tensorflow as tf

from keras_coordatt.data.source import Source
from keras_coordatt.data.source import Split
from keras_coordatt.data.source import limited
from keras_coordatt.data.source import unknown_split_error

# Where tensorflow-datasets looks for prepared copies before downloading; the
# host checked when a dataset lists no download URLs.
FALLBACK_DOWNLOAD_HOST = ("storage.googleapis.com", 443)


def network_reachable(host, port, timeout=3.0):
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def load_tfds(name, data_dir=None):
    """The source for the tensorflow-datasets dataset ``name``, prepared if it can be.

    Args:
        name: a registered name, optionally with a config (``"imagenette/160px"``).
        data_dir: where prepared datasets live (tensorflow-datasets' default when
            None); for a manual download (imagenet2012) also where its files are.
    """
    tfds = _import_tfds()
    source_name = f"tfds:{name}"
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        suggestion = re.search(r"Did you mean: .*", str(error))
        raise ValueError(
            f"tensorflow-datasets has no dataset {name!r}"
            + (f" ({suggestion.group(0)})" if suggestion else "")
            + "; the catalog: https://www.tensorflow.org/datasets/catalog/overview"
        ) from None
    except ValueError as error:
        if "BuilderConfig" not in str(error):
            raise
        dataset, _, config = name.partition("/")
        known = [repr(option.name) for option in tfds.builder_cls(dataset).BUILDER_CONFIGS]
        raise ValueError(
            f"tensorflow-datasets {dataset!r} has no config {config!r}; "
            f"its configs are {', '.join(known)}"
        ) from None
    _prepare(builder, name, data_dir)
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
        for part in split.split("+"):
            if part.split("[")[0].strip() not in split_names:
                raise unknown_split_error(source_name, split, split_names)
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
        default_eval_split="validation" if "validation" in split_names else "test",
        read_split=read_split,
        notes=(
            f"tensorflow-datasets {builder.info.full_name} in {builder.data_dir}; "
            f"licence and citation: {builder.info.homepage}"
        ),
    )


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "'tfds:' sources need tensorflow-datasets (and importlib_resources, which it "
            f"imports): pip install tensorflow-datasets importlib_resources ({error})"
        ) from None
    return tfds


def _prepare(builder, name, data_dir):
    """Prepares the dataset if it is not, failing fast where that cannot work."""
    if builder.is_prepared():
        return
    tfds = _import_tfds()
    source_name = f"tfds:{name}"
    # builder.data_dir is <root>/<name>[/<config>]/<version>, full_name the part after root.
    root = os.fspath(builder.data_dir)[: -len(builder.info.full_name)].rstrip("/")
    manual_dir = None
    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        manual_dir = data_dir or os.path.join(root, "downloads", "manual")
        if not (os.path.isdir(manual_dir) and os.listdir(manual_dir)):
            raise FileNotFoundError(
                f"{source_name} is not prepared in {root} and needs a manual download. "
                f"Put its files in {manual_dir}"
                + (" (data_dir is also the manual folder)" if data_dir else "")
                + ", then run again to prepare it there:\n"
                + builder.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()
            )
    else:
        unreachable = [
            f"{host}:{port}"
            for host, port in _download_hosts(builder)
            if not network_reachable(host, port)
        ]
        if unreachable:
            raise ConnectionError(
                f"{source_name} is not prepared in {root}, and downloading it needs "
                f"{', '.join(unreachable)}, which does not answer (offline?). Prepare it on a "
                f"machine with internet access (`tfds build {name} --data_dir DIR`), copy DIR "
                f"here and pass it as data_dir, or pass the data_dir where it is prepared."
            )
    print(f"Preparing {source_name} in {root} (once; this can take long)")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )


def _download_hosts(builder):
    """The ``(host, port)`` pairs the dataset's download URLs point to."""
    hosts = set()
    for url in builder.url_infos or ():
        parsed = urllib.parse.urlsplit(url)
        hosts.add((parsed.hostname, parsed.port or (80 if parsed.scheme == "http" else 443)))
    return sorted(hosts) or [FALLBACK_DOWNLOAD_HOST]

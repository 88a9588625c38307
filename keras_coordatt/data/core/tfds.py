"""tensorflow-datasets for every task: a prepared builder, its splits, streamed examples.

Where a dataset is not prepared in ``data_dir`` yet, it is prepared first, but
only when that can work: a download needs the download hosts to answer (a
3 s connection test, instead of tensorflow-datasets' minutes of retries when
offline), and a manual download (ImageNet) needs its files in the manual
folder. Otherwise the error says what to do. Split names take the
tensorflow-datasets slicing syntax (``"train[:90%]"``, ``"train+validation"``).
"""

import collections.abc
import os
import re
import socket
import urllib.parse

import tensorflow as tf

from keras_coordatt.data.core.splits import limited
from keras_coordatt.data.core.splits import unknown_split_error

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


def import_tfds():
    """The ``tensorflow_datasets`` module; an ImportError saying how to install it."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "'tfds:' sources need tensorflow-datasets (and importlib_resources, which it "
            f"imports): pip install tensorflow-datasets importlib_resources ({error})"
        ) from None
    return tfds


def tfds_builder(name, data_dir=None):
    """The prepared tensorflow-datasets builder of ``name`` (``"imagenette/160px"``).

    An unknown name is a ValueError with tensorflow-datasets' suggestion, an
    unknown config one listing the configs. Where the dataset is not prepared
    in ``data_dir`` (tensorflow-datasets' default when None; for a manual
    download, imagenet2012, also where its files are) it is prepared, or
    fails at once saying how (see the module docstring).
    """
    tfds = import_tfds()
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
    return builder


def check_split(source_name, split, split_names):
    """Raises the unknown-split error unless every part of ``split`` ("a+b[:10%]") is a split."""
    for part in split.split("+"):
        if part.split("[")[0].strip() not in split_names:
            raise unknown_split_error(source_name, split, split_names)


def tfds_split_reader(builder, source_name, convert):
    """A function ``(split, limit=None) -> (split, dataset_fn, count)`` over a prepared builder.

    ``dataset_fn()`` gives the first ``count`` examples of the split mapped
    by ``convert`` (a tfds example to the source's full example dict), in
    the stored order. An unknown split is a ValueError listing the splits,
    an empty one too.
    """
    split_names = list(builder.info.splits)

    def read_split(split, limit=None):
        check_split(source_name, split, split_names)
        count = limited(builder.info.splits[split].num_examples, limit)
        if count == 0:
            raise ValueError(f"{source_name}: split {split!r} has no examples")

        def full():
            return builder.as_dataset(split=split, shuffle_files=False).take(count).map(
                convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

        return split, full, count

    return read_split


class StreamedExamples(collections.abc.Sequence):
    """The examples of a tensorflow-datasets split, decoded while iterating.

    ``len()`` is known without reading; iterating streams every example once;
    ``examples[i]`` reads through the first ``i`` (fine now and then, slow in a loop).
    """

    def __init__(self, dataset_fn, count):
        """``dataset_fn()`` gives the split's full example dicts as a ``tf.data.Dataset``."""
        self._dataset_fn = dataset_fn
        self._count = count

    def __len__(self):
        return self._count

    def __iter__(self):
        for item in self._dataset_fn().take(self._count).as_numpy_iterator():
            yield _python_example(item)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(f"example {index} of {self._count}")
        (item,) = self._dataset_fn().skip(index).take(1).as_numpy_iterator()
        return _python_example(item)


def _python_example(item):
    """A streamed example with its strings as ``str``."""
    return {key: value.decode() if isinstance(value, bytes) else value
            for key, value in item.items()}


def _prepare(builder, name, data_dir):
    """Prepares the dataset if it is not, failing fast where that cannot work."""
    if builder.is_prepared():
        return
    tfds = import_tfds()
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

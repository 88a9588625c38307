"""From a classification source's name to batched train and eval ``tf.data`` pipelines."""

import dataclasses
import os
from typing import Iterator

import numpy as np
import tensorflow as tf

from keras_coordatt.data.classification.elpv import load_elpv
from keras_coordatt.data.classification.image_folder import load_image_folder
from keras_coordatt.data.classification.source import Source
from keras_coordatt.data.classification.source import Split
from keras_coordatt.data.classification.tfds import load_tfds
from keras_coordatt.preprocessing import CROP_FRACTION
from keras_coordatt.preprocessing import Preprocessing
from keras_coordatt.preprocessing import as_rgb
from keras_coordatt.preprocessing import center_crop
from keras_coordatt.preprocessing import resize_shorter
from keras_coordatt.preprocessing import resize_size
from keras_coordatt.preprocessing import shrink_to

# Decoded images are cached in memory up to this many bytes per split.
CACHE_LIMIT_BYTES = 4 * 1024**3
# Machines with at most this many cores train without tf.data's autotuner (see PipelineOptions).
SMALL_MACHINE_CORES = 4
SOURCE_FORMS = '"elpv", "tfds:NAME" (e.g. "tfds:cifar10") or "folder:/path/to/root"'


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """How the images of a split become batches.

    Attributes:
        image_size: the side of the square images the model sees.
        batch_size: the global batch size.
        preprocessing: the model's `Preprocessing` (its pixel range).
        augment: train with a random-resized crop and a horizontal flip;
            False uses the eval preprocessing for training too.
        crop_scale: the range of the random crop's share of the image area.
        cache: keep decoded images (shrunk to the eval resize size) in memory
            where a split fits in ``CACHE_LIMIT_BYTES``; ELPV is always in memory.
        deterministic: the same batches in the same order on every run with
            the same ``seed`` (and the same global TensorFlow seed, which
            ``keras.utils.set_random_seed`` sets): a fixed file order, seeded
            shuffle and augmentation, deterministic ``tf.data``.
        seed: the seed of the shuffle and the augmentation; None for fresh
            ones each run. (The ELPV and folder splits have their own fixed
            seeds.)
        shuffle_buffer: the shuffle buffer, in examples.
        autotune: let tf.data's autotuner tune parallelism and buffers as it
            runs. None (the default) turns it on where the machine has more
            than ``SMALL_MACHINE_CORES`` cores: on 2 cores its optimizer
            thread took CPU from training (ELPV demo epochs 13.4 s without it
            against 14.4-14.6 s with it) and closing an epoch's iterator
            waited 6-10 s for that thread at some epoch ends. Off, parallel
            maps run one call per core and prefetch buffers grow on their own.
    """

    image_size: int = 224
    batch_size: int = 256
    preprocessing: Preprocessing = Preprocessing()
    augment: bool = True
    crop_scale: tuple = (0.08, 1.0)
    cache: bool = True
    deterministic: bool = False
    seed: int | None = 0
    shuffle_buffer: int = 10_000
    autotune: bool | None = None

    def for_eval(self, image, label):
        return self.preprocessing.for_eval(image, self.image_size), label

    def for_train(self, image, label, example_seed):
        image = self.preprocessing.for_train(image, example_seed, self.image_size, self.crop_scale)
        return image, label

    def epoch_seed(self, epoch):
        """The shuffle and augmentation seed of one epoch: a function of (seed, epoch)."""
        if self.seed is None:
            return None
        return int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])

    def tf_options(self, deterministic=None):
        options = tf.data.Options()
        options.deterministic = self.deterministic if deterministic is None else deterministic
        options.autotune.enabled = self.autotuned
        return options

    @property
    def autotuned(self):
        """Whether tf.data's autotuner runs (``autotune``, or the machine's size when None)."""
        if self.autotune is None:
            return (os.cpu_count() or 1) > SMALL_MACHINE_CORES
        return self.autotune


class Datasets:
    """The train and eval pipelines of one source, and what they hold.

    Attributes:
        train: ``(images float32 (B, S, S, 3), labels int32 (B,))`` batches,
            shuffled and augmented, the last partial batch dropped; one pass
            is one epoch (not repeated), and each pass shuffles and augments
            anew. `train_for_epoch` is the same with the epoch in the seeds,
            for runs that resume mid-way.
        eval: the same for evaluation: eval preprocessing, fixed order, the
            last batch may be partial.
        num_classes: the number of classes in the source.
        class_names: label ``i`` is ``class_names[i]``.
        train_examples, eval_examples: the examples in each split (after any limit).
    """

    def __init__(self, source, train_part, eval_part, options, limit_train=None):
        self.source = source
        self._limit_train = limit_train
        self.options = options
        self.num_classes = len(source.class_names)
        self.class_names = list(source.class_names)
        self.train_examples = train_part.num_examples
        self.eval_examples = eval_part.num_examples
        self._train_part, self._eval_part = train_part, eval_part
        stored_size = options.preprocessing.resize_size(options.image_size)
        self._train_images, self._train_memory = _decoded(train_part, stored_size, options.cache)
        eval_images, self._eval_memory = _decoded(eval_part, stored_size, options.cache)
        self.eval = (
            eval_images.map(options.for_eval, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(options.batch_size)
            .prefetch(tf.data.AUTOTUNE)
            .with_options(options.tf_options(deterministic=True))
        )
        self.train = self._train_batches(0, reshuffle=True)

    def train_for_epoch(self, epoch):
        """The train batches of one epoch, shuffled and augmented with seeds from (seed, epoch).

        With a fixed ``seed`` and ``deterministic=True``, epoch ``k`` gives the
        same batches however many epochs ran before it, so a resumed run sees
        what an unbroken one saw (without ``deterministic``, the same shuffle
        and augmentations, but parallel maps may reorder examples). All epochs
        share the cached images. Every pass over the returned dataset gives
        the same batches: Keras may open more than one iterator on a dataset
        (it does under MirroredStrategy), and a reshuffle per pass would then
        feed other batches than a single-device run.
        """
        return self._train_batches(epoch, reshuffle=False)

    def representative(self, n=100) -> Iterator[np.ndarray]:
        """``n`` eval-preprocessed float32 ``(1, S, S, 3)`` images for int8 calibration.

        They come from the training split, in a fixed order: calibrating on the
        evaluation split would let it tune the quantized model.
        """
        split = self.source.read_split(self._train_part.name, self._limit_train, False)
        images = split.dataset.map(lambda image, label: self.options.for_eval(image, label)[0])
        images = images.with_options(self.options.tf_options(deterministic=True))
        for image in images.take(n).batch(1):
            yield image.numpy()

    def describe(self):
        """A few lines saying what the data is and how it is prepared."""
        options, source = self.options, self.source
        size, batch = options.image_size, options.batch_size
        if options.augment:
            low, high = options.crop_scale
            train = (f"random-resized crop to {size}x{size} (area {low:g}-{high:g}, aspect "
                     f"3/4-4/3) + horizontal flip")
        else:
            train = "as eval"
        order = ("deterministic tf.data" if options.deterministic
                 else "parallel maps may reorder examples")
        return "\n".join([
            f"data: {source.name} ({source.notes})",
            f"classes ({self.num_classes}): {', '.join(self.class_names)}",
            _split_line("train", self._train_part, self.class_names,
                        f"{self.train_examples // batch:,} batches of {batch} (remainder dropped)",
                        self._train_memory),
            _split_line("eval", self._eval_part, self.class_names,
                        f"{-(-self.eval_examples // batch):,} batches of up to {batch}",
                        self._eval_memory),
            f"preprocessing: train {train}; eval resize shorter side to "
            f"{options.preprocessing.resize_size(size)} + center crop {size}x{size}; "
            f"pixels {options.preprocessing.describe_pixels()}",
            f"order: shuffle buffer {self._shuffle_buffer():,}, seed {options.seed}, {order}; "
            f"tf.data autotuning {'on' if options.autotuned else 'off'}"
            f"{'' if options.autotune is not None else f' ({os.cpu_count()} cores)'}",
        ])

    def _shuffle_buffer(self):
        return min(self.options.shuffle_buffer, self.train_examples)

    def _train_batches(self, epoch, reshuffle):
        options = self.options
        epoch_seed = options.epoch_seed(epoch)
        examples = self._train_images.shuffle(
            self._shuffle_buffer(), seed=epoch_seed, reshuffle_each_iteration=reshuffle)
        if options.augment:
            # One stateless seed per example, attached before the parallel
            # map, so the order the map runs in cannot change an augmentation.
            seeds = tf.data.Dataset.random(seed=epoch_seed, rerandomize_each_iteration=reshuffle)
            examples = tf.data.Dataset.zip((examples, seeds.batch(2))).map(
                lambda example, example_seed: options.for_train(*example, example_seed),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        else:
            examples = examples.map(options.for_eval, num_parallel_calls=tf.data.AUTOTUNE)
        batches = examples.batch(options.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
        return batches.with_options(options.tf_options())


def load_datasets(
    source,
    options=PipelineOptions(),
    train_split="train",
    eval_split=None,
    data_dir=None,
    num_classes=None,
    limit_train=None,
    limit_eval=None,
):
    """Batched train and eval pipelines for a named source.

    Args:
        source: ``"elpv"`` (the embedded default: solar cells, 4 classes),
            ``"tfds:NAME"`` (a tensorflow-datasets name, e.g.
            ``"tfds:imagenette/160px"``) or ``"folder:/path/to/root"`` (a
            folder per class).
        options: `PipelineOptions`: size, batch, preprocessing, augmentation,
            caching, order.
        train_split, eval_split: split names. ELPV has "train" and "test";
            tensorflow-datasets takes its slicing syntax ("train[:90%]"); an
            image folder has "train" and its val/valid/validation/test folder, or
            "train" and "test". ``eval_split=None`` takes the source's
            evaluation split: "test" for ELPV, "validation" (else "test") for
            tensorflow-datasets, the eval folder (else "test") for a folder.
        data_dir: tensorflow-datasets' data folder, and for a manual download
            (imagenet2012) also where its files are.
        num_classes: the classes the model has; a label outside
            ``[0, num_classes)`` is an error naming where it comes from.
        limit_train, limit_eval: keep only the first N examples of a split.

    Returns:
        A `Datasets`.
    """
    loaded = open_source(source, options.image_size, data_dir, options.preprocessing.crop_fraction)
    eval_split = loaded.default_eval_split if eval_split is None else eval_split
    train_part = loaded.read_split(train_split, limit_train, not options.deterministic)
    eval_part = loaded.read_split(eval_split, limit_eval, False)
    for part in (train_part, eval_part):
        _check_labels(loaded, part, num_classes)
    if train_part.num_examples < options.batch_size:
        raise ValueError(
            f"{loaded.name} split {train_split!r} has {train_part.num_examples} examples, "
            f"fewer than one batch of {options.batch_size}"
        )
    return Datasets(loaded, train_part, eval_part, options, limit_train)


def load_images(source, split=None, limit=None, image_size=224, data_dir=None,
                crop_fraction=CROP_FRACTION):
    """Raw images of one split as uint8 squares, for export checks and calibration.

    Each image becomes RGB, its shorter side ``round(image_size / 0.875)``
    and is center-cropped to that square: the evaluation preprocessing
    gives the same model input from it as from the original, and the images
    stack into one array.

    Args:
        source: ``"elpv"``, ``"tfds:NAME"`` or ``"folder:/path"``.
        split: the split to read; the source's evaluation split by default.
        limit: read only the first ``limit`` examples.
        image_size: the model's input side.
        data_dir: tensorflow-datasets' data directory.
        crop_fraction: the model's eval crop (``model.preprocessing``); the
            squares' side is ``round(image_size / crop_fraction)``.

    Returns:
        ``(images uint8 (N, S, S, 3), labels int (N,), class_names)``.
    """
    loaded = open_source(source, image_size, data_dir, crop_fraction)
    part = loaded.read_split(split or loaded.default_eval_split, limit, False)
    side = resize_size(image_size, crop_fraction)

    def square(image, label):
        return center_crop(as_rgb(resize_shorter(image, side)), side), label

    images, labels = [], []
    for image, label in part.dataset.map(square, num_parallel_calls=tf.data.AUTOTUNE):
        images.append(image.numpy())
        labels.append(int(label))
    if not images:
        raise ValueError(f"{source}: split {part.name!r} has no examples")
    return np.stack(images), np.asarray(labels), list(loaded.class_names)


def open_source(source, image_size, data_dir=None, crop_fraction=CROP_FRACTION) -> Source:
    """The `Source` a name stands for: ``"elpv"``, ``"tfds:NAME"`` or ``"folder:PATH"``."""
    kind, _, argument = source.partition(":")
    if source == "elpv":
        return load_elpv(image_size, crop_fraction)
    if kind == "tfds" and argument:
        return load_tfds(argument, data_dir=data_dir)
    if kind == "folder" and argument:
        return load_image_folder(argument)
    raise ValueError(f"unknown data source {source!r}: use {SOURCE_FORMS}")


def _decoded(part: Split, stored_size, cache):
    """A split's images, cached in memory if asked and they fit; and where they live.

    Cached images are shrunk to the eval resize size first, which bounds the
    memory; the eval crop needs no more, while small random crops then
    upsample from fewer pixels than the original has.
    """
    if part.in_memory:
        return part.dataset, "in memory"
    side = min(stored_size, part.shorter_side or stored_size)
    if not cache or part.num_examples * side * side * 3 > CACHE_LIMIT_BYTES:
        return part.dataset, "decoded each epoch"
    shrunk = part.dataset.map(
        lambda image, label: (shrink_to(image, stored_size), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return shrunk.cache(), (
        f"cached in memory from the first epoch on, shorter side <= {stored_size}"
    )


def _check_labels(loaded, part, num_classes):
    """Fails on labels outside [0, num_classes), naming the file where known."""
    if num_classes is None:
        return
    if part.labels is not None:
        bad = np.flatnonzero((part.labels < 0) | (part.labels >= num_classes))
        if len(bad):
            label = int(part.labels[bad[0]])
            name = f" {loaded.class_names[label]!r}" if 0 <= label < len(loaded.class_names) else ""
            file = f" ({part.files[bad[0]]})" if part.files is not None else ""
            raise ValueError(
                f"{loaded.name} split {part.name!r} has label {label}{name}{file}, outside "
                f"[0, num_classes={num_classes}); it has {len(loaded.class_names)} classes"
            )
    elif len(loaded.class_names) > num_classes:
        raise ValueError(
            f"{loaded.name} split {part.name!r} has labels up to {len(loaded.class_names) - 1} "
            f"({loaded.class_names[-1]!r}), outside [0, num_classes={num_classes})"
        )


def _split_line(role, part, class_names, batches, memory):
    counts = ""
    if part.labels is not None:
        per_class = np.bincount(part.labels, minlength=len(class_names))
        counts = " (per class " + ", ".join(f"{count:,}" for count in per_class) + ")"
    return (
        f"{role}: split {part.name!r}, {part.num_examples:,} examples{counts}, {batches}; "
        f"{memory}"
    )

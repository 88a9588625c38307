"""From a source name to batched train and eval ``tf.data`` pipelines."""

import dataclasses
from typing import Callable
from typing import Iterator

import numpy as np
import tensorflow as tf

from keras_coordatt.export.preprocessing import as_rgb
from keras_coordatt.export.preprocessing import center_crop
from keras_coordatt.export.preprocessing import resize_shorter
from training.data.elpv import load_elpv
from training.data.image_folder import load_image_folder
from training.data.preprocessing import augment_for_train
from training.data.preprocessing import preprocess_for_eval
from training.data.preprocessing import resize_size
from training.data.preprocessing import shrink_to
from training.data.tfds_source import load_tfds

# Decoded images are cached in memory up to this many bytes per split.
CACHE_LIMIT_BYTES = 4 * 1024**3
SOURCE_FORMS = '"elpv", "tfds:NAME" (e.g. "tfds:cifar10") or "folder:/path/to/root"'


@dataclasses.dataclass(frozen=True)
class Datasets:
    """The train and eval pipelines of one source, and what they hold.

    Attributes:
        train: ``(images float32 (B, S, S, 3), labels int32 (B,))`` batches,
            shuffled and augmented, the last partial batch dropped; one pass
            is one epoch (not repeated), and each pass shuffles and augments
            anew. ``train_for_epoch(epoch)`` is the same with the epoch in
            the seeds, for runs that resume mid-way.
        eval: the same for evaluation: eval preprocessing, fixed order, the
            last batch may be partial.
        num_classes: the number of classes in the source.
        class_names: label ``i`` is ``class_names[i]``.
        train_examples, eval_examples: the examples in each split (after any limit).
    """

    train: tf.data.Dataset
    eval: tf.data.Dataset
    num_classes: int
    class_names: list[str]
    train_examples: int
    eval_examples: int
    summary: str = dataclasses.field(repr=False)
    calibration: Callable[[], tf.data.Dataset] = dataclasses.field(repr=False)
    train_pipeline: Callable[[int, bool], tf.data.Dataset] = dataclasses.field(repr=False)

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
        return self.train_pipeline(epoch, False)

    def representative(self, n=100) -> Iterator[np.ndarray]:
        """``n`` eval-preprocessed float32 ``(1, S, S, 3)`` images for int8 calibration.

        They come from the training split, in a fixed order: calibrating on the
        evaluation split would let it tune the quantized model.
        """
        for image in self.calibration().take(n).batch(1):
            yield image.numpy()

    def describe(self):
        """A few lines saying what the data is and how it is prepared."""
        return self.summary


def load_datasets(
    source,
    image_size=224,
    batch_size=256,
    train_split="train",
    eval_split=None,
    data_dir=None,
    pixel_range=(-1.0, 1.0),
    augment=True,
    crop_scale=(0.08, 1.0),
    cache=True,
    deterministic=False,
    seed=0,
    shuffle_buffer=10_000,
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
        image_size: the side of the square images the model sees.
        batch_size: the global batch size.
        train_split, eval_split: split names. ELPV has "train" and "test";
            tensorflow-datasets takes its slicing syntax ("train[:90%]"); an
            image folder has "train" and its val/validation/test folder, or
            "train" and "test". ``eval_split=None`` takes the source's
            evaluation split: "test" for ELPV, "validation" (else "test") for
            tensorflow-datasets, the eval folder (else "test") for a folder.
        data_dir: tensorflow-datasets' data folder, and for a manual download
            (imagenet2012) also where its files are.
        pixel_range: what uint8 0 and 255 map to: (-1, 1), or (0, 255) for a
            network that rescales inside (Keras' EfficientNet).
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
        num_classes: the classes the model has; a label outside
            ``[0, num_classes)`` is an error naming where it comes from.
        limit_train, limit_eval: keep only the first N examples of a split.

    Returns:
        A ``Datasets``.
    """
    loaded = _load_source(source, image_size, data_dir)
    eval_split = loaded.default_eval_split if eval_split is None else eval_split
    train_part = loaded.read_split(train_split, limit_train, not deterministic)
    eval_part = loaded.read_split(eval_split, limit_eval, False)
    for part in (train_part, eval_part):
        _check_labels(loaded, part, num_classes)
    if train_part.num_examples < batch_size:
        raise ValueError(
            f"{loaded.name} split {train_split!r} has {train_part.num_examples} examples, "
            f"fewer than one batch of {batch_size}"
        )
    stored_size = resize_size(image_size)
    train, train_memory = _decoded(train_part, stored_size, cache)
    evaluation, eval_memory = _decoded(eval_part, stored_size, cache)

    def for_eval(image, label):
        return preprocess_for_eval(image, image_size, pixel_range), label

    def for_train(image, label, example_seed):
        return augment_for_train(image, example_seed, image_size, pixel_range, crop_scale), label

    def train_pipeline(epoch, reshuffle):
        epoch_seed = None
        if seed is not None:
            epoch_seed = int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
        batches = train.shuffle(
            min(shuffle_buffer, train_part.num_examples), seed=epoch_seed,
            reshuffle_each_iteration=reshuffle,
        )
        if augment:
            # One stateless seed per example, attached before the parallel
            # map, so the order the map runs in cannot change an augmentation.
            seeds = tf.data.Dataset.random(seed=epoch_seed, rerandomize_each_iteration=reshuffle)
            batches = tf.data.Dataset.zip((batches, seeds.batch(2))).map(
                lambda example, example_seed: for_train(*example, example_seed),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        else:
            batches = batches.map(for_eval, num_parallel_calls=tf.data.AUTOTUNE)
        batches = batches.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
        return batches.with_options(_options(deterministic))

    evaluation = evaluation.map(for_eval, num_parallel_calls=tf.data.AUTOTUNE)
    evaluation = evaluation.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def calibration():
        images = loaded.read_split(train_split, limit_train, False).dataset
        return images.map(lambda image, label: for_eval(image, label)[0]).with_options(
            _options(True)
        )

    if augment:
        train_preprocessing = (
            f"random-resized crop to {image_size}x{image_size} (area {crop_scale[0]:g}-"
            f"{crop_scale[1]:g}, aspect 3/4-4/3) + horizontal flip"
        )
    else:
        train_preprocessing = "as eval"
    order = "deterministic tf.data" if deterministic else "parallel maps may reorder examples"
    summary = "\n".join([
        f"data: {loaded.name} ({loaded.notes})",
        f"classes ({len(loaded.class_names)}): {', '.join(loaded.class_names)}",
        _split_line(
            "train", train_part, loaded.class_names,
            f"{train_part.num_examples // batch_size:,} batches of {batch_size} "
            f"(remainder dropped)",
            train_memory,
        ),
        _split_line(
            "eval", eval_part, loaded.class_names,
            f"{-(-eval_part.num_examples // batch_size):,} batches of up to {batch_size}",
            eval_memory,
        ),
        f"preprocessing: train {train_preprocessing}; eval resize shorter side to "
        f"{stored_size} + center crop {image_size}x{image_size}; "
        f"pixels [0, 255] -> [{pixel_range[0]:g}, {pixel_range[1]:g}]",
        f"order: shuffle buffer {min(shuffle_buffer, train_part.num_examples):,}, "
        f"seed {seed}, {order}",
    ])
    return Datasets(
        train=train_pipeline(0, True),
        eval=evaluation.with_options(_options(True)),
        num_classes=len(loaded.class_names),
        class_names=list(loaded.class_names),
        train_examples=train_part.num_examples,
        eval_examples=eval_part.num_examples,
        summary=summary,
        calibration=calibration,
        train_pipeline=train_pipeline,
    )


def load_images(source, split=None, limit=None, image_size=224, data_dir=None):
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

    Returns:
        ``(images uint8 (N, S, S, 3), labels int (N,), class_names)``.
    """
    loaded = _load_source(source, image_size, data_dir)
    part = loaded.read_split(split or loaded.default_eval_split, limit, False)
    side = resize_size(image_size)

    def square(image, label):
        return center_crop(as_rgb(resize_shorter(image, side)), side), label

    images, labels = [], []
    for image, label in part.dataset.map(square, num_parallel_calls=tf.data.AUTOTUNE):
        images.append(image.numpy())
        labels.append(int(label))
    if not images:
        raise ValueError(f"{source}: split {part.name!r} has no examples")
    return np.stack(images), np.asarray(labels), list(loaded.class_names)


def _decoded(part, stored_size, cache):
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


def _load_source(source, image_size, data_dir):
    kind, _, argument = source.partition(":")
    if source == "elpv":
        return load_elpv(image_size)
    if kind == "tfds" and argument:
        return load_tfds(argument, data_dir=data_dir)
    if kind == "folder" and argument:
        return load_image_folder(argument)
    raise ValueError(f"unknown data source {source!r}: use {SOURCE_FORMS}")


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


def _options(deterministic):
    options = tf.data.Options()
    options.deterministic = deterministic
    return options


def _split_line(role, part, class_names, batches, memory):
    counts = ""
    if part.labels is not None:
        per_class = np.bincount(part.labels, minlength=len(class_names))
        counts = " (per class " + ", ".join(f"{count:,}" for count in per_class) + ")"
    return (
        f"{role}: split {part.name!r}, {part.num_examples:,} examples{counts}, {batches}; "
        f"{memory}"
    )

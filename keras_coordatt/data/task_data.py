"""Detection and segmentation data for the trainer: one object with the batches and the raw examples.

``load_task_datasets(task, spec, ...)`` opens a source by its ``--dataset``
name and returns a `TaskDatasets`, the counterpart of the classifier's
`keras_coordatt.data.Datasets`: ``train_for_epoch(epoch)`` and ``eval`` are
batched ``tf.data`` pipelines, ``eval_examples`` the untouched eval examples
(whole images, pixel boxes / full-size masks) the task's evaluation scores.

Built-in sources read files that ship in packages: ``deepforest`` (aerial
tree crowns, detection) and ``stardist`` (nuclei, segmentation). Others
(``voc:PATH``, ``coco:PATH``, ``masks:PATH``, ``cityscapes:PATH``, ``tfds:NAME``) go through
`open_detection_source` / `open_segmentation_source`.

Several sources with the same classes join with ``+`` into one
(``tfds:voc/2007+tfds:voc/2012``: a split is the same split of each, in turn),
and the eval examples may come from another source than the training ones
(``eval_spec``): the paper's VOC detector trains on 2007 + 2012 trainval and is
tested on 2007 test.
"""

import collections.abc
import dataclasses
import itertools
import re

from keras_coordatt.data.core.images import image_of
from keras_coordatt.data.detection import deepforest
from keras_coordatt.data.detection.factory import open_detection_source
from keras_coordatt.data.detection.pipeline import DetectionPipelineOptions
from keras_coordatt.data.detection.pipeline import detection_batches
from keras_coordatt.data.detection.pipeline import tile_examples
from keras_coordatt.data.segmentation import stardist
from keras_coordatt.data.segmentation.factory import open_segmentation_source
from keras_coordatt.data.segmentation.pipeline import SegmentationPipelineOptions
from keras_coordatt.data.segmentation.pipeline import segmentation_batches
from keras_coordatt.data.segmentation.source import IGNORE_LABEL
from keras_coordatt.data.segmentation.source import mask_of
from keras_coordatt.tasks.tiling import tile_windows
from keras_coordatt.tasks.tiling import window_of

BUILT_IN = {"detection": {"deepforest": deepforest}, "segmentation": {"stardist": stardist}}
# Where a joined --dataset splits: a "+" followed by a source's kind.
JOIN = re.compile(r"\+(?=(?:voc|coco|tfds|masks|cityscapes):)")
DEFAULT_EVAL = {"deepforest": "val", "stardist": "test"}


@dataclasses.dataclass
class TaskDatasets:
    """Batches and raw examples of one detection or segmentation source.

    Attributes:
        task: ``"detection"`` or ``"segmentation"``.
        name: the source as the user named it.
        class_names: the object classes (detection: background not counted;
            segmentation: every class, index = mask value).
        train: the training examples (tiles where tiling is on).
        eval_examples: the eval examples, whole.
        eval_tiles: the eval examples as the model sees them (tiles or whole).
        options: the pipeline options.
        notes: where the data comes from.
        category_ids: COCO's category ids of the classes (COCO sources).
        eval_split: the split the eval examples come from.
    """

    task: str
    name: str
    class_names: list
    train: list
    eval_examples: list
    eval_tiles: list
    options: object
    notes: str = ""
    category_ids: list | None = None
    eval_split: str = ""

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def train_examples(self):
        repeats = getattr(self.options, "repeats", 1)
        return len(self.train) * repeats

    @property
    def eval_count(self):
        return len(self.eval_examples)

    def _batches(self, examples, train, epoch=0):
        if self.task == "detection":
            return detection_batches(examples, self.options, train, epoch)
        return segmentation_batches(examples, self.options, train, epoch)

    def train_for_epoch(self, epoch):
        """Epoch ``epoch``'s shuffled, augmented training batches."""
        return self._batches(self.train, True, epoch)

    @property
    def eval(self):
        """The eval batches, in order, every example."""
        return self._batches(self.eval_tiles, False)

    def describe(self):
        """A few lines on the data: source, classes, examples, objects."""
        lines = [f"{self.task} data: {self.name} ({self.num_classes} classes: "
                 f"{', '.join(self.class_names[:10])}{' ...' if self.num_classes > 10 else ''})"]
        for role, examples, tiles in (("train", None, self.train),
                                      ("eval", self.eval_examples, self.eval_tiles)):
            line = f"  {role}: {len(tiles):,} examples"
            if examples is not None and len(examples) != len(tiles):
                line = f"  {role}: {len(examples):,} images as {len(tiles):,} tiles"
            if self.task == "detection":
                line += f", {sum(len(e['boxes']) for e in tiles):,} boxes"
            lines.append(line)
        if self.notes:
            lines.append(f"  {self.notes}")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class _OpenedSource:
    class_names: list
    read: object  # read(split, limit) -> examples
    default_eval_split: str
    notes: str = ""
    category_ids: list | None = None


class JoinedExamples(collections.abc.Sequence):
    """The examples of several splits one after the other, streamed ones still streamed."""

    def __init__(self, parts):
        self._parts = list(parts)

    def __len__(self):
        return sum(len(part) for part in self._parts)

    def __iter__(self):
        return itertools.chain.from_iterable(self._parts)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        for part in self._parts:
            if 0 <= index < len(part):
                return part[index]
            index -= len(part)
        raise IndexError("example index out of range")


def _open_source(task, spec, data_dir=None):
    """The source behind ``spec``, opened once: a built-in one, one `open_detection_source` /
    `open_segmentation_source` reads, or several joined with "+"."""
    parts = JOIN.split(spec)
    if len(parts) > 1:
        return _joined_source(spec, [_open_source(task, part, data_dir) for part in parts], parts)
    built_in = BUILT_IN[task].get(spec)
    if built_in is not None:
        notes = (built_in.__doc__ or "").strip().splitlines()[0]
        return _OpenedSource(built_in.CLASS_NAMES, lambda split, limit: built_in.read_split(
            split, limit=limit), DEFAULT_EVAL[spec], notes)
    open_source = open_detection_source if task == "detection" else open_segmentation_source
    source = open_source(spec, data_dir=data_dir)

    def read(split, limit):
        # A tensorflow-datasets split streams its examples (they do not all fit in memory).
        examples = source.read_split(split, limit).examples
        return list(examples) if isinstance(examples, tuple) else examples

    return _OpenedSource(list(source.class_names), read, source.default_eval_split,
                         getattr(source, "notes", ""), getattr(source, "category_ids", None))


def _joined_source(spec, sources, names):
    for source, name in zip(sources[1:], names[1:]):
        if source.class_names != sources[0].class_names:
            raise ValueError(f"{spec}: {names[0]} has the classes {sources[0].class_names}, "
                             f"{name} {source.class_names}; joined sources need the same classes")

    def read(split, limit):
        parts = []
        for source in sources:
            left = None if limit is None else limit - sum(len(part) for part in parts)
            if left is not None and left <= 0:
                break
            parts.append(source.read(split, left))
        if all(isinstance(part, list) for part in parts):
            return [example for part in parts for example in part]
        return JoinedExamples(parts)

    ids = [source.category_ids for source in sources]
    return _OpenedSource(sources[0].class_names, read, sources[0].default_eval_split,
                         "; ".join(source.notes for source in sources if source.notes),
                         ids[0] if all(i == ids[0] for i in ids) else None)


def load_task_datasets(task, spec, options, train_split="train", eval_split=None, data_dir=None,
                       limit_train=None, limit_eval=None, tile_size=None, tile_overlap=0.5,
                       eval_spec=None):
    """A `TaskDatasets` for ``task`` from the source ``spec``.

    Args:
        task: ``"detection"`` or ``"segmentation"``.
        spec: the ``--dataset`` name.
        options: a `DetectionPipelineOptions` or `SegmentationPipelineOptions`.
        train_split, eval_split: split names (eval: the source's default when None;
            train None: no training examples, for evaluation and export checks).
        data_dir: tensorflow-datasets' data directory.
        limit_train, limit_eval: at most this many images of each split.
        tile_size: cut images into tiles of this side (training tiles overlap
            by ``tile_overlap``; eval tiles by the least needed to cover).
        eval_spec: the source to evaluate on, when not ``spec`` (same classes).
    """
    if task not in BUILT_IN:
        raise ValueError(f"task must be 'detection' or 'segmentation', got {task!r}")
    expected = DetectionPipelineOptions if task == "detection" else SegmentationPipelineOptions
    if not isinstance(options, expected):
        raise ValueError(f"{task} data needs {expected.__name__}, got {type(options).__name__}")
    source = _open_source(task, spec, data_dir)
    eval_source = source
    if eval_spec and eval_spec != spec:
        eval_source = _open_source(task, eval_spec, data_dir)
        if eval_source.class_names != source.class_names:
            raise ValueError(f"the eval dataset {eval_spec} has the classes "
                             f"{eval_source.class_names}, the training dataset {spec} "
                             f"{source.class_names}; they must be the same")
    eval_split = eval_split or eval_source.default_eval_split
    train = source.read(train_split, limit_train) if train_split else []
    evaluation = eval_source.read(eval_split, limit_eval)
    for role, name, split, examples in (("train", spec, train_split, train),
                                        ("eval", eval_spec or spec, eval_split, evaluation)):
        if split and not examples:
            raise ValueError(f"{name}: the {role} split {split!r} has no examples")
    eval_tiles = evaluation
    if tile_size:
        cut = tile_examples if task == "detection" else _tile_segmentation
        train = cut(train, tile_size, tile_overlap)
        eval_tiles = cut(evaluation, tile_size, 0.0)
    notes = source.notes if eval_source is source else (
        f"{source.notes}; evaluated on {eval_spec}: {eval_source.notes}")
    return TaskDatasets(task, spec, list(source.class_names), train, evaluation, eval_tiles,
                        options, notes, eval_source.category_ids, eval_split)


def _tile_segmentation(examples, tile, overlap):
    tiles = []
    for number, example in enumerate(examples):
        image, mask = image_of(example), mask_of(example)
        for x0, y0 in tile_windows(image.shape[1], image.shape[0], tile, overlap):
            window, _ = window_of(image, x0, y0, tile)
            labels, _ = window_of(mask, x0, y0, tile, fill=IGNORE_LABEL)
            tiles.append({"image": window, "mask": labels,
                          "id": f"{example.get('id', number)}@{x0},{y0}"})
    return tiles

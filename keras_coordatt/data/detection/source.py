"""Object detection data: boxes and class labels per image, from three kinds of source.

``open_detection_source(spec)`` opens one of::

    voc:PATH         a VOC devkit folder (Annotations/*.xml, JPEGImages/,
                     ImageSets/Main/<split>.txt: the splits; without ImageSets/Main
                     one split "all"), or a folder of images with one Pascal VOC
                     XML file each (what LabelImg, CVAT and labelme's converters
                     write): its subfolders train/ val/ validation/ test/ are the
                     splits, or without them the folder is the one split "all"
    coco:PATH        a COCO folder: annotations/instances_<split>.json with the
                     images in <split>/ (or images/<split>/)
    coco:FILE.json   one COCO instances file, its images beside it: one split,
                     named after the file (instances_val2017.json: "val2017";
                     otherwise "all")
    tfds:NAME        a tensorflow-datasets detection dataset (voc/2007, voc/2012,
                     coco/2017, ...): an ``image`` and ``objects`` with ``bbox``
                     and ``label``

Every example is a dict ``{"image": path (or uint8 (H, W, 3) array),
"width", "height", "boxes": float32 (N, 4) pixel xyxy edges, "labels": int32
(N,) indices into ``class_names``, "difficult": bool (N,), "crowd_boxes":
float32 (M, 4), "crowd_labels": int32 (M,), "id": str}``. ``load_image``
decodes its image. COCO's crowd regions (``iscrowd``) are not training
boxes: they are kept apart in ``crowd_boxes`` for evaluation, which ignores
detections there; examples of COCO sources also carry ``image_id``.

Annotations are read and checked when the source is opened (a COCO split
when first read); images only when decoded. Bad data is a ValueError naming
the file and what is wrong: a missing folder or file, a box outside the
image, a class name outside ``class_names``, an empty split, an unknown split
(the message lists the splits), an image that does not decode or whose size
differs from its annotation's. COCO boxes up to ``COCO_EDGE_TOLERANCE``
pixels past the edge are clipped, boxes of zero width or height left out
(the split's ``notes`` count them). In a plain VOC folder an image without
an XML file is no example (write one without objects for a background-only
image); a COCO image without annotations is an example without boxes.
``tfds:`` datasets not prepared in ``data_dir`` are prepared when the
download hosts answer, and otherwise fail at once saying how to prepare them.
"""

import collections.abc
import dataclasses
import json
import os
from typing import Callable
from typing import Sequence

import numpy as np
import tensorflow as tf

from keras_coordatt.data import tfds_source
from keras_coordatt.data.source import limited
from keras_coordatt.data.source import unknown_split_error
from keras_coordatt.data.voc import read_voc_annotation
from keras_coordatt.data.voc import read_voc_folder

SPEC_FORMS = '"voc:PATH", "coco:PATH", "coco:FILE.json" or "tfds:NAME" (e.g. "tfds:voc/2007")'
# Split folders of a plain folder of images and XML files, in this order.
SPLIT_FOLDERS = ("train", "val", "validation", "test")
# The split evaluated on when none is named: the first of these a source has.
EVAL_SPLITS = ("val", "validation", "test")
# COCO boxes may pass the image's edge by this many pixels (float rounding); they are clipped.
COCO_EDGE_TOLERANCE = 1.0
# The 80 COCO category ids in order: what tensorflow-datasets' coco labels 0..79 stand for.
COCO_CATEGORY_IDS = tuple(i for i in range(1, 91)
                          if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))


@dataclasses.dataclass(frozen=True)
class DetectionSplit:
    """One split of a detection source, in a fixed order.

    Args:
        name: the split's name as the user wrote it.
        examples: the example dicts (see the module docstring): a list for
            folder and COCO sources (images kept as paths), a
            `StreamedExamples` for tensorflow-datasets (decoded as it is read).
        dataset_fn: builds the split's ``tf.data.Dataset`` (``as_tf_dataset``).
        notes: what the reader left out (COCO boxes without area), or "".
    """

    name: str
    examples: Sequence[dict]
    dataset_fn: Callable[[], tf.data.Dataset] = dataclasses.field(repr=False)
    notes: str = ""

    @property
    def num_examples(self):
        """How many examples the split holds."""
        return len(self.examples)

    def as_tf_dataset(self):
        """``{"image": uint8 (H, W, 3), "boxes": float32 (N, 4) pixel xyxy, "labels":
        int32 (N,)}`` per example, in the order of ``examples``."""
        return self.dataset_fn()


@dataclasses.dataclass(frozen=True)
class DetectionSource:
    """A named detection source: its classes and splits.

    Args:
        name: the spec it was opened with (``"voc:/data/trees"``).
        class_names: label ``i`` is ``class_names[i]``.
        splits: the split names.
        read_split: ``read_split(split, limit=None)`` returns a
            `DetectionSplit` of the first ``limit`` examples (all when None);
            a ValueError listing ``splits`` for an unknown name.
        default_eval_split: the split to evaluate on when none is named.
        notes: provenance and layout, a line or two.
        category_ids: for COCO sources, the category id of each label
            (``category_ids[label]``) for writing results in COCO's ids;
            None for others.
    """

    name: str
    class_names: list[str]
    splits: tuple[str, ...]
    read_split: Callable[..., DetectionSplit] = dataclasses.field(repr=False)
    default_eval_split: str
    notes: str = ""
    category_ids: list[int] | None = None

    def as_tf_dataset(self, split, limit=None):
        """The ``tf.data.Dataset`` of a split (a name or a `DetectionSplit`);
        see `DetectionSplit.as_tf_dataset`."""
        if not isinstance(split, DetectionSplit):
            split = self.read_split(split, limit)
        return split.as_tf_dataset()


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


def load_image(example):
    """The example's image as uint8 ``(H, W, 3)``; greyscale and RGBA become RGB.

    Raises a ValueError naming the file when it is missing, does not decode
    (corrupt, truncated, not an image), or has a size other than the
    example's ``width`` x ``height`` (where the example gives them).
    """
    image = example["image"]
    if isinstance(image, (np.ndarray, tf.Tensor)):
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"example {example.get('id')!r}: the image is {image.dtype} "
                             f"{image.shape}, not uint8 (H, W, 3)")
        return image
    path = os.fspath(image)
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise ValueError(f"{path}: cannot read the image ({error.strerror or error})") from None
    try:
        image = tf.io.decode_image(data, channels=3, dtype=tf.uint8,
                                   expand_animations=False).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        reason = error.message.strip().splitlines()[0] if error.message else type(error).__name__
        raise ValueError(f"{path}: not a readable image, corrupt or truncated? "
                         f"({reason})") from None
    size = (example.get("width"), example.get("height"))
    if None not in size and (image.shape[1], image.shape[0]) != tuple(int(s) for s in size):
        raise ValueError(f"{path}: the image is {image.shape[1]}x{image.shape[0]} pixels, "
                         f"its annotation says {int(size[0])}x{int(size[1])}")
    return image


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
        image, boxes, labels = tf.py_function(load, [index], [tf.uint8, tf.float32, tf.int32])
        image.set_shape([None, None, 3])
        boxes.set_shape([None, 4])
        labels.set_shape([None])
        return {"image": image, "boxes": boxes, "labels": labels}

    def dataset_fn():
        return tf.data.Dataset.range(len(examples)).map(
            read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    return DetectionSplit(name, examples, dataset_fn, notes)


def open_detection_source(spec, data_dir=None, class_names=None):
    """The detection source ``spec`` names (see the module docstring for the forms).

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
        return _tfds_source(rest, data_dir, class_names)
    path = os.path.expanduser(rest)
    if kind == "voc":
        return _voc_source(path, class_names)
    return _coco_source(path, class_names)


# Pascal VOC XML: a devkit or a plain folder.


def _voc_source(root, class_names):
    name = f"voc:{root}"
    if not os.path.isdir(root):
        raise ValueError(f"{name}: no such folder")
    annotations_folder = os.path.join(root, "Annotations")
    if os.path.isdir(annotations_folder):
        parts, layout = _voc_devkit(root, name, class_names)
    else:
        folders = [s for s in SPLIT_FOLDERS if os.path.isdir(os.path.join(root, s))]
        if folders:
            loose = [f for f in os.listdir(root) if f.lower().endswith(".xml")]
            if loose:
                raise ValueError(f"{name}: has split folders {folders} and .xml files beside "
                                 f"them ({loose[0]}, ...): put every annotation in a split folder")
            parts = {s: read_voc_folder(os.path.join(root, s), class_names) for s in folders}
            layout = f"folders of images and Pascal VOC XML files, splits {', '.join(folders)}"
        else:
            if not any(f.lower().endswith(".xml") for f in os.listdir(root)):
                raise ValueError(f"{name}: neither a VOC devkit (Annotations/, JPEGImages/, "
                                 f"ImageSets/Main/) nor a folder of .xml annotation files (with "
                                 f"split folders {', '.join(SPLIT_FOLDERS)}, or without)")
            parts = {"all": read_voc_folder(root, class_names)}
            layout = "a folder of images and Pascal VOC XML files, one split 'all'"
    if class_names is None:
        class_names = sorted({n for part in parts.values() for a in part for n in a["names"]})
        if not class_names:
            raise ValueError(f"{name}: no objects in any annotation, so no class names; "
                             "give class_names")
    index = {n: i for i, n in enumerate(class_names)}
    examples = {split: [_voc_example(a, index) for a in part] for split, part in parts.items()}
    return DetectionSource(
        name=name, class_names=list(class_names), splits=tuple(examples),
        read_split=_list_reader(name, examples), default_eval_split=_eval_split(examples),
        notes=f"{name}: {layout}; {sum(map(len, examples.values()))} annotated images",
    )


def _voc_devkit(root, name, class_names):
    """``{split: [annotation]}`` of a VOC devkit and a line describing it."""
    annotations_folder = os.path.join(root, "Annotations")
    image_folder = os.path.join(root, "JPEGImages")
    if not os.path.isdir(image_folder):
        raise ValueError(f"{name}: has Annotations/ but no JPEGImages/ folder")
    lists_folder = os.path.join(root, "ImageSets", "Main")
    ids = {}
    if os.path.isdir(lists_folder):
        # <split>.txt; <class>_<split>.txt are per-class lists of the same images.
        for file in sorted(os.listdir(lists_folder)):
            split, extension = os.path.splitext(file)
            if extension != ".txt" or "_" in split:
                continue
            with open(os.path.join(lists_folder, file)) as lines:
                ids[split] = [line.split()[0] for line in lines if line.strip()]
            if not ids[split]:
                raise ValueError(f"{name}: split {split!r} "
                                 f"({os.path.join(lists_folder, file)}) lists no images")
        if not ids:
            raise ValueError(f"{name}: {lists_folder} has no <split>.txt image lists")
        layout = f"VOC devkit, splits from ImageSets/Main ({', '.join(ids)})"
    else:
        files = sorted(f for f in os.listdir(annotations_folder) if f.lower().endswith(".xml"))
        if not files:
            raise ValueError(f"{name}: {annotations_folder} has no .xml annotation files")
        ids["all"] = [os.path.splitext(f)[0] for f in files]
        layout = "VOC devkit without ImageSets/Main: one split 'all'"
    read = {}
    parts = {}
    for split, split_ids in ids.items():
        parts[split] = []
        for image_id in split_ids:
            if image_id not in read:
                xml = os.path.join(annotations_folder, image_id + ".xml")
                if not os.path.isfile(xml):
                    raise ValueError(f"{name}: split {split!r} lists {image_id!r}, but there "
                                     f"is no {xml}")
                read[image_id] = read_voc_annotation(xml, class_names, image_folder)
            parts[split].append(read[image_id])
    return parts, layout


def _voc_example(annotation, index):
    return {
        "image": annotation["image"], "width": annotation["width"],
        "height": annotation["height"], "boxes": annotation["boxes"],
        "labels": np.array([index[n] for n in annotation["names"]], np.int32),
        "difficult": annotation["difficult"], "crowd_boxes": np.zeros((0, 4), np.float32),
        "crowd_labels": np.zeros((0,), np.int32),
        "id": os.path.splitext(os.path.basename(annotation["file"]))[0],
        "file": annotation["file"],
    }


def _list_reader(name, examples, notes=lambda split: ""):
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


def _eval_split(splits):
    return next((s for s in EVAL_SPLITS if s in splits), list(splits)[-1])


# COCO instances JSON.


def _coco_source(path, class_names):
    name = f"coco:{path}"
    if path.lower().endswith(".json"):
        if not os.path.isfile(path):
            raise ValueError(f"{name}: no such file")
        stem = os.path.splitext(os.path.basename(path))[0]
        split = stem[len("instances_"):] if stem.startswith("instances_") else "all"
        files = {split: (path, [os.path.dirname(path) or os.curdir])}
        layout = "one COCO instances file, images beside it"
    else:
        if not os.path.isdir(path):
            raise ValueError(f"{name}: no such folder")
        folder = os.path.join(path, "annotations")
        found = sorted(f for f in os.listdir(folder)) if os.path.isdir(folder) else []
        found = [f for f in found if f.startswith("instances_") and f.endswith(".json")]
        if not found:
            raise ValueError(f"{name}: no annotations/instances_<split>.json files (a COCO "
                             "folder: annotations/instances_<split>.json, <split>/ images)")
        files = {}
        for file in found:
            split = file[len("instances_"):-len(".json")]
            files[split] = (os.path.join(folder, file),
                            [os.path.join(path, split), os.path.join(path, "images", split)])
        layout = f"COCO folder, splits {', '.join(files)}"
    # The categories (and with them the class names) come from the smallest file;
    # every split's must agree when it is read.
    first = min(files, key=lambda s: os.path.getsize(files[s][0]))
    cache = {first: _read_coco(*files[first], class_names=class_names)}
    categories = cache[first]["categories"]
    if class_names is None:
        class_names = [c_name for _, c_name in categories]
    by_name = {c_name: c_id for c_id, c_name in categories}
    category_ids = [by_name.get(c_name) for c_name in class_names]

    def split_examples(split):
        if split not in cache:
            cache[split] = _read_coco(*files[split], class_names=class_names)
            if cache[split]["categories"] != categories:
                raise ValueError(f"{files[split][0]}: its categories differ from "
                                 f"{files[first][0]}'s; the splits must share them")
        return cache[split]["examples"]

    return DetectionSource(
        name=name, class_names=list(class_names), splits=tuple(files),
        read_split=_list_reader(name, {s: (lambda s=s: split_examples(s)) for s in files},
                                lambda split: cache[split]["notes"]),
        default_eval_split=_eval_split(files),
        notes=(f"{name}: {layout}; categories mapped in id order to labels "
               f"0..{len(class_names) - 1}"),
        category_ids=category_ids,
    )


def _read_coco(path, image_folders, class_names=None):
    """A COCO instances file's examples, checked: ``{"examples", "categories", "notes"}``."""
    try:
        with open(path) as file:
            data = json.load(file)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable JSON file ({error})") from None
    missing = [key for key in ("images", "annotations", "categories")
               if not isinstance(data, dict) or key not in data]
    if missing:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: not a COCO instances file: no {', '.join(missing)} "
                         f"(it has {keys})")
    categories = []
    for category in data["categories"]:
        _need(category, ("id", "name"), path, "a category")
        categories.append((int(category["id"]), str(category["name"])))
    categories.sort()
    if class_names is None:
        index = {c_id: i for i, (c_id, _) in enumerate(categories)}
    else:
        unknown = [c_name for _, c_name in categories if c_name not in class_names]
        if unknown:
            raise ValueError(f"{path}: the categories {unknown} are not among the classes "
                             f"{class_names}")
        index = {c_id: class_names.index(c_name) for c_id, c_name in categories}
    if not data["images"]:
        raise ValueError(f"{path}: has no images")
    images = {}
    folder = next((f for f in image_folders if os.path.isdir(f)), None)
    if folder is None:
        raise ValueError(f"{path}: no image folder: tried {', '.join(image_folders)}")
    for image in data["images"]:
        _need(image, ("id", "file_name", "width", "height"), path, "an image")
        if image["id"] in images:
            raise ValueError(f"{path}: image id {image['id']} appears twice")
        file = os.path.join(folder, image["file_name"])
        if not os.path.isfile(file):
            raise ValueError(f"{path}: image {image['id']}'s file {file} does not exist")
        images[image["id"]] = {
            "file": file, "width": int(image["width"]), "height": int(image["height"]),
            "boxes": [], "labels": [], "crowd_boxes": [], "crowd_labels": []}
    without_area = 0
    for number, annotation in enumerate(data["annotations"]):
        where = f"annotation {annotation.get('id', f'#{number}')}"
        _need(annotation, ("image_id", "category_id", "bbox"), path, where)
        image = images.get(annotation["image_id"])
        if image is None:
            raise ValueError(f"{path}: {where} is for image id {annotation['image_id']}, "
                             "which is not among the images")
        if annotation["category_id"] not in index:
            raise ValueError(f"{path}: {where} has category_id {annotation['category_id']}, not "
                             f"one of the categories {[c_id for c_id, _ in categories]}")
        try:
            x, y, w, h = (float(v) for v in annotation["bbox"])
        except (TypeError, ValueError):
            raise ValueError(f"{path}: {where}'s bbox {annotation['bbox']!r} is not four "
                             "numbers x, y, width, height") from None
        if w < 0 or h < 0:
            raise ValueError(f"{path}: {where} has the bbox {annotation['bbox']}, a negative "
                             "width or height")
        if w == 0 or h == 0:
            without_area += 1
            continue
        width, height, tolerance = image["width"], image["height"], COCO_EDGE_TOLERANCE
        if x < -tolerance or y < -tolerance or x + w > width + tolerance or (
                y + h > height + tolerance):
            raise ValueError(f"{path}: {where} has the bbox x={x:g} y={y:g} w={w:g} h={h:g}, "
                             f"outside the {width}x{height} image {annotation['image_id']}")
        box = [max(x, 0.0), max(y, 0.0), min(x + w, width), min(y + h, height)]
        crowd = "crowd_" if annotation.get("iscrowd", 0) else ""
        image[crowd + "boxes"].append(box)
        image[crowd + "labels"].append(index[annotation["category_id"]])
    examples = []
    for image_id, image in images.items():
        boxes = np.asarray(image["boxes"], np.float32).reshape(-1, 4)
        examples.append({
            "image": image["file"], "width": image["width"], "height": image["height"],
            "boxes": boxes, "labels": np.asarray(image["labels"], np.int32),
            "difficult": np.zeros(len(boxes), bool),
            "crowd_boxes": np.asarray(image["crowd_boxes"], np.float32).reshape(-1, 4),
            "crowd_labels": np.asarray(image["crowd_labels"], np.int32),
            "id": str(image_id), "image_id": image_id, "file": path,
        })
    notes = f"{without_area} boxes without area left out" if without_area else ""
    return {"examples": examples, "categories": categories, "notes": notes}


def _need(item, keys, path, what):
    missing = [key for key in keys if not isinstance(item, dict) or key not in item]
    if missing:
        raise ValueError(f"{path}: {what} has no {', '.join(repr(k) for k in missing)}: "
                         f"{item!r:.200}")


# tensorflow-datasets.


def tfds_builder(name, data_dir=None):
    """The prepared tensorflow-datasets builder of ``name``.

    Where the dataset is not prepared in ``data_dir`` it is downloaded and
    prepared if the download hosts answer; offline it fails at once (a 3 s
    connection test) saying how to prepare it elsewhere
    (``tfds build NAME --data_dir DIR``) and pass that DIR as ``data_dir``.
    """
    tfds = tfds_source._import_tfds()
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(f"tensorflow-datasets has no dataset {name!r}; the catalog: "
                         "https://www.tensorflow.org/datasets/catalog/overview") from None
    tfds_source._prepare(builder, name, data_dir)
    return builder


def tfds_split_reader(builder, source_name, convert):
    """A function ``(split, limit=None) -> (split, dataset_fn, count)`` over a prepared builder.

    ``dataset_fn()`` gives the first ``count`` examples of the split mapped
    by ``convert`` (a tfds example to the source's full example dict), in
    the stored order. Splits take tfds' slicing syntax (``"train[:10%]"``);
    an unknown split is a ValueError listing the splits, an empty one too.
    """
    split_names = list(builder.info.splits)

    def read_split(split, limit=None):
        for part in split.split("+"):
            if part.split("[")[0].strip() not in split_names:
                raise unknown_split_error(source_name, split, split_names)
        count = limited(builder.info.splits[split].num_examples, limit)
        if count == 0:
            raise ValueError(f"{source_name}: split {split!r} has no examples")

        def full():
            return builder.as_dataset(split=split, shuffle_files=False).take(count).map(
                convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

        return split, full, count

    return read_split


def _tfds_source(name, data_dir, class_names):
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
        default_eval_split=_eval_split(splits),
        notes=(f"tensorflow-datasets {builder.info.full_name} in {builder.data_dir}; "
               f"licence and citation: {builder.info.homepage}"),
        category_ids=list(COCO_CATEGORY_IDS) if is_coco else None,
    )


def _python_example(item):
    """A streamed example with its strings as ``str``."""
    return {key: value.decode() if isinstance(value, bytes) else value
            for key, value in item.items()}

"""Semantic segmentation data: an image and a mask of class indices, from three kinds of source.

``open_segmentation_source(spec)`` opens one of::

    voc:PATH     a VOC devkit folder: JPEGImages/<id>.jpg, SegmentationClass/<id>.png
                 (palette PNGs: the palette INDEX is the class, 255 the outline
                 to ignore), ImageSets/Segmentation/<split>.txt the splits
                 (without it, every mask in one split "all")
    masks:PATH   PATH/<split>/images/*.{png,jpg,...} and PATH/<split>/masks/*.png
                 of the same stems (or PATH/images and PATH/masks: one split "all");
                 the masks palette or greyscale PNGs of class indices
    cityscapes:PATH
                 the Cityscapes folder as distributed (leftImg8bit_trainvaltest.zip
                 and gtFine_trainvaltest.zip unpacked side by side):
                 leftImg8bit/<split>/<city>/<name>_leftImg8bit.png and
                 gtFine/<split>/<city>/<name>_gtFine_labelIds.png; the 34 label
                 ids become the 19 training classes (`CITYSCAPES_CLASSES`), the
                 others 255, as the benchmark scores them
    tfds:oxford_iiit_pet
                 the Oxford-IIIT Pet trimaps (1 pet, 2 background, 3 border) as
                 the classes background 0 and pet 1, the border 255 (ignored)

A mask's value is the class index, 255 means "ignore" (not scored, no loss).
Examples are dicts ``{"image": path, "mask": path, "id": str}`` (arrays in
place of paths for tensorflow-datasets); ``load_image`` and `load_mask`
decode them, `SegmentationSplit.as_tf_dataset` gives ``{"image": uint8 (H, W,
3), "mask": uint8 (H, W)}``.

Checked, each a ValueError naming the file: a missing folder or file, an
image without a mask (or a mask without an image), an empty split, an
unknown split (listing the splits), and when decoded: a mask whose size is
not its image's, a mask value outside ``[0, num_classes)`` other than 255, a
mask that is RGB (colours, not class indices), an image that does not decode.
Palette masks need Pillow.
"""

import dataclasses
import os
from typing import Callable
from typing import Sequence

import numpy as np
import tensorflow as tf

from keras_coordatt.data.detection import EVAL_SPLITS
from keras_coordatt.data.detection import SPLIT_FOLDERS
from keras_coordatt.data.detection import StreamedExamples
from keras_coordatt.data.detection import load_image
from keras_coordatt.data.detection import tfds_builder
from keras_coordatt.data.detection import tfds_split_reader
from keras_coordatt.data.source import limited
from keras_coordatt.data.source import unknown_split_error
from keras_coordatt.data.voc import IMAGE_EXTENSIONS

SPEC_FORMS = '"voc:PATH", "masks:PATH", "cityscapes:PATH" or "tfds:oxford_iiit_pet"'
IGNORE = 255
# A file of class names, one a line (index 0 first), that a voc: or masks: folder may hold.
CLASS_NAMES_FILE = "class_names.txt"
# Pascal VOC's segmentation classes: palette index i is class i.
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
# Cityscapes' 19 evaluated classes, in their training-id order.
CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)
# Cityscapes label id (the values of *_gtFine_labelIds.png, 0-33) -> training id, as the
# benchmark's labels.py defines them; the ids it does not evaluate (void, parking, rail
# track, guard rail, bridge, tunnel, polegroup, caravan, trailer) -> 255.
_CITYSCAPES_EVALUATED_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
CITYSCAPES_TRAIN_IDS = tuple(_CITYSCAPES_EVALUATED_IDS.index(i) if i in _CITYSCAPES_EVALUATED_IDS
                             else IGNORE for i in range(34))
# tensorflow-datasets segmentation datasets: (mask feature, stored value -> class, class names).
TFDS_DATASETS = {
    # Oxford-IIIT Pet trimaps: 1 pet, 2 background, 3 border (ignored).
    "oxford_iiit_pet": ("segmentation_mask", (IGNORE, 1, 0, IGNORE), ("background", "pet")),
}


@dataclasses.dataclass(frozen=True)
class SegmentationSplit:
    """One split of a segmentation source, in a fixed order.

    Args:
        name: the split's name as the user wrote it.
        examples: ``{"image", "mask", "id"}`` dicts: a list (paths) for
            folders, a `StreamedExamples` (arrays) for tensorflow-datasets.
        dataset_fn: builds the split's ``tf.data.Dataset`` (``as_tf_dataset``).
    """

    name: str
    examples: Sequence[dict]
    dataset_fn: Callable[[], tf.data.Dataset] = dataclasses.field(repr=False)

    @property
    def num_examples(self):
        """How many examples the split holds."""
        return len(self.examples)

    def as_tf_dataset(self):
        """``{"image": uint8 (H, W, 3), "mask": uint8 (H, W)}`` per example, in
        the order of ``examples``; mask values are class indices or 255."""
        return self.dataset_fn()


@dataclasses.dataclass(frozen=True)
class SegmentationSource:
    """A named segmentation source: its classes and splits.

    Args:
        name: the spec it was opened with.
        class_names: mask value ``i`` is ``class_names[i]``; 255 is ignored.
        splits: the split names.
        read_split: ``read_split(split, limit=None)`` returns a
            `SegmentationSplit` of the first ``limit`` examples (all when
            None); a ValueError listing ``splits`` for an unknown name.
        default_eval_split: the split to evaluate on when none is named.
        notes: provenance and layout, a line or two.
    """

    name: str
    class_names: list[str]
    splits: tuple[str, ...]
    read_split: Callable[..., SegmentationSplit] = dataclasses.field(repr=False)
    default_eval_split: str
    notes: str = ""

    def as_tf_dataset(self, split, limit=None):
        """The ``tf.data.Dataset`` of a split (a name or a `SegmentationSplit`);
        see `SegmentationSplit.as_tf_dataset`."""
        if not isinstance(split, SegmentationSplit):
            split = self.read_split(split, limit)
        return split.as_tf_dataset()


def load_mask(example, num_classes=None):
    """The example's mask as uint8 ``(H, W)`` of class indices (255: ignore).

    A palette PNG gives its palette indices, a greyscale one its values.
    Raises a ValueError naming the file when it is missing or unreadable,
    holds colours (RGB) instead of indices, or (with ``num_classes``) has
    values outside ``[0, num_classes)`` other than 255.
    """
    mask = example["mask"]
    if isinstance(mask, (np.ndarray, tf.Tensor)):
        where, values = f"example {example.get('id')!r}'s mask", np.asarray(mask)
        if values.ndim == 3 and values.shape[-1] == 1:
            values = values[..., 0]
    else:
        where = os.fspath(mask)
        values = _read_mask_file(where)
    if values.ndim != 2:
        raise ValueError(f"{where}: the mask has the shape {values.shape}, not (H, W)")
    if example.get("label_ids") is not None:  # stored label ids -> class indices
        table = np.asarray(example["label_ids"], np.uint8)
        unknown = values >= len(table)
        if unknown.any():
            raise ValueError(f"{where}: mask values {np.unique(values[unknown]).tolist()} are "
                             f"not label ids of this dataset (0 to {len(table) - 1})")
        values = table[values]
    if values.dtype != np.uint8:
        if values.size and (values.min() < 0 or values.max() > IGNORE):
            raise ValueError(f"{where}: mask values up to {values.max()}, more than a uint8 "
                             "class index holds")
        values = values.astype(np.uint8)
    if num_classes is not None:
        bad = (values >= num_classes) & (values != IGNORE)
        if bad.any():
            raise ValueError(f"{where}: mask values {np.unique(values[bad]).tolist()} are "
                             f"outside [0, {num_classes}) and not {IGNORE} (ignore)")
    return values


def load_segmentation_example(example, num_classes=None):
    """``(image uint8 (H, W, 3), mask uint8 (H, W))`` of an example, their sizes checked."""
    image = load_image(example)
    mask = load_mask(example, num_classes)
    if mask.shape != image.shape[:2]:
        raise ValueError(
            f"{_name(example['mask'], 'the mask')}: the mask is {mask.shape[1]}x{mask.shape[0]} "
            f"pixels, its image {_name(example['image'], '')} {image.shape[1]}x{image.shape[0]}")
    return image, mask


def segmentation_split(name, examples, num_classes=None):
    """A `SegmentationSplit` of example dicts (paths or arrays).

    Its ``tf.data`` decodes each pair with `load_segmentation_example` (in
    parallel, in order), so a bad file fails naming it.
    """
    examples = list(examples)

    def load(index):
        return load_segmentation_example(examples[int(index)], num_classes)

    def read(index):
        image, mask = tf.py_function(load, [index], [tf.uint8, tf.uint8])
        image.set_shape([None, None, 3])
        mask.set_shape([None, None])
        return {"image": image, "mask": mask}

    def dataset_fn():
        return tf.data.Dataset.range(len(examples)).map(
            read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    return SegmentationSplit(name, examples, dataset_fn)


def open_segmentation_source(spec, data_dir=None, class_names=None):
    """The segmentation source ``spec`` names (see the module docstring for the forms).

    Args:
        spec: ``"voc:PATH"``, ``"masks:PATH"`` or ``"tfds:oxford_iiit_pet"``.
        data_dir: tensorflow-datasets' data directory (``tfds:`` only).
        class_names: mask value ``i`` is ``class_names[i]``. None: a folder's
            ``class_names.txt`` (one a line), else for ``voc:`` Pascal VOC's
            21 classes; ``masks:`` then needs them given. ``tfds:`` has its
            own; given, they must be those.
    """
    kind, separator, rest = str(spec).partition(":")
    if not separator or not rest or kind not in ("voc", "masks", "cityscapes", "tfds"):
        raise ValueError(f"unknown segmentation dataset {spec!r}; give {SPEC_FORMS}")
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if not 0 < len(class_names) <= IGNORE or len(set(class_names)) != len(class_names):
            raise ValueError(f"class_names must be 1 to {IGNORE} distinct names: {class_names}")
    if kind == "tfds":
        return _tfds_source(rest, data_dir, class_names)
    root = os.path.expanduser(rest)
    name = f"{kind}:{root}"
    if not os.path.isdir(root):
        raise ValueError(f"{name}: no such folder")
    if class_names is None:
        class_names = _class_names_file(root)
    if kind == "voc":
        parts, layout = _voc_parts(root, name)
        class_names = class_names or list(VOC_CLASSES)
    elif kind == "cityscapes":
        if class_names not in (None, list(CITYSCAPES_CLASSES)):
            raise ValueError(f"{name}'s classes are Cityscapes' 19 {list(CITYSCAPES_CLASSES)}, "
                             f"not the class_names given {class_names}")
        parts, layout = _cityscapes_parts(root, name)
        class_names = list(CITYSCAPES_CLASSES)
    else:
        parts, layout = _mask_folder_parts(root, name)
        if class_names is None:
            raise ValueError(f"{name}: give class_names (mask value 0 first), or list them one a "
                             f"line in {os.path.join(root, CLASS_NAMES_FILE)}")
    num_classes = len(class_names)

    def read_split(split, limit=None):
        if split not in parts:
            raise unknown_split_error(name, split, list(parts))
        count = limited(len(parts[split]), limit)
        return segmentation_split(split, parts[split][:count], num_classes)

    return SegmentationSource(
        name=name, class_names=list(class_names), splits=tuple(parts), read_split=read_split,
        default_eval_split=next((s for s in EVAL_SPLITS if s in parts), list(parts)[-1]),
        notes=f"{name}: {layout}; {sum(map(len, parts.values()))} images with masks",
    )


def _class_names_file(root):
    path = os.path.join(root, CLASS_NAMES_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as file:
        names = [line.strip() for line in file if line.strip()]
    if not names or len(set(names)) != len(names) or len(names) > IGNORE:
        raise ValueError(f"{path}: needs 1 to {IGNORE} distinct class names, one a line")
    return names


def _voc_parts(root, name):
    """``{split: [example]}`` of a VOC devkit's segmentation part, and a line describing it."""
    images, masks = os.path.join(root, "JPEGImages"), os.path.join(root, "SegmentationClass")
    for folder in (images, masks):
        if not os.path.isdir(folder):
            raise ValueError(f"{name}: no {os.path.basename(folder)}/ folder (a VOC devkit "
                             "holds JPEGImages/, SegmentationClass/, ImageSets/Segmentation/)")
    lists = os.path.join(root, "ImageSets", "Segmentation")
    ids = {}
    if os.path.isdir(lists):
        for file in sorted(os.listdir(lists)):
            split, extension = os.path.splitext(file)
            if extension == ".txt":
                with open(os.path.join(lists, file)) as lines:
                    ids[split] = [line.split()[0] for line in lines if line.strip()]
        if not ids:
            raise ValueError(f"{name}: {lists} has no <split>.txt image lists")
        layout = f"VOC devkit, splits from ImageSets/Segmentation ({', '.join(ids)})"
    else:
        ids["all"] = sorted(os.path.splitext(f)[0] for f in os.listdir(masks)
                            if f.lower().endswith(".png"))
        layout = "VOC devkit without ImageSets/Segmentation: every mask, one split 'all'"
    parts = {}
    for split, split_ids in ids.items():
        if not split_ids:
            raise ValueError(f"{name}: split {split!r} has no images")
        parts[split] = []
        for image_id in split_ids:
            mask = os.path.join(masks, image_id + ".png")
            image = _find_image(images, image_id)
            if image is None:
                raise ValueError(f"{name}: split {split!r} lists {image_id!r}, but "
                                 f"{images} has no {image_id}.jpg (or .png, ...)")
            if not os.path.isfile(mask):
                raise ValueError(f"{name}: the image {image} has no mask {mask}")
            parts[split].append({"image": image, "mask": mask, "id": image_id})
    return parts, layout


def _mask_folder_parts(root, name):
    """``{split: [example]}`` of a masks: folder, and a line describing it."""
    if os.path.isdir(os.path.join(root, "images")):
        folders = {"all": root}
        layout = "images/ and masks/, one split 'all'"
    else:
        found = sorted(e.name for e in os.scandir(root)
                       if os.path.isdir(os.path.join(root, e.name, "images")))
        found = _split_order(found)
        if not found:
            raise ValueError(f"{name}: no images/ folder in it or in a split folder "
                             "(<split>/images/ and <split>/masks/)")
        folders = {split: os.path.join(root, split) for split in found}
        layout = f"<split>/images/ and <split>/masks/, splits {', '.join(found)}"
    parts = {}
    for split, folder in folders.items():
        images, masks = os.path.join(folder, "images"), os.path.join(folder, "masks")
        if not os.path.isdir(masks):
            raise ValueError(f"{name}: {images} has no masks/ folder beside it")
        by_stem = {}
        for file in sorted(os.listdir(images)):
            if file.lower().endswith(IMAGE_EXTENSIONS):
                stem = os.path.splitext(file)[0]
                if stem in by_stem:
                    raise ValueError(f"{name}: two images named {stem!r} in {images}: "
                                     f"{os.path.basename(by_stem[stem])} and {file}")
                by_stem[stem] = os.path.join(images, file)
        if not by_stem:
            raise ValueError(f"{name}: split {split!r} has no images in {images}")
        mask_stems = {os.path.splitext(f)[0] for f in os.listdir(masks)
                      if f.lower().endswith(".png")}
        without_mask = sorted(set(by_stem) - mask_stems)
        if without_mask:
            raise ValueError(f"{name}: the image {by_stem[without_mask[0]]} has no mask "
                             f"{os.path.join(masks, without_mask[0] + '.png')}"
                             + (f" ({len(without_mask)} images without one)"
                                if len(without_mask) > 1 else ""))
        without_image = sorted(mask_stems - set(by_stem))
        if without_image:
            raise ValueError(f"{name}: the mask {os.path.join(masks, without_image[0])}.png has "
                             f"no image in {images}")
        parts[split] = [{"image": path, "mask": os.path.join(masks, stem + ".png"), "id": stem}
                        for stem, path in by_stem.items()]
    return parts, layout


def _cityscapes_parts(root, name):
    """``{split: [example]}`` of a Cityscapes folder (fine annotations), and a line describing it."""
    images_root, masks_root = os.path.join(root, "leftImg8bit"), os.path.join(root, "gtFine")
    for folder, archive in ((images_root, "leftImg8bit_trainvaltest.zip"),
                            (masks_root, "gtFine_trainvaltest.zip")):
        if not os.path.isdir(folder):
            raise ValueError(f"{name}: no {os.path.basename(folder)}/ folder; unpack "
                             f"{archive} (from cityscapes-dataset.com) into {root}")
    found = sorted(e.name for e in os.scandir(images_root) if e.is_dir())
    splits = _split_order(found)
    parts = {}
    for split in splits:
        masks_split = os.path.join(masks_root, split)
        if not os.path.isdir(masks_split):
            raise ValueError(f"{name}: leftImg8bit/{split}/ has no gtFine/{split}/ beside it")
        examples = []
        for city in sorted(os.listdir(os.path.join(images_root, split))):
            city_folder = os.path.join(images_root, split, city)
            if not os.path.isdir(city_folder):
                continue
            for file in sorted(os.listdir(city_folder)):
                if not file.endswith("_leftImg8bit.png"):
                    continue
                stem = file[:-len("_leftImg8bit.png")]
                mask = os.path.join(masks_split, city, stem + "_gtFine_labelIds.png")
                if not os.path.isfile(mask):
                    raise ValueError(f"{name}: the image {os.path.join(city_folder, file)} has "
                                     f"no mask {mask}")
                examples.append({"image": os.path.join(city_folder, file), "mask": mask,
                                 "id": stem, "label_ids": CITYSCAPES_TRAIN_IDS})
        if not examples:
            raise ValueError(f"{name}: split {split!r} has no <city>/*_leftImg8bit.png images "
                             f"in {os.path.join(images_root, split)}")
        parts[split] = examples
    if not parts:
        raise ValueError(f"{name}: {images_root} has no split folders (train/, val/, test/)")
    sizes = ", ".join(f"{split} {len(examples)}" for split, examples in parts.items())
    return parts, (f"Cityscapes fine annotations ({sizes}), label ids mapped to the 19 "
                   "training classes, the rest 255")


def _split_order(names):
    """Split folder names, the usual ones (train, val, ...) first in that order."""
    return [s for s in SPLIT_FOLDERS if s in names] + [s for s in names if s not in SPLIT_FOLDERS]


def _find_image(folder, stem):
    for extension in (".jpg",) + IMAGE_EXTENSIONS:
        path = os.path.join(folder, stem + extension)
        if os.path.isfile(path):
            return path
    return None


def _read_mask_file(path):
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading mask PNGs needs Pillow: pip install pillow") from None
    try:
        with Image.open(path) as mask:
            mask.load()
            mode = mask.mode
            if mode in ("RGB", "RGBA", "LA", "CMYK", "YCbCr", "HSV"):
                raise ValueError(f"{path}: the mask is a {mode} image; a mask holds class "
                                 "indices: a palette ('P') or greyscale PNG")
            values = np.asarray(mask)
    except OSError as error:
        raise ValueError(f"{path}: cannot read the mask ({error})") from None
    return values.astype(np.uint8) if values.dtype == bool else values


def _name(item, fallback):
    return fallback if isinstance(item, (np.ndarray, tf.Tensor)) else os.fspath(item)


def _tfds_source(name, data_dir, class_names):
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
        default_eval_split=next((s for s in EVAL_SPLITS if s in splits), splits[-1]),
        notes=(f"tensorflow-datasets {builder.info.full_name} in {builder.data_dir}, masks "
               f"{mask_key} mapped {dict(enumerate(table))}; licence and citation: "
               f"{builder.info.homepage}"),
    )

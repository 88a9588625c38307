"""Opens a segmentation source by its name, and takes a folder's classes from its data.

``open_segmentation_source(spec)`` reads ``voc:PATH`` (a VOC devkit,
`keras_coordatt.data.segmentation.voc`), ``masks:PATH`` (folders of images
and masks, `keras_coordatt.data.segmentation.mask_folder`),
``cityscapes:PATH`` (`keras_coordatt.data.segmentation.cityscapes`) and
``tfds:oxford_iiit_pet`` (`keras_coordatt.data.segmentation.tfds`).

The classes of a ``voc:`` or ``masks:`` folder are, the first that applies:

1. the ``class_names`` given;
2. ``PATH/class_names.txt``, one name a line, mask value 0 first (labelme's
   ``labelme2voc.py`` writes one);
3. for ``voc:``, Pascal VOC's 21 classes, when every mask carries VOC's own
   palette (a real devkit does; a folder merely laid out like one need not);
4. the mask values found: 0 to the largest (255 aside) are the classes
   "class 0", "class 1", ...

Unless given, one line says which names were taken and from where. Every
mask is read once when a folder is opened (in parallel; a line says how long
it took when that is more than a few seconds): a value outside the classes
other than 255 is an error naming the file and the value, never a class
trained in silence; a folder whose masks hold one class is refused.
"""

import os

import numpy as np

from keras_coordatt.data.core.folders import FolderScan
from keras_coordatt.data.core.images import read_all
from keras_coordatt.data.core.splits import default_eval_split
from keras_coordatt.data.core.splits import limited
from keras_coordatt.data.core.splits import unknown_split_error
from keras_coordatt.data.segmentation.cityscapes import CITYSCAPES_CLASSES
from keras_coordatt.data.segmentation.cityscapes import cityscapes_parts
from keras_coordatt.data.segmentation.mask_folder import mask_folder_parts
from keras_coordatt.data.segmentation.source import IGNORE_LABEL
from keras_coordatt.data.segmentation.source import SegmentationSource
from keras_coordatt.data.segmentation.source import read_mask_file
from keras_coordatt.data.segmentation.source import segmentation_split
from keras_coordatt.data.segmentation.voc import VOC_CLASSES
from keras_coordatt.data.segmentation.voc import is_voc_palette
from keras_coordatt.data.segmentation.voc import voc_parts

SPEC_FORMS = '"voc:PATH", "masks:PATH", "cityscapes:PATH" or "tfds:oxford_iiit_pet"'
# A file of class names, one a line (mask value 0 first), that a voc: or masks: folder may hold.
CLASS_NAMES_FILE = "class_names.txt"
# How many class names the line saying where they came from shows.
NAMES_SHOWN = 5


def open_segmentation_source(spec, data_dir=None, class_names=None):
    """The segmentation source ``spec`` names (see the module docstring).

    Args:
        spec: ``"voc:PATH"``, ``"masks:PATH"``, ``"cityscapes:PATH"`` or
            ``"tfds:oxford_iiit_pet"``.
        data_dir: tensorflow-datasets' data directory (``tfds:`` only).
        class_names: mask value ``i`` is ``class_names[i]``. None: a folder's
            classes as the module docstring says; ``cityscapes:`` and ``tfds:``
            have their own (given, they must be those).
    """
    kind, separator, rest = str(spec).partition(":")
    if not separator or not rest or kind not in ("voc", "masks", "cityscapes", "tfds"):
        raise ValueError(f"unknown segmentation dataset {spec!r}; give {SPEC_FORMS}")
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if not 0 < len(class_names) <= IGNORE_LABEL or len(set(class_names)) != len(class_names):
            raise ValueError(f"class_names must be 1 to {IGNORE_LABEL} distinct names: "
                             f"{class_names}")
    if kind == "tfds":
        # tensorflow-datasets (and TensorFlow) only for tfds: sources.
        from keras_coordatt.data.segmentation.tfds import open_tfds

        return open_tfds(rest, data_dir, class_names)
    root = os.path.expanduser(rest)
    name = f"{kind}:{root}"
    if not os.path.isdir(root):
        raise ValueError(f"{name}: no such folder")
    if kind == "cityscapes":
        if class_names not in (None, list(CITYSCAPES_CLASSES)):
            raise ValueError(f"{name}'s classes are Cityscapes' 19 {list(CITYSCAPES_CLASSES)}, "
                             f"not the class_names given {class_names}")
        parts, layout = cityscapes_parts(root, name)
        class_names = list(CITYSCAPES_CLASSES)
    else:
        scan = FolderScan(name, root)
        parts, layout = (voc_parts if kind == "voc" else mask_folder_parts)(root, name, scan)
        scan.note()
        class_names, origin = _folder_classes(name, root, kind, parts, class_names)
        layout += f"; classes {origin}"
    num_classes = len(class_names)

    def read_split(split, limit=None):
        if split not in parts:
            raise unknown_split_error(name, split, list(parts))
        count = limited(len(parts[split]), limit)
        return segmentation_split(split, parts[split][:count], num_classes)

    return SegmentationSource(
        name=name, class_names=list(class_names), splits=tuple(parts), read_split=read_split,
        default_eval_split=default_eval_split(parts),
        notes=f"{name}: {layout}; {sum(map(len, parts.values()))} images with masks",
    )


def _folder_classes(name, root, kind, parts, class_names):
    """A voc: or masks: folder's ``(class names, where they come from)``, every mask checked."""
    # A mask in several splits (VOC's trainval is train and val) is read once.
    masks = list(dict.fromkeys(example["mask"] for part in parts.values() for example in part))
    summaries = read_all(_mask_summary, masks,
                         f"{name}: read {len(masks):,} masks once to check their values")
    names_file = os.path.join(root, CLASS_NAMES_FILE)
    if class_names is not None:
        origin = "given"
    elif os.path.isfile(names_file):
        class_names, origin = _read_class_names(names_file), f"from {names_file}"
    elif kind == "voc" and all(is_voc_palette(palette) for _, palette in summaries):
        class_names, origin = list(VOC_CLASSES), "of Pascal VOC, as every mask has VOC's palette"
    else:
        found = sorted(set().union(*(values.tolist() for values, _ in summaries))
                       - {IGNORE_LABEL})
        count = found[-1] + 1 if found else 0
        if count < 2:
            raise ValueError(f"{name}: its {len(masks)} masks hold no value but "
                             f"{', '.join(map(str, found + [IGNORE_LABEL]))}: one class or none, "
                             "and segmentation needs two or more (0 background, 1 ...)")
        class_names = [f"class {value}" for value in range(count)]
        origin = f"from the mask values found (0 to {count - 1})"
    # Names taken from neither the user nor their file: say how to give them.
    guessed = origin != "given" and not os.path.isfile(names_file)
    how = f"list them one a line (mask value 0 first) in {names_file}"
    if origin != "given":
        shown = ", ".join(class_names[:NAMES_SHOWN]) + (
            ", ..." if len(class_names) > NAMES_SHOWN else "")
        print(f"{name}: {len(class_names)} classes {origin}: {shown}"
              + (f"; to name them, {how}" if guessed else ""), flush=True)
    for mask, (values, _) in zip(masks, summaries):
        bad = values[(values >= len(class_names)) & (values != IGNORE_LABEL)]
        if len(bad):
            raise ValueError(
                f"{mask}: mask values {bad.tolist()} are outside [0, {len(class_names)}) and not "
                f"{IGNORE_LABEL} (ignore); the {len(class_names)} classes are {origin}"
                + (f"; if the masks hold others, {how}" if guessed else ""))
    return class_names, origin


def _mask_summary(path):
    """A mask file's distinct values and its palette (None for greyscale)."""
    values, palette = read_mask_file(path)
    return np.unique(values), palette


def _read_class_names(path):
    with open(path) as file:
        names = [line.strip() for line in file if line.strip()]
    if not names or len(set(names)) != len(names) or len(names) > IGNORE_LABEL:
        raise ValueError(f"{path}: needs 1 to {IGNORE_LABEL} distinct class names, one a line")
    return names

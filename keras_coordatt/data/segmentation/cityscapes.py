"""Cityscapes as a segmentation source: ``"cityscapes:PATH"``, the folder as distributed.

``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip`` unpacked
side by side: ``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` and
``gtFine/<split>/<city>/<name>_gtFine_labelIds.png``. The 34 label ids
become the 19 training classes (`CITYSCAPES_CLASSES`), the others 255
(ignored), as the benchmark scores them; a value that is no label id is an
error naming its file.
"""

import os

from keras_coordatt.data.core.splits import split_order
from keras_coordatt.data.segmentation.source import IGNORE_LABEL

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
                             else IGNORE_LABEL for i in range(34))


def cityscapes_parts(root, name):
    """``{split: [example]}`` of a Cityscapes folder (fine annotations), and a line describing it."""
    images_root, masks_root = os.path.join(root, "leftImg8bit"), os.path.join(root, "gtFine")
    for folder, archive in ((images_root, "leftImg8bit_trainvaltest.zip"),
                            (masks_root, "gtFine_trainvaltest.zip")):
        if not os.path.isdir(folder):
            raise ValueError(f"{name}: no {os.path.basename(folder)}/ folder; unpack "
                             f"{archive} (from cityscapes-dataset.com) into {root}")
    found = sorted(e.name for e in os.scandir(images_root) if e.is_dir())
    splits = split_order(found)
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

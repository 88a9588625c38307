"""COCO JSON boxes as a detection source: ``"coco:PATH"``, laid out as COCO or a labeling tool.

``PATH`` is one of::

    annotations/instances_<split>.json     COCO's own layout (and CVAT's with subsets): one
      images in <split>/, images/<split>/   split per file
      or images/
    <split>/<any>.json + its images        Roboflow's export (train/_annotations.coco.json,
                                           valid/, test/): one split per folder
    result.json + images/                  Label Studio's export; CVAT's is
    annotations/<one>.json + images/       annotations/instances_default.json + images/
    FILE.json                              one file (coco:FILE.json), images beside it or in
                                           images/ beside it

A file named ``instances_<split>.json`` is that split. A single file named
otherwise (``result.json``, CVAT's ``instances_default.json``) holds no
split: a fixed ``HELD_OUT_FRACTION`` of its images (split seed
``SPLIT_SEED``) is "val", the rest "train", and "all" is every image; a line
says so. The evaluation split is the first of val, valid, validation, test a
source has. An image's ``file_name`` is looked up in the image folders as
written (Label Studio writes ``images/<name>``), then by its base name.

Categories map to labels in id order (or by name onto the ``class_names``
given); every split's categories must be the same. Annotations are read and
checked when the source is opened (each further split when first read).
Bad data is a ValueError naming the file and what is wrong: not COCO JSON, an
image file that does not exist, an annotation for an unknown image or
category, a box outside its image. Boxes up to ``COCO_EDGE_TOLERANCE`` pixels
past the edge are clipped, boxes of zero width or height left out (the
split's ``notes`` count them); a crowd region (``iscrowd``) is no training
box but kept in ``crowd_boxes`` for evaluation; an image without
annotations is an example without boxes. Hidden files, and files that are
neither JSON nor images where those are listed, are skipped with a line
naming them.
"""

import json
import os

import numpy as np

from keras_coordatt.data.core.folders import FolderScan
from keras_coordatt.data.core.images import IMAGE_EXTENSIONS
from keras_coordatt.data.core.splits import default_eval_split
from keras_coordatt.data.core.splits import split_order
from keras_coordatt.data.core.splits import stratified_split
from keras_coordatt.data.detection.source import DetectionSource
from keras_coordatt.data.detection.source import list_reader

# COCO boxes may pass the image's edge by this many pixels (float rounding); they are clipped.
COCO_EDGE_TOLERANCE = 1.0
# The share of a file without splits held out for evaluation, and that split's own seed.
HELD_OUT_FRACTION = 0.2
SPLIT_SEED = 0
LAYOUTS = ("annotations/instances_<split>.json with the images in <split>/ or images/; "
           "<split>/ folders each holding one .json beside its images (Roboflow); or one "
           ".json (result.json, Label Studio) with the images in images/")


def open_coco(path, class_names=None):
    """The `DetectionSource` of a COCO file or folder (see the module docstring)."""
    name = f"coco:{path}"
    files, layout = _annotation_files(path, name)
    # The categories (and with them the class names) come from the smallest file;
    # every split's must agree when it is read.
    first = min(files, key=lambda s: os.path.getsize(files[s][0]))
    cache = {first: _read_coco(*files[first], class_names=class_names)}
    categories = cache[first]["categories"]
    if class_names is None:
        class_names = [c_name for _, c_name in categories]
    by_name = {c_name: c_id for c_id, c_name in categories}
    category_ids = [by_name.get(c_name) for c_name in class_names]
    if None in files:
        examples, layout = _held_out(name, files[None][0], cache[None]["examples"], layout)

        def split_notes(split):
            return cache[None]["notes"]
    else:
        def split_examples(split):
            if split not in cache:
                cache[split] = _read_coco(*files[split], class_names=class_names)
                if cache[split]["categories"] != categories:
                    raise ValueError(f"{files[split][0]}: its categories differ from "
                                     f"{files[first][0]}'s; the splits must share them")
            return cache[split]["examples"]

        examples = {split: (lambda split=split: split_examples(split)) for split in files}

        def split_notes(split):
            return cache[split]["notes"]
    return DetectionSource(
        name=name, class_names=list(class_names), splits=tuple(examples),
        read_split=list_reader(name, examples, split_notes),
        default_eval_split=default_eval_split(examples),
        notes=(f"{name}: {layout}; categories mapped in id order to labels "
               f"0..{len(class_names) - 1}"),
        category_ids=category_ids,
    )


def split_of(file):
    """The split a COCO file's name gives (``instances_val2017.json``: "val2017"), or None.

    CVAT names the file of a task without subsets ``instances_default.json``:
    that is no split either.
    """
    stem = os.path.splitext(os.path.basename(file))[0]
    if not stem.startswith("instances_") or stem == "instances_default":
        return None
    return stem[len("instances_"):]


def _annotation_files(path, name):
    """``({split: (json file, [image folders])}, layout line)`` of a COCO file or folder.

    The split is None for a single file that names none (it is split here).
    """
    if path.lower().endswith(".json"):
        if not os.path.isfile(path):
            raise ValueError(f"{name}: no such file")
        folder = os.path.dirname(path) or os.curdir
        return ({split_of(path): (path, [folder, os.path.join(folder, "images")])},
                "one COCO file, images beside it")
    if not os.path.isdir(path):
        raise ValueError(f"{name}: no such folder")
    scan = FolderScan(name, path)
    annotations = os.path.join(path, "annotations")
    if os.path.isdir(annotations):
        found = scan.files(annotations, (".json",))
        layout = "COCO folder, annotations/ and images"
    else:
        found = _json_files(scan, path)
        layout = "COCO file, images in images/ or beside it"
    if found:
        scan.note()
        images = os.path.join(path, "images")
        if len(found) == 1 and split_of(found[0]) is None:
            return {None: (found[0], [images, path])}, layout
        unnamed = [os.path.basename(file) for file in found if split_of(file) is None]
        if unnamed:
            raise ValueError(f"{name}: {os.path.dirname(found[0])} holds {len(found)} .json "
                             f"files, and {unnamed[0]} names no split: name them "
                             "instances_<split>.json, or keep one")
        files = {split_of(file): (file, [os.path.join(path, split_of(file)),
                                         os.path.join(images, split_of(file)), images])
                 for file in found}
        return files, f"{layout}, splits {', '.join(files)}"
    files = {}
    for folder in scan.subfolders(path):
        found = _json_files(scan, folder)
        if len(found) > 1:
            raise ValueError(f"{name}: the split folder {folder} holds {len(found)} .json files "
                             f"({', '.join(os.path.basename(f) for f in found)}); keep one")
        if found:
            files[os.path.basename(folder)] = (found[0], [folder])
    if not files:
        raise ValueError(f"{name}: no COCO annotations: give {LAYOUTS}")
    scan.note()
    files = {split: files[split] for split in split_order(list(files))}
    return files, f"a folder per split, each with its .json and images: {', '.join(files)}"


def _json_files(scan, folder):
    """The .json files in ``folder``; its images are expected there, anything else skipped."""
    return [file for file in scan.files(folder, (".json",) + IMAGE_EXTENSIONS)
            if file.lower().endswith(".json")]


def _held_out(name, file, examples, layout):
    """``{"train", "val", "all"}`` examples of a file without splits, and the layout line."""
    train, val = stratified_split(np.zeros(len(examples)), HELD_OUT_FRACTION, SPLIT_SEED)
    line = (f"{os.path.basename(file)} names no split: a held-out {HELD_OUT_FRACTION:.0%} of "
            f"its {len(examples)} images ({len(val)}, split seed {SPLIT_SEED}) is 'val', the "
            f"other {len(train)} 'train', and 'all' is every image")
    print(f"{name}: {line}", flush=True)
    parts = {"train": [examples[i] for i in train], "val": [examples[i] for i in val],
             "all": examples}
    return parts, f"{layout}; {line}"


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
    for category in data["categories"]:
        _need(category, ("id", "name"), path, "a category")
    # Roboflow lists the dataset itself as a category (id 0) that is the supercategory of
    # every other one and labels nothing: a grouping, not a class.
    used = {annotation.get("category_id") for annotation in data["annotations"]}
    groups = {category.get("supercategory") for category in data["categories"]
              if category.get("supercategory") != category["name"]}
    categories = sorted((int(category["id"]), str(category["name"]))
                        for category in data["categories"]
                        if category["name"] not in groups or category["id"] in used)
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
    folders = [folder for folder in image_folders if os.path.isdir(folder)]
    if not folders:
        raise ValueError(f"{path}: no image folder: tried {', '.join(image_folders)}")
    for image in data["images"]:
        _need(image, ("id", "file_name", "width", "height"), path, "an image")
        if image["id"] in images:
            raise ValueError(f"{path}: image id {image['id']} appears twice")
        file = _image_file(str(image["file_name"]), folders)
        if file is None:
            raise ValueError(f"{path}: image {image['id']}'s file {image['file_name']} does not "
                             f"exist in {' or '.join(folders)}")
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


def _image_file(file_name, folders):
    """The path of an image's ``file_name`` in the first folder holding it, or None."""
    file_name = file_name.replace("\\", "/")  # written on Windows
    for folder in folders:
        for candidate in (os.path.join(folder, file_name),
                          os.path.join(folder, os.path.basename(file_name))):
            if os.path.isfile(candidate):
                return candidate
    return None


def _need(item, keys, path, what):
    missing = [key for key in keys if not isinstance(item, dict) or key not in item]
    if missing:
        raise ValueError(f"{path}: {what} has no {', '.join(repr(k) for k in missing)}: "
                         f"{item!r:.200}")



"""Pascal VOC XML boxes as a detection source: ``"voc:PATH"``, a devkit or a plain folder.

``PATH`` is a VOC devkit (``Annotations/*.xml``, ``JPEGImages/``,
``ImageSets/Main/<split>.txt``: the splits; without ``ImageSets/Main`` one
split "all"), or a folder of images with one Pascal VOC XML file each (what
labelme, CVAT and LabelImg export): its subfolders train/ val/ valid/
validation/ test/ are the splits, or without them the folder is the one split
"all". In a plain folder an image without an XML file is no example (write
one without objects for a background-only image); hidden and other files
are skipped, and a line names them. Class names are the object names found,
sorted, unless given.

One XML file per image: ``<filename>``, ``<size>`` (width, height) and one
``<object>`` per box with ``<name>``, ``<bndbox>`` (xmin, ymin, xmax, ymax in
pixels) and optionally ``<difficult>``. Boxes are read as pixel edges,
``0 <= xmin < xmax <= width`` (files written 1-based are off by at most one
pixel). Every problem is a ValueError naming the file, the object and what
is wrong: a missing tag, a number that is not one, a box outside the image
or with no area, a class name outside ``class_names``, an image file that
does not exist, a split list naming an image without annotation.
"""

import os
import xml.etree.ElementTree as ElementTree

import numpy as np

from keras_coordatt.data.core.folders import FolderScan
from keras_coordatt.data.core.images import IMAGE_EXTENSIONS
from keras_coordatt.data.core.splits import SPLIT_FOLDERS
from keras_coordatt.data.core.splits import default_eval_split
from keras_coordatt.data.core.splits import read_split_lists
from keras_coordatt.data.detection.source import DetectionSource
from keras_coordatt.data.detection.source import list_reader


def open_voc(root, class_names=None):
    """The `DetectionSource` of a VOC devkit or plain folder (see the module docstring)."""
    name = f"voc:{root}"
    if not os.path.isdir(root):
        raise ValueError(f"{name}: no such folder")
    scan = FolderScan(name, root)
    if os.path.isdir(os.path.join(root, "Annotations")):
        parts, layout = _devkit(root, name, class_names, scan)
    else:
        entries = scan.entries(root)
        folders = [s for s in SPLIT_FOLDERS if any(e.name == s and e.is_dir() for e in entries)]
        loose = [e.name for e in entries if e.is_file() and e.name.lower().endswith(".xml")]
        if folders:
            if loose:
                raise ValueError(f"{name}: has split folders {folders} and .xml files beside "
                                 f"them ({loose[0]}, ...): put every annotation in a split folder")
            parts = {s: read_voc_folder(os.path.join(root, s), class_names, scan) for s in folders}
            layout = f"folders of images and Pascal VOC XML files, splits {', '.join(folders)}"
        else:
            if not loose:
                raise ValueError(f"{name}: neither a VOC devkit (Annotations/, JPEGImages/, "
                                 f"ImageSets/Main/) nor a folder of .xml annotation files (with "
                                 f"split folders {', '.join(SPLIT_FOLDERS)}, or without)")
            parts = {"all": read_voc_folder(root, class_names, scan)}
            layout = "a folder of images and Pascal VOC XML files, one split 'all'"
    scan.note()
    if class_names is None:
        class_names = sorted({n for part in parts.values() for a in part for n in a["names"]})
        if not class_names:
            raise ValueError(f"{name}: no objects in any annotation, so no class names; "
                             "give class_names")
    index = {n: i for i, n in enumerate(class_names)}
    examples = {split: [_example(a, index) for a in part] for split, part in parts.items()}
    return DetectionSource(
        name=name, class_names=list(class_names), splits=tuple(examples),
        read_split=list_reader(name, examples), default_eval_split=default_eval_split(examples),
        notes=f"{name}: {layout}; {sum(map(len, examples.values()))} annotated images",
    )


def read_voc_annotation(path, class_names=None, image_folder=None):
    """One annotation file as a dict.

    Args:
        path: the ``.xml`` file.
        class_names: if given, every object's name must be one of them.
        image_folder: where the image is (a VOC devkit's ``JPEGImages/``);
            None: beside the XML file.

    Returns:
        ``{"file", "image", "width", "height", "boxes" (N, 4) float32 xyxy
        pixels, "names" [N], "difficult" (N,) bool}``; ``image`` is the
        image's path: ``<filename>`` in ``image_folder``, or failing that a
        file of the XML's stem with an image extension there.
    """
    path = os.fspath(path)
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as error:
        raise ValueError(f"{path}: not a readable Pascal VOC XML file ({error})") from error
    width = _number(root, "size/width", path, "the image")
    height = _number(root, "size/height", path, "the image")
    boxes, names, difficult = [], [], []
    for index, item in enumerate(root.findall("object")):
        where = f"object {index}"
        name = (item.findtext("name") or "").strip()
        if not name:
            raise ValueError(f"{path}: {where} has no <name>")
        if class_names is not None and name not in class_names:
            raise ValueError(f"{path}: {where} is a {name!r}, not one of the classes "
                             f"{list(class_names)}")
        box = [_number(item, f"bndbox/{tag}", path, where)
               for tag in ("xmin", "ymin", "xmax", "ymax")]
        xmin, ymin, xmax, ymax = box
        if not (0 <= xmin < xmax <= width and 0 <= ymin < ymax <= height):
            raise ValueError(f"{path}: {where} ({name}) has the box xmin={xmin:g} ymin={ymin:g} "
                             f"xmax={xmax:g} ymax={ymax:g}, outside the {width:g}x{height:g} "
                             "image or without area")
        boxes.append(box)
        names.append(name)
        difficult.append((item.findtext("difficult") or "0").strip() == "1")
    return {
        "file": path, "image": _image_path(path, root.findtext("filename"), image_folder),
        "width": int(width), "height": int(height),
        "boxes": np.asarray(boxes, "float32").reshape(-1, 4), "names": names,
        "difficult": np.asarray(difficult, bool),
    }


def read_voc_folder(folder, class_names=None, scan=None):
    """Every ``*.xml`` annotation in ``folder`` (sorted), checked; at least one.

    Files that are neither annotations nor images are skipped: with ``scan``
    (a `FolderScan`) noted there, else named in a line of their own.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ValueError(f"voc:{folder}: no such folder")
    own_scan = scan is None
    scan = scan or FolderScan(f"voc:{folder}", folder)
    files = [path for path in scan.files(folder, (".xml",) + IMAGE_EXTENSIONS)
             if path.lower().endswith(".xml")]
    if own_scan:
        scan.note()
    if not files:
        raise ValueError(f"voc:{folder}: no .xml annotation files in the folder")
    return [read_voc_annotation(path, class_names) for path in files]


def _devkit(root, name, class_names, scan):
    """``{split: [annotation]}`` of a VOC devkit and a line describing it."""
    annotations_folder = os.path.join(root, "Annotations")
    image_folder = os.path.join(root, "JPEGImages")
    if not os.path.isdir(image_folder):
        raise ValueError(f"{name}: has Annotations/ but no JPEGImages/ folder")
    lists_folder = os.path.join(root, "ImageSets", "Main")
    if os.path.isdir(lists_folder):
        ids = read_split_lists(name, lists_folder, scan)
        layout = f"VOC devkit, splits from ImageSets/Main ({', '.join(ids)})"
    else:
        files = scan.files(annotations_folder, (".xml",))
        if not files:
            raise ValueError(f"{name}: {annotations_folder} has no .xml annotation files")
        ids = {"all": [os.path.splitext(os.path.basename(f))[0] for f in files]}
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


def _example(annotation, index):
    return {
        "image": annotation["image"], "width": annotation["width"],
        "height": annotation["height"], "boxes": annotation["boxes"],
        "labels": np.array([index[n] for n in annotation["names"]], np.int32),
        "difficult": annotation["difficult"], "crowd_boxes": np.zeros((0, 4), np.float32),
        "crowd_labels": np.zeros((0,), np.int32),
        "id": os.path.splitext(os.path.basename(annotation["file"]))[0],
        "file": annotation["file"],
    }


def _number(element, tag, path, where):
    text = element.findtext(tag)
    if text is None:
        raise ValueError(f"{path}: {where} has no <{tag.replace('/', '><')}>")
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}: {where}'s <{tag.split('/')[-1]}> is {text.strip()!r}, "
                         "not a number") from None


def _image_path(path, filename, image_folder=None):
    stem = os.path.splitext(os.path.basename(path))[0]
    folder = os.path.dirname(path) if image_folder is None else os.fspath(image_folder)
    candidates = [os.path.join(folder, os.path.basename(filename.strip()))] if filename else []
    candidates += [os.path.join(folder, stem + extension) for extension in IMAGE_EXTENSIONS]
    for candidate in candidates:
        if os.path.isfile(candidate) and candidate.lower().endswith(IMAGE_EXTENSIONS):
            return candidate
    where = "" if image_folder is None else f" in {folder}"
    raise ValueError(f"{path}: no image for it{where}: tried "
                     f"{', '.join(os.path.basename(c) for c in candidates)}")

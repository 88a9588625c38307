"""Pascal VOC XML box annotations (what labelme, CVAT and LabelImg export), checked.

One XML file per image: ``<filename>``, ``<size>`` (width, height) and one
``<object>`` per box with ``<name>``, ``<bndbox>`` (xmin, ymin, xmax, ymax in
pixels) and optionally ``<difficult>``. Boxes are read as pixel edges,
``0 <= xmin < xmax <= width`` (files written 1-based are off by at most one
pixel). Every problem is a ValueError naming the file, the object and what
is wrong: a missing tag, a number that is not one, a box outside the image
or with no area, a class name outside ``class_names``, an image file that
does not exist.
"""

import os
import xml.etree.ElementTree as ElementTree

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


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


def read_voc_folder(folder, class_names=None):
    """Every ``*.xml`` annotation in ``folder`` (sorted), checked; at least one."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ValueError(f"voc:{folder}: no such folder")
    files = sorted(name for name in os.listdir(folder) if name.lower().endswith(".xml"))
    if not files:
        raise ValueError(f"voc:{folder}: no .xml annotation files in the folder")
    return [read_voc_annotation(os.path.join(folder, name), class_names) for name in files]


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

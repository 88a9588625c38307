"""A Pascal VOC devkit's segmentation part as a source: ``"voc:PATH"``.

``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png`` (palette PNGs: the
palette INDEX is the class, 255 the outline to ignore), and
``ImageSets/Segmentation/<split>.txt`` the splits (without it, every mask in
one split "all"). Labeling tools write the same layout for other classes
(labelme's ``labelme2voc.py`` with a ``class_names.txt``), so the 21 VOC
class names are taken only for masks that carry VOC's own palette; the
classes of other folders come from their ``class_names.txt`` or their mask
values (`keras_coordatt.data.segmentation.factory`).
"""

import os

from keras_coordatt.data.core.images import IMAGE_EXTENSIONS
from keras_coordatt.data.core.splits import read_split_lists

# Pascal VOC's segmentation classes: palette index i is class i.
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)


def voc_palette(count=len(VOC_CLASSES)):
    """Pascal VOC's colour map, the flat ``[r, g, b, ...]`` list of its first ``count`` entries.

    The devkit's construction: bit ``3k`` of the index sets bit ``7 - k`` of
    red, bit ``3k + 1`` of green, bit ``3k + 2`` of blue (1 is (128, 0, 0),
    15, person, (192, 128, 128)).
    """
    palette = []
    for index in range(count):
        red = green = blue = 0
        for k in range(8):
            red |= ((index >> 3 * k) & 1) << (7 - k)
            green |= ((index >> 3 * k + 1) & 1) << (7 - k)
            blue |= ((index >> 3 * k + 2) & 1) << (7 - k)
        palette += [red, green, blue]
    return palette


def is_voc_palette(palette):
    """Whether a mask's palette (`read_mask_file`'s) holds VOC's colours for all 21 classes."""
    expected = voc_palette()
    return palette is not None and list(palette[:len(expected)]) == expected


def voc_parts(root, name, scan):
    """``{split: [example]}`` of a VOC devkit's segmentation part, and a line describing it."""
    images, masks = os.path.join(root, "JPEGImages"), os.path.join(root, "SegmentationClass")
    for folder in (images, masks):
        if not os.path.isdir(folder):
            raise ValueError(f"{name}: no {os.path.basename(folder)}/ folder (a VOC devkit "
                             "holds JPEGImages/, SegmentationClass/, ImageSets/Segmentation/)")
    lists = os.path.join(root, "ImageSets", "Segmentation")
    if os.path.isdir(lists):
        ids = read_split_lists(name, lists, scan)
        layout = f"VOC devkit, splits from ImageSets/Segmentation ({', '.join(ids)})"
    else:
        ids = {"all": [os.path.splitext(os.path.basename(path))[0]
                       for path in scan.files(masks, (".png",))]}
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


def _find_image(folder, stem):
    for extension in (".jpg",) + IMAGE_EXTENSIONS:
        path = os.path.join(folder, stem + extension)
        if os.path.isfile(path):
            return path
    return None

"""NEON aerial tree crowns from the ``deepforest`` wheel, read as files (``--dataset deepforest``).

The ``deepforest`` package (Weinstein et al.) ships four RGB orthophoto crops
with hand-drawn crown boxes in Pascal VOC XML (0.1 m pixels; crowns are
mostly 30-41 px wide). It is installed with ``pip install --no-deps
deepforest`` and never imported here (its requirements pull PyTorch): the
files are found through the import system and read with the checked VOC
reader. Splits by image and site, so no test crown was seen in training:

- ``train``: ``2019_YELL_2_528000_4978000_image_crop2`` (2299 x 2472 px, 574 crowns; Yellowstone);
- ``val``: ``2019_YELL_2_541000_4977000_image_crop`` (1249 x 1035 px, 279 crowns; Yellowstone);
- ``test``: ``OSBS_029`` (Florida) and ``SOAP_061`` (California), 400 x 400 px each, 98 crowns.

One class, ``Tree``: ``SOAP_061.xml`` labels its crowns ``Dead`` / ``Alive``,
both read as ``Tree``; ``OSBS_029.xml`` names a ``.tif`` that the wheel ships
beside a ``.png`` of the same image, which is read instead.
"""

import os

import numpy as np

from keras_coordatt.data.core.folders import installed_package_folder
from keras_coordatt.data.detection.voc import read_voc_annotation

CLASS_NAMES = ["Tree"]
SPLITS = {
    "train": ("2019_YELL_2_528000_4978000_image_crop2",),
    "val": ("2019_YELL_2_541000_4977000_image_crop",),
    "test": ("OSBS_029", "SOAP_061"),
}
INSTALL = "pip install --no-deps deepforest"


def data_folder():
    """The ``deepforest/data`` folder of the installed wheel; a clear error when it is missing."""
    return os.path.join(installed_package_folder("deepforest", "deepforest", INSTALL), "data")


def read_split(split, limit=None):
    """The split's examples: ``{"image" uint8 (H, W, 3), "boxes" (N, 4) pixel xyxy, "labels", "id"}``."""
    from PIL import Image

    if split not in SPLITS:
        raise ValueError(f"deepforest has no split {split!r}; its splits are {', '.join(SPLITS)}")
    folder = data_folder()
    examples = []
    for stem in SPLITS[split][:limit]:
        annotation = read_voc_annotation(os.path.join(folder, stem + ".xml"))
        with Image.open(annotation["image"]) as image:
            pixels = np.asarray(image.convert("RGB"))
        if pixels.shape[:2] != (annotation["height"], annotation["width"]):
            raise ValueError(f"{annotation['image']}: {pixels.shape[1]}x{pixels.shape[0]} pixels, "
                             f"but {stem}.xml says {annotation['width']}x{annotation['height']}")
        examples.append({"image": pixels, "boxes": annotation["boxes"],
                         "labels": np.zeros(len(annotation["boxes"]), np.int32),
                         "width": annotation["width"], "height": annotation["height"],
                         "id": stem, "file": annotation["image"]})
    return examples

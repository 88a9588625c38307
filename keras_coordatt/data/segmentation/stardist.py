"""The 2018 Data Science Bowl nuclei image in the ``stardist`` wheel, as nuclei vs background.

``stardist`` (Schmidt et al.) ships one 512 x 512 fluorescence image
(``stardist/data/images/img2d.tif``, greyscale) and its instance mask
(``mask2d.tif``, 0 background, 1..N one label per nucleus). Installed with
``pip install --no-deps stardist`` and never imported (its requirements pull
more than the files): the files are found through the import system and read
with ``tifffile``. Instances become two classes, background 0 and nucleus 1.
One quadrant is held out for testing (``test``); the other three are the
``train`` split, one example each (there is no separate validation image: the
trainer evaluates on ``test``, and the README says so).
"""

import os

import numpy as np

from keras_coordatt.data.core.folders import installed_package_folder

CLASS_NAMES = ["background", "nucleus"]
QUADRANTS = ("top_left", "top_right", "bottom_left", "bottom_right")
INSTALL = "pip install --no-deps stardist tifffile"


def data_files():
    """``(image, mask)`` paths in the installed wheel; a clear error when it is missing."""
    package = installed_package_folder("stardist", "stardist", INSTALL)
    folder = os.path.join(package, "data", "images")
    return os.path.join(folder, "img2d.tif"), os.path.join(folder, "mask2d.tif")


def read_image_and_mask():
    """The image as uint8 RGB ``(512, 512, 3)`` (grey repeated; its 0-235 range kept) and the
    nuclei mask ``(512, 512)`` uint8, 1 where a nucleus is."""
    try:
        import tifffile
    except ImportError as error:
        raise ValueError(f"--dataset stardist needs tifffile to read its .tif files: {INSTALL}") from error
    image_path, mask_path = data_files()
    image, instances = tifffile.imread(image_path), tifffile.imread(mask_path)
    if image.shape != instances.shape or image.ndim != 2:
        raise ValueError(f"{image_path} {image.shape} and {mask_path} {instances.shape}: expected one "
                         "2-D image and a mask of the same size")
    if image.max() > 255:
        raise ValueError(f"{image_path}: values up to {image.max()}, expected 8-bit data")
    grey = image.astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1), (instances > 0).astype(np.uint8)


def read_split(split, test_quadrant="bottom_right", limit=None):
    """``train`` (three quadrants) or ``test`` (the held-out one): ``{"image", "mask", "id"}`` dicts."""
    if test_quadrant not in QUADRANTS:
        raise ValueError(f"test_quadrant must be one of {QUADRANTS}, got {test_quadrant!r}")
    if split not in ("train", "test"):
        raise ValueError(f"stardist has no split {split!r}; its splits are 'train', 'test'")
    image, mask = read_image_and_mask()
    half_h, half_w = image.shape[0] // 2, image.shape[1] // 2
    examples = []
    for number, name in enumerate(QUADRANTS):
        if (name == test_quadrant) != (split == "test"):
            continue
        top, left = (number // 2) * half_h, (number % 2) * half_w
        window = (slice(top, top + half_h), slice(left, left + half_w))
        examples.append({"image": image[window], "mask": mask[window], "id": name,
                         "origin": (top, left)})
    return examples[:limit]

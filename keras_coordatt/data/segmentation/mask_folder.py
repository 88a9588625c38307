"""Folders of images and masks as a segmentation source: ``"masks:PATH"``.

``PATH/<split>/images/*.{png,jpg,...}`` and ``PATH/<split>/masks/*.png`` of
the same stems (or ``PATH/images`` and ``PATH/masks``: one split "all"); the
masks are palette or greyscale PNGs of class indices. What most labeling
tools' mask exports become after one move. Hidden entries and files of
another kind (``notes.txt`` among the images, a ``.jpg`` among the masks)
are skipped, and a line names them; an image without a mask, or a mask
without an image, is an error naming it.
"""

import os

from keras_coordatt.data.core.images import IMAGE_EXTENSIONS
from keras_coordatt.data.core.splits import split_order


def mask_folder_parts(root, name, scan):
    """``{split: [example]}`` of a masks: folder, and a line describing it."""
    if os.path.isdir(os.path.join(root, "images")):
        folders = {"all": root}
        layout = "images/ and masks/, one split 'all'"
    else:
        found = [os.path.basename(folder) for folder in scan.subfolders(root)
                 if os.path.isdir(os.path.join(folder, "images"))]
        found = split_order(found)
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
        for path in scan.files(images, IMAGE_EXTENSIONS):
            stem = os.path.splitext(os.path.basename(path))[0]
            if stem in by_stem:
                raise ValueError(f"{name}: two images named {stem!r} in {images}: "
                                 f"{os.path.basename(by_stem[stem])} and {os.path.basename(path)}")
            by_stem[stem] = path
        if not by_stem:
            raise ValueError(f"{name}: split {split!r} has no images in {images}")
        mask_stems = {os.path.splitext(os.path.basename(path))[0]
                      for path in scan.files(masks, (".png",))}
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

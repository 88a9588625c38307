"""Two real photos through an ImageNet classifier in torchvision's input convention.

scikit-image ships two ImageNet-like photos, a cat (``chelsea``) and a cup
of coffee (``coffee``); a network converted from torchvision's (or the
official Coordinate Attention) ImageNet weights should put a cat class and a
coffee class first. This is the offline check of such weights that a
preset's model card reports: it shows the weights arrived intact, not the
network's ImageNet accuracy.
"""

import numpy as np

from keras_coordatt.preprocessing import IMAGENET_MEAN
from keras_coordatt.preprocessing import IMAGENET_STD

CAT_CLASSES = tuple(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = (504, 967, 968)  # coffee mug, espresso, cup
PHOTOS = {"chelsea": CAT_CLASSES, "coffee": COFFEE_CLASSES}


def imagenet_crop(image, size=224):
    """torchvision's evaluation transform: shorter side to 256 (for 224), center crop, normalise."""
    from PIL import Image

    picture = Image.fromarray(image)
    scale = round(size * 256 / 224) / min(picture.size)
    picture = picture.resize(
        (round(picture.width * scale), round(picture.height * scale)), Image.BILINEAR)
    left, top = (picture.width - size) // 2, (picture.height - size) // 2
    picture = picture.crop((left, top, left + size, top + size))
    mean, std = np.array(IMAGENET_MEAN, "float32"), np.array(IMAGENET_STD, "float32")
    return (np.asarray(picture, "float32") / 255 - mean) / std


def photo_images(size=224):
    """The two photos, ``(2, size, size, 3)`` in torchvision's convention, and their names."""
    try:
        from skimage import data
    except ImportError as error:
        raise ImportError("the photo check needs scikit-image: pip install scikit-image") from error
    return np.stack([imagenet_crop(getattr(data, name)(), size) for name in PHOTOS]), list(PHOTOS)


def photo_check(model):
    """Top-1 and top-5 hits of ``model`` (1000 ImageNet logits or probabilities) on the photos.

    Returns:
        ``{"photos_top1": hits of 2, "photos_top5": hits of 2, "top5": {photo: [classes]}}``.
    """
    import keras

    images, names = photo_images(int(model.input.shape[1] or 224))
    scores = keras.ops.convert_to_numpy(model(images, training=False))
    if scores.shape[-1] != 1000:
        raise ValueError(f"photo_check: '{model.name}' has {scores.shape[-1]} outputs, not "
                         f"ImageNet's 1000 classes")
    top5 = np.argsort(-scores, axis=1)[:, :5]
    expected = [PHOTOS[name] for name in names]
    return {
        "photos_top1": int(sum(row[0] in classes for row, classes in zip(top5, expected))),
        "photos_top5": int(sum(any(c in classes for c in row) for row, classes in zip(top5, expected))),
        "top5": {name: row.tolist() for name, row in zip(names, top5)},
    }

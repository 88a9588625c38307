"""Image preprocessing shared by training, evaluation and export.

The usual ImageNet recipe (the random-resized "Inception" crop of Szegedy et
al., *Going Deeper with Convolutions*, CVPR 2015):

- train: a random crop covering ``crop_scale`` of the image area with an
  aspect ratio between 3/4 and 4/3, resized to ``image_size`` squared, then a
  random horizontal flip;
- eval: resize so the shorter side is ``image_size / 0.875`` (256 for 224),
  then take the central ``image_size`` square.

Both finish by mapping uint8 [0, 255] linearly onto ``pixel_range``:
(-1, 1) for MobileNet-style networks, (0, 255) for Keras' EfficientNet, which
rescales inside the model. Greyscale images are repeated into three channels
so ImageNet-pretrained weights apply.

Resizing is bilinear with antialiasing; the eval resize rounds back to uint8,
so an image cached at the resize size (``shrink_to``) and the original give
identical eval inputs.
"""

import tensorflow as tf

EVAL_CROP_FRACTION = 0.875
ASPECT_RATIO_RANGE = (3 / 4, 4 / 3)


def resize_size(image_size):
    """The shorter side eval resizes to before its center crop (256 for 224)."""
    return int(round(image_size / EVAL_CROP_FRACTION))


def preprocess_for_eval(image, image_size, pixel_range=(-1.0, 1.0)):
    """Evaluation (and inference) preprocessing: resize, center crop, scale.

    The shorter side is resized to ``round(image_size / 0.875)`` (bilinear,
    antialiased, rounded to uint8), the central ``image_size`` square is
    kept, greyscale becomes three channels, and [0, 255] maps linearly onto
    ``pixel_range``. Use it to prepare images for an exported model exactly as
    the evaluation saw them.

    Args:
        image: uint8 ``(H, W, C)`` or a batch ``(B, H, W, C)``, C = 1 or 3.
        image_size: the side of the square output.
        pixel_range: ``(low, high)`` that 0 and 255 map to.

    Returns:
        float32 ``(image_size, image_size, 3)`` (or ``(B, ...)``).

    Example:

    >>> import numpy as np
    >>> photo = np.full((300, 400, 3), 255, dtype="uint8")
    >>> x = preprocess_for_eval(photo, 224)
    >>> tuple(x.shape), float(x.numpy().min()), float(x.numpy().max())
    ((224, 224, 3), 1.0, 1.0)
    """
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        raise TypeError(
            f"preprocess_for_eval takes uint8 images in [0, 255], got {image.dtype.name}"
        )
    image = _resize_shorter(image, resize_size(image_size))
    top = (tf.shape(image)[-3] - image_size) // 2
    left = (tf.shape(image)[-2] - image_size) // 2
    image = image[..., top : top + image_size, left : left + image_size, :]
    return _to_pixel_range(_as_rgb(image), pixel_range)


def augment_for_train(image, seed, image_size, pixel_range=(-1.0, 1.0), crop_scale=(0.08, 1.0)):
    """Training augmentation: random-resized crop, horizontal flip, scale.

    Stateless: the same ``seed`` gives the same crop and flip, which is what
    makes ``deterministic=True`` runs repeat.

    Args:
        image: uint8 ``(H, W, C)``, C = 1 or 3.
        seed: int32 or int64 ``(2,)``, the stateless random seed.
        image_size: the side of the square output.
        pixel_range: ``(low, high)`` that 0 and 255 map to.
        crop_scale: the range of the crop's share of the image area.

    Returns:
        float32 ``(image_size, image_size, 3)``.
    """
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.zeros([1, 0, 4]),
        seed=crop_seed,
        min_object_covered=0.0,
        aspect_ratio_range=ASPECT_RATIO_RANGE,
        area_range=crop_scale,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    image = tf.ensure_shape(tf.slice(image, begin, size), (None, None, image.shape[-1]))
    image = tf.image.resize(image, (image_size, image_size), antialias=True)
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return _to_pixel_range(_as_rgb(image), pixel_range)


def shrink_to(image, size):
    """Resizes an image down so its shorter side is ``size``; smaller ones stay.

    What the pipeline caches: eval and augmentation never need more pixels
    than this, and ``preprocess_for_eval`` gives the same result on the
    shrunk image as on the original.
    """
    shape = tf.shape(image)
    return tf.cond(
        tf.minimum(shape[-3], shape[-2]) > size,
        lambda: _resize_shorter(image, size),
        lambda: image,
    )


def _resize_shorter(image, size):
    """Resizes so the shorter side is ``size``, keeping the aspect ratio; uint8 out.

    A resize to the size an image already has returns it unchanged, which is
    why a shrunk, cached image preprocesses like the original.
    """
    shape = tf.cast(tf.shape(image)[-3:-1], tf.float32)
    new_shape = tf.cast(tf.round(shape * (size / tf.reduce_min(shape))), tf.int32)
    new_shape = tf.maximum(new_shape, size)
    resized = tf.image.resize(image, new_shape, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _as_rgb(image):
    channels = image.shape[-1]
    if channels == 1:
        return tf.repeat(image, 3, axis=-1)
    if channels != 3:
        raise ValueError(f"images need 1 or 3 channels, got shape {image.shape}")
    return image


def _to_pixel_range(image, pixel_range):
    low, high = pixel_range
    image = tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 255.0)
    return image * ((high - low) / 255.0) + low

"""The preprocessing an exported model expects, as code and as a JSON-able spec.

One definition serves training's evaluation, the serving SavedModel's
signature and the ``preprocessing.json`` written beside TFLite files:

- resize so the shorter side is ``image_size / 0.875`` (256 for 224;
  bilinear, antialiased, rounded back to uint8), keep the central
  ``image_size`` square;
- greyscale becomes three channels (RGB order);
- map uint8 [0, 255] linearly onto ``pixel_range``: (-1, 1) for
  MobileNet-style networks (``mobilenet_v2.preprocess_input``), (0, 255) for
  Keras' EfficientNet, which rescales and normalises inside the model.
"""

import tensorflow as tf

EVAL_CROP_FRACTION = 0.875


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
    image = center_crop(resize_shorter(image, resize_size(image_size)), image_size)
    return to_pixel_range(as_rgb(image), pixel_range)


def center_crop(image, size):
    """The central ``size`` x ``size`` square of ``(H, W, C)`` or ``(B, H, W, C)`` images."""
    top = (tf.shape(image)[-3] - size) // 2
    left = (tf.shape(image)[-2] - size) // 2
    return image[..., top : top + size, left : left + size, :]


def resize_shorter(image, size):
    """Resizes so the shorter side is ``size``, keeping the aspect ratio; uint8 out.

    A resize to the size an image already has returns it unchanged, which is
    why a shrunk, cached image preprocesses like the original.
    """
    shape = tf.cast(tf.shape(image)[-3:-1], tf.float32)
    new_shape = tf.cast(tf.round(shape * (size / tf.reduce_min(shape))), tf.int32)
    new_shape = tf.maximum(new_shape, size)
    resized = tf.image.resize(image, new_shape, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def as_rgb(image):
    """Repeats a single (greyscale) channel three times; three channels pass."""
    channels = image.shape[-1]
    if channels == 1:
        return tf.repeat(image, 3, axis=-1)
    if channels != 3:
        raise ValueError(f"images need 1 or 3 channels, got shape {image.shape}")
    return image


def to_pixel_range(image, pixel_range):
    """Maps [0, 255] linearly onto ``pixel_range``, as float32."""
    low, high = pixel_range
    image = tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 255.0)
    return image * ((high - low) / 255.0) + low


def pixel_range_of(model):
    """(-1, 1), or (0, 255) for networks that rescale inside (EfficientNet).

    Read from the model: a ``Rescaling`` layer right after the input means
    the network takes raw [0, 255] pixels, as keras.applications'
    EfficientNet and this package's `EfficientNetB0` do.
    """
    import keras

    for layer in model.layers[:4]:
        if isinstance(layer, keras.layers.Rescaling):
            return (0.0, 255.0)
    return (-1.0, 1.0)


def preprocessing_spec(image_size, pixel_range):
    """The preprocessing as a JSON-able dict, for files written beside exports."""
    low, high = (float(v) for v in pixel_range)
    scale = (high - low) / 255.0
    return {
        "color": "RGB (greyscale repeated to 3 channels)",
        "layout": "NHWC",
        "resize": {
            "shorter_side": resize_size(image_size),
            "interpolation": "bilinear, antialiased, rounded to uint8",
            "then": f"center crop {image_size}x{image_size}",
        },
        "input_size": [image_size, image_size],
        "pixel_range": [low, high],
        "formula": f"x = pixel * {scale:.10g} + {low:g}",
    }

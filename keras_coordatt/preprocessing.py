"""The image preprocessing a network expects: one definition for training, evaluation and export.

A model of this package carries its `Preprocessing` (``model.preprocessing``),
so the data pipeline, the serving SavedModel's signature and the
``preprocessing.json`` written beside TFLite files all apply the same steps:

- eval (and inference): resize so the shorter side is ``image_size /
  crop_fraction`` (256 for 224 with the usual 0.875; bilinear, antialiased,
  rounded back to uint8), keep the central ``image_size`` square. With
  ``crop_fraction=1`` a square image is kept whole: right for aligned
  images whose edges matter, such as ELPV's solar cells;
- train: the random-resized "Inception" crop (Szegedy et al., *Going Deeper
  with Convolutions*, CVPR 2015) covering ``crop_scale`` of the area with an
  aspect ratio in [3/4, 4/3], resized to ``image_size`` squared, and a random
  horizontal flip;
- both: greyscale becomes three channels (RGB order), and uint8 [0, 255] maps
  linearly onto the network's ``pixel_range``: (-1, 1) for MobileNet-style
  networks (``mobilenet_v2.preprocess_input``), (0, 255) for EfficientNet,
  which rescales and normalises inside the model. A range may be per channel
  (three lows, three highs): weights converted from PyTorch expect RGB / 255
  minus a mean, divided by a std, per channel, which is the linear map
  `Preprocessing.from_mean_std` builds.

Because the eval resize rounds to uint8, an image cached at the resize size
(`shrink_to`) and the original give identical eval inputs.

The image functions need TensorFlow (they run inside ``tf.data`` and in
exported graphs) and import it when called; `Preprocessing` itself is plain
data, so models carry it on any backend.
"""

import dataclasses

import numpy as np

# The share of the resized image that eval keeps: 224 of 256.
CROP_FRACTION = 0.875
ASPECT_RATIO_RANGE = (3 / 4, 4 / 3)
MOBILENET_PIXEL_RANGE = (-1.0, 1.0)
RAW_PIXEL_RANGE = (0.0, 255.0)
# torchvision's (and the official CA code's) ImageNet input: RGB / 255, then this mean and std.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What a network expects of its input images.

    Args:
        pixel_range: ``(low, high)`` that uint8 0 and 255 map to; each of
            them a number, or three numbers (R, G, B) for a per-channel map.
        crop_fraction: the share of the resized image's shorter side the
            eval center crop keeps (0.875: 224 of 256; 1: all of it).

    Example:

    >>> Preprocessing().resize_size(224), Preprocessing(pixel_range=(0, 255)).spec(96)["formula"]
    (256, 'x = pixel * 1 + 0')
    >>> Preprocessing(crop_fraction=1.0).resize_size(224)
    224
    >>> torchvision = Preprocessing.from_mean_std((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    >>> [round(value, 3) for value in torchvision.mean_std()[0]]
    [0.485, 0.456, 0.406]
    """

    pixel_range: tuple = MOBILENET_PIXEL_RANGE
    crop_fraction: float = CROP_FRACTION

    def __post_init__(self):
        try:
            low, high = self.pixel_range
            low, high = _bound(low), _bound(high)
        except (TypeError, ValueError):
            raise ValueError(f"Preprocessing: pixel_range must be (low, high), each a number or "
                             f"three numbers (R, G, B), got {self.pixel_range!r}") from None
        if isinstance(low, tuple) != isinstance(high, tuple) or not np.all(
                np.less(low, high)):
            raise ValueError(f"Preprocessing: pixel_range must be (low, high) with low < high "
                             f"(per channel: both three numbers), got {self.pixel_range!r}")
        object.__setattr__(self, "pixel_range", (low, high))
        if not 0 < float(self.crop_fraction) <= 1:
            raise ValueError(f"Preprocessing: crop_fraction must be in (0, 1], "
                             f"got {self.crop_fraction!r}")
        object.__setattr__(self, "crop_fraction", float(self.crop_fraction))

    @classmethod
    def from_mean_std(cls, mean, std, crop_fraction=CROP_FRACTION):
        """PyTorch's (torchvision's) convention: ``x = (pixel / 255 - mean) / std`` per channel.

        Args:
            mean: three numbers (R, G, B), in [0, 1] units.
            std: three positive numbers (R, G, B).
            crop_fraction: as the class's.
        """
        mean, std = (np.asarray(values, dtype="float64") for values in (mean, std))
        if mean.shape != (3,) or std.shape != (3,) or not np.all(std > 0):
            raise ValueError(f"Preprocessing.from_mean_std: mean and std are three numbers "
                             f"(R, G, B), std positive; got mean={mean.tolist()}, "
                             f"std={std.tolist()}")
        return cls((tuple(-mean / std), tuple((1 - mean) / std)), crop_fraction)

    @property
    def per_channel(self):
        """Whether the map differs between channels (given as three lows and highs)."""
        return isinstance(self.pixel_range[0], tuple)

    def scale_offset(self):
        """``(scale, offset)`` with ``x = pixel * scale + offset``: float32 scalars, or
        ``(3,)`` arrays for a per-channel map (they broadcast over NHWC images)."""
        low, high = (np.asarray(value, dtype="float64") for value in self.pixel_range)
        return ((high - low) / 255.0).astype("float32"), low.astype("float32")

    def mean_std(self):
        """The map as PyTorch's ``(mean, std)`` per channel (three each, [0, 1] units)."""
        low, high = (np.broadcast_to(np.asarray(value, dtype="float64"), (3,))
                     for value in self.pixel_range)
        std = 1.0 / (high - low)
        # rounded past float64's noise, so that from_mean_std's numbers come back as given
        return (tuple(round(float(v), 10) for v in -low * std),
                tuple(round(float(v), 10) for v in std))

    def describe_pixels(self):
        """One phrase for logs and model cards: ``[0, 255] -> [-1, 1]``, or the mean and std."""
        if self.per_channel:
            mean, std = self.mean_std()
            return (f"RGB / 255 - mean ({', '.join(f'{v:.3f}' for v in mean)}) / std "
                    f"({', '.join(f'{v:.3f}' for v in std)})")
        low, high = self.pixel_range
        return f"[0, 255] -> [{low:g}, {high:g}]"

    def to_unit(self, x):
        """Network inputs back to [0, 1] RGB (NumPy; what a TF Hub image module takes)."""
        scale, offset = self.scale_offset()
        return (np.asarray(x, dtype="float32") - offset) / (scale * np.float32(255.0))

    def resize_size(self, image_size):
        """The shorter side eval resizes to before its center crop (256 for 224 at 0.875)."""
        return resize_size(image_size, self.crop_fraction)

    def for_eval(self, image, image_size):
        """Evaluation preprocessing; see `preprocess_for_eval`."""
        return preprocess_for_eval(image, image_size, self.pixel_range, self.crop_fraction)

    def for_train(self, image, seed, image_size, crop_scale=(0.08, 1.0)):
        """Training augmentation; see `augment_for_train`."""
        return augment_for_train(image, seed, image_size, self.pixel_range, crop_scale)

    def spec(self, image_size):
        """The eval preprocessing as a JSON-able dict, for files written beside exports."""
        low, high = self.pixel_range
        if self.per_channel:
            mean, std = self.mean_std()
            formula = (f"x = (pixel / 255 - mean) / std per channel (R, G, B), mean "
                       f"{[round(v, 6) for v in mean]}, std {[round(v, 6) for v in std]}")
            low, high = list(low), list(high)
        else:
            formula = f"x = pixel * {(high - low) / 255.0:.10g} + {low:g}"
        return {
            "color": "RGB (greyscale repeated to 3 channels)",
            "layout": "NHWC",
            "resize": {
                "shorter_side": self.resize_size(image_size),
                "interpolation": "bilinear, antialiased, rounded to uint8",
                "then": f"center crop {image_size}x{image_size}",
                "crop_fraction": self.crop_fraction,
            },
            "input_size": [image_size, image_size],
            "pixel_range": [low, high],
            "formula": formula,
        }


def imagenet_normalization(crop_fraction=CROP_FRACTION):
    """PyTorch's ImageNet convention (`IMAGENET_MEAN`, `IMAGENET_STD`) as a `Preprocessing`:
    what weights converted from torchvision or the official CA checkpoint expect."""
    return Preprocessing.from_mean_std(IMAGENET_MEAN, IMAGENET_STD, crop_fraction)


def preprocessing_of(model):
    """The `Preprocessing` that ``model`` expects.

    A model of this package says so itself (``model.preprocessing``). For
    other Keras models the keras.applications convention decides: a
    ``Rescaling`` layer among the first layers means the network takes raw
    [0, 255] pixels (EfficientNet); otherwise pixels map to [-1, 1].
    """
    own = getattr(model, "preprocessing", None)
    if isinstance(own, Preprocessing):
        return own
    import keras

    if any(isinstance(layer, keras.layers.Rescaling) for layer in model.layers[:4]):
        return Preprocessing(RAW_PIXEL_RANGE)
    return Preprocessing(MOBILENET_PIXEL_RANGE)


def resize_size(image_size, crop_fraction=CROP_FRACTION):
    """The shorter side eval resizes to before its center crop (256 for 224 at 0.875)."""
    return int(round(image_size / crop_fraction))


def preprocess_for_eval(image, image_size, pixel_range=MOBILENET_PIXEL_RANGE,
                        crop_fraction=CROP_FRACTION):
    """Evaluation (and inference) preprocessing: resize, center crop, scale.

    The shorter side is resized to ``round(image_size / crop_fraction)`` (bilinear,
    antialiased, rounded to uint8), the central ``image_size`` square is
    kept, greyscale becomes three channels, and [0, 255] maps linearly onto
    ``pixel_range``. Use it to prepare images for an exported model exactly as
    the evaluation saw them.

    Args:
        image: uint8 ``(H, W, C)`` or a batch ``(B, H, W, C)``, C = 1 or 3.
        image_size: the side of the square output.
        pixel_range: ``(low, high)`` that 0 and 255 map to.
        crop_fraction: the share of the resized shorter side the crop keeps.

    Returns:
        float32 ``(image_size, image_size, 3)`` (or ``(B, ...)``).

    Example:

    >>> import numpy as np
    >>> photo = np.full((300, 400, 3), 255, dtype="uint8")
    >>> x = preprocess_for_eval(photo, 224)
    >>> tuple(x.shape), float(x.numpy().min()), float(x.numpy().max())
    ((224, 224, 3), 1.0, 1.0)
    """
    import tensorflow as tf

    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        raise TypeError(
            f"preprocess_for_eval takes uint8 images in [0, 255], got {image.dtype.name}"
        )
    image = center_crop(resize_shorter(image, resize_size(image_size, crop_fraction)), image_size)
    return to_pixel_range(as_rgb(image), pixel_range)


def augment_for_train(image, seed, image_size, pixel_range=MOBILENET_PIXEL_RANGE,
                      crop_scale=(0.08, 1.0)):
    """Training augmentation: random-resized crop, horizontal flip, scale.

    Stateless: the same ``seed`` gives the same crop and flip, which is what
    makes deterministic runs repeat.

    Args:
        image: uint8 ``(H, W, C)``, C = 1 or 3.
        seed: int32 or int64 ``(2,)``, the stateless random seed.
        image_size: the side of the square output.
        pixel_range: ``(low, high)`` that 0 and 255 map to.
        crop_scale: the range of the crop's share of the image area.

    Returns:
        float32 ``(image_size, image_size, 3)``.
    """
    import tensorflow as tf

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
    return to_pixel_range(as_rgb(image), pixel_range)


def center_crop(image, size):
    """The central ``size`` x ``size`` square of ``(H, W, C)`` or ``(B, H, W, C)`` images."""
    import tensorflow as tf

    top = (tf.shape(image)[-3] - size) // 2
    left = (tf.shape(image)[-2] - size) // 2
    return image[..., top : top + size, left : left + size, :]


def resize_shorter(image, size):
    """Resizes so the shorter side is ``size``, keeping the aspect ratio; uint8 out.

    A resize to the size an image already has returns it unchanged, which is
    why a shrunk, cached image preprocesses like the original.
    """
    import tensorflow as tf

    shape = tf.cast(tf.shape(image)[-3:-1], tf.float32)
    new_shape = tf.cast(tf.round(shape * (size / tf.reduce_min(shape))), tf.int32)
    new_shape = tf.maximum(new_shape, size)
    resized = tf.image.resize(image, new_shape, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def shrink_to(image, size):
    """Resizes an image down so its shorter side is ``size``; smaller ones stay.

    What the data pipeline caches: eval and augmentation never need more
    pixels than this, and `preprocess_for_eval` gives the same result on the
    shrunk image as on the original.
    """
    import tensorflow as tf

    shape = tf.shape(image)
    return tf.cond(
        tf.minimum(shape[-3], shape[-2]) > size,
        lambda: resize_shorter(image, size),
        lambda: image,
    )


def as_rgb(image):
    """Repeats a single (greyscale) channel three times; three channels pass."""
    import tensorflow as tf

    channels = image.shape[-1]
    if channels == 1:
        return tf.repeat(image, 3, axis=-1)
    if channels != 3:
        raise ValueError(f"images need 1 or 3 channels, got shape {image.shape}")
    return image


def stretch_to_input(images, image_size, pixel_range):
    """Images (``(..., H, W, 3)``, uint8 or float 0..255) as a detection or segmentation
    network's input: stretched to ``image_size`` squared (bilinear, antialiased; no crop,
    so boxes and masks map back to the whole image) and mapped onto ``pixel_range``.

    The one definition training, evaluation and the exports share. On the
    TensorFlow backend it is TensorFlow ops (it runs inside ``tf.data`` and
    exported graphs), and for TensorFlow tensors on any backend; otherwise
    `keras.ops` (on JAX, ``jax.image`` resizing).
    """
    if _tensorflow_ops(images):
        import tensorflow as tf

        resized = tf.image.resize(tf.cast(images, tf.float32), (image_size, image_size),
                                  antialias=True)
    else:
        from keras import ops

        resized = ops.image.resize(ops.cast(images, "float32"), (image_size, image_size),
                                   interpolation="bilinear", antialias=True)
    return to_pixel_range(resized, pixel_range)


def to_pixel_range(image, pixel_range):
    """Maps [0, 255] linearly onto ``pixel_range`` (per channel where it has three lows and
    highs), as float32 (TensorFlow ops on its backend or for TensorFlow tensors, `keras.ops`
    otherwise)."""
    scale, offset = Preprocessing(pixel_range).scale_offset()
    if not _tensorflow_ops(image):
        import keras

        image = keras.ops.clip(keras.ops.cast(image, "float32"), 0.0, 255.0)
        return image * scale + offset
    import tensorflow as tf

    image = tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 255.0)
    return image * scale + offset


def _bound(value):
    """A pixel range's low or high: a float, or a tuple of three floats."""
    if np.ndim(value) == 0:
        return float(value)
    values = tuple(float(v) for v in value)
    if len(values) != 3:
        raise ValueError(values)
    return values


def _tensorflow_ops(x):
    """Whether to use TensorFlow ops on ``x``: on the TensorFlow backend, or a TF tensor."""
    import keras

    return keras.backend.backend() == "tensorflow" or type(x).__module__.startswith("tensorflow")

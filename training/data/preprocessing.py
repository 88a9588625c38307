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
identical eval inputs. The eval half lives in the library
(``keras_coordatt.export.preprocessing``) because exported models run the
same code in their serving signature.
"""

import tensorflow as tf

from keras_coordatt.export.preprocessing import EVAL_CROP_FRACTION  # noqa: F401 (re-exported)
from keras_coordatt.export.preprocessing import as_rgb
from keras_coordatt.export.preprocessing import preprocess_for_eval  # noqa: F401 (re-exported)
from keras_coordatt.export.preprocessing import resize_shorter
from keras_coordatt.export.preprocessing import resize_size  # noqa: F401 (re-exported)
from keras_coordatt.export.preprocessing import to_pixel_range

ASPECT_RATIO_RANGE = (3 / 4, 4 / 3)


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
    return to_pixel_range(as_rgb(image), pixel_range)


def shrink_to(image, size):
    """Resizes an image down so its shorter side is ``size``; smaller ones stay.

    What the pipeline caches: eval and augmentation never need more pixels
    than this, and ``preprocess_for_eval`` gives the same result on the
    shrunk image as on the original.
    """
    shape = tf.shape(image)
    return tf.cond(
        tf.minimum(shape[-3], shape[-2]) > size,
        lambda: resize_shorter(image, size),
        lambda: image,
    )

"""Image operations in NumPy, computing what TensorFlow's image ops compute.

The augmentations of the detection and segmentation pipelines run on NumPy
arrays, so that they need no TensorFlow (a machine with JAX or PyTorch only);
these are their building blocks:

- colour: `rgb_to_hsv`, `hsv_to_rgb` and `adjust_brightness`,
  `adjust_contrast`, `adjust_saturation`, `adjust_hue`, the formulas of
  ``tf.image``'s CPU kernels, on float images scaled to ``[0, 1]`` (values
  a little outside, as brightness and contrast leave them, are handled as
  those kernels handle them);
- size: `resize_bilinear` (antialiased when shrinking, what
  ``tf.image.resize(..., antialias=True)`` gives) and `resize_nearest`
  (label masks; the same pixels as ``tf.image.resize(..., method="nearest")``);
- `network_input`: an image stretched to the network's square and mapped onto
  its pixel range (`keras_coordatt.preprocessing.stretch_to_input` in NumPy).

Images are float32 ``(H, W, C)``; the functions return new arrays.
"""

import numpy as np

from keras_coordatt.preprocessing import Preprocessing


# Where each sector of the hue circle (sixths, from red) takes (r, g, b) from: 0 the largest,
# 1 the middle, 2 the smallest value; row 6, for a sector outside 0..5, is the kernels' default
# case (every channel the smallest).
_SECTORS = np.array([[0, 1, 2], [1, 0, 2], [2, 0, 1], [2, 1, 0], [1, 2, 0], [0, 2, 1], [2, 2, 2]],
                    np.int8)


def _planes(x):
    """The three channels of ``(..., 3)`` float32 values, each contiguous (faster to compute on)."""
    return np.moveaxis(np.asarray(x, np.float32), -1, 0).copy()


def _from_sectors(sector, largest, middle, smallest):
    """``(..., 3)`` float32 RGB: each channel the largest, middle or smallest value, as the
    sector (an integer array, any outside 0..5 giving the smallest everywhere) says."""
    sector = np.where((sector >= 0) & (sector < 6), sector, 6)
    channels = []
    for roles in _SECTORS.T:
        role = roles[sector]
        channels.append(np.where(role == 0, largest, np.where(role == 1, middle, smallest)))
    return np.stack(channels, axis=-1).astype(np.float32, copy=False)


def rgb_to_hsv(rgb):
    """``(..., 3)`` hue, saturation, value of RGB values scaled to ``[0, 1]``, as float32.

    TensorFlow's AdjustSaturation formulas: ``v = max``, ``s = (max - min) / v``
    (0 where ``v <= 0``), hue in ``[0, 1)``, 0 where ``max == min``.

    Example:

    >>> rgb_to_hsv(np.array([[1.0, 0.5, 0.0], [0.25, 0.25, 0.25]]))
    array([[0.08333334, 1.        , 1.        ],
           [0.        , 0.        , 0.25      ]], dtype=float32)
    """
    r, g, b = _planes(rgb)
    value = np.maximum(r, np.maximum(g, b))
    spread = value - np.minimum(r, np.minimum(g, b))
    positive = value > 0
    saturation = np.where(positive, spread / np.where(positive, value, 1), 0).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = np.float32(1) / (np.float32(6) * spread)
        # The kernel adds 2/6 and 4/6 in double precision, then stores a float.
        hue = np.where(r == value, norm * (g - b),
                       np.where(g == value,
                                (norm * (b - r)).astype(np.float64) + 2.0 / 6.0,
                                (norm * (r - g)).astype(np.float64) + 4.0 / 6.0)).astype(np.float32)
    hue = np.where(spread > 0, hue, np.float32(0))
    hue = np.where(hue < 0, hue + np.float32(1), hue)
    return np.stack([hue, saturation, value], axis=-1)


def hsv_to_rgb(hsv):
    """``(..., 3)`` RGB of hue, saturation, value (`rgb_to_hsv`'s inverse), as float32.

    TensorFlow's AdjustSaturation formulas: chroma ``c = s * v``, the sector
    ``int(6 * h)``; a hue that rounds to 1 (sector 6) gives grey ``v - c``.
    """
    hue, saturation, value = _planes(hsv)
    chroma = saturation * value
    low = value - chroma
    sixths = hue * np.float32(6)
    sector = sixths.astype(np.int64)  # truncation toward 0, as the kernel's int cast
    # In [0, 2), as the kernel's two while loops leave it (exact: halving and subtracting 2).
    phase = sixths - np.float32(2) * np.floor(sixths * np.float32(0.5))
    middle = chroma * (np.float32(1) - np.abs(phase - np.float32(1)))
    return _from_sectors(sector, chroma, middle, np.float32(0)) + low[..., None]


def adjust_brightness(x, delta):
    """``x + delta`` (``tf.image.adjust_brightness``), float32."""
    return np.asarray(x, np.float32) + np.float32(delta)


def adjust_contrast(x, factor):
    """Each channel's distance to its mean over the image times ``factor``
    (``tf.image.adjust_contrast``): ``(x - mean) * factor + mean``, float32 ``(H, W, C)``."""
    x = np.asarray(x, np.float32)
    mean = x.mean(axis=(0, 1), dtype=np.float64).astype(np.float32)
    return (x - mean) * np.float32(factor) + mean


def adjust_saturation(x, factor):
    """The saturation times ``factor``, clipped to ``[0, 1]`` (``tf.image.adjust_saturation``);
    RGB float32 ``(..., 3)`` scaled to ``[0, 1]``."""
    hsv = rgb_to_hsv(x)
    hsv[..., 1] = np.clip(hsv[..., 1] * np.float32(factor), 0, 1)
    return hsv_to_rgb(hsv)


def adjust_hue(x, delta):
    """The hue turned by ``delta`` (a fraction of the circle; ``tf.image.adjust_hue``);
    RGB float32 ``(..., 3)`` scaled to ``[0, 1]``.

    TensorFlow's AdjustHue kernel: the hue in sixths, ``[0, 6)``, from the
    order of the channels, each pixel's largest and smallest value kept
    as they are. It equals ``hsv_to_rgb`` of the turned `rgb_to_hsv` inside
    ``[0, 1]`` and keeps values outside it (a negative one too) in place. Like
    ``tf.image.adjust_hue``, a ``delta`` outside ``[-1, 1]`` is a ValueError.
    """
    if not -1 <= delta <= 1:
        raise ValueError(f"the hue's delta must be in [-1, 1], got {delta}")
    r, g, b = _planes(x)
    # The kernel's sector of each ordering of (r, g, b), ties broken as it breaks them:
    # r < g: 1 (b < r), 3 (b > g) or 2; else 0 (b < g), 4 (b > r) or 5.
    sector = np.where(r < g, 2 - (b < r).astype(np.int8) + (b > g),
                      5 - 5 * (b < g).astype(np.int8) - (b > r))
    top = np.maximum(r, np.maximum(g, b))
    bottom = np.minimum(r, np.minimum(g, b))
    middle = np.maximum(np.minimum(r, g), np.minimum(np.maximum(r, g), b))
    spread = top - bottom
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (middle - bottom) / spread
    sixths = sector + np.where(sector % 2 == 0, ratio, np.float32(1) - ratio)
    sixths = np.where(spread == 0, np.float32(0), sixths)
    sixths = sixths + np.float32(delta) * np.float32(6)
    while (sixths < 0).any():
        sixths = np.where(sixths < 0, sixths + np.float32(6), sixths)
    while (sixths >= 6).any():
        sixths = np.where(sixths >= 6, sixths - np.float32(6), sixths)
    sector = sixths.astype(np.int8)
    ratio = sixths - sector
    ratio = np.where(sector % 2 == 0, ratio, np.float32(1) - ratio)
    return _from_sectors(sector, top, bottom + ratio * spread, bottom)


def resize_bilinear(image, height, width):
    """``(H, W, C)`` float32 -> ``(height, width, C)``, bilinear, antialiased when shrinking.

    Pillow's triangle filter on each channel (mode ``"F"``), widened by the
    shrink factor, on pixel centres: within about 1e-4 (shrinking) and 4e-3
    (growing) of ``tf.image.resize(image, (height, width), antialias=True)``
    on 0..255 images. The same size gives a copy.
    """
    from PIL import Image

    image = np.asarray(image, np.float32)
    if image.shape[:2] == (height, width):
        return image.copy()
    channels = [Image.fromarray(np.ascontiguousarray(image[..., c]))
                .resize((width, height), Image.Resampling.BILINEAR)
                for c in range(image.shape[-1])]
    return np.stack([np.asarray(c, np.float32) for c in channels], axis=-1)


def _nearest_indices(in_size, out_size):
    """The source row (column) of each output one: TensorFlow's half-pixel nearest neighbour,
    ``floor((i + 0.5) * in / out)`` in float32, within the image."""
    scale = np.float32(in_size) / np.float32(out_size)
    where = np.floor((np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale)
    return np.clip(where.astype(np.int64), 0, in_size - 1)


def resize_nearest(mask, height, width):
    """A label mask ``(H, W)`` or ``(H, W, 1)`` resized to ``(height, width)`` (the same rank
    and dtype) by nearest neighbours: ``tf.image.resize(..., method="nearest")``'s pixels.

    Example:

    >>> resize_nearest(np.array([[1, 2], [3, 4]], np.uint8), 3, 4)
    array([[1, 1, 2, 2],
           [3, 3, 4, 4],
           [3, 3, 4, 4]], dtype=uint8)
    """
    mask = np.asarray(mask)
    rows = _nearest_indices(mask.shape[0], height)
    columns = _nearest_indices(mask.shape[1], width)
    return mask[rows[:, None], columns[None, :]]


def network_input(image, side, pixel_range):
    """A float 0..255 image ``(H, W, 3)`` as the network's input: stretched to ``side`` x
    ``side`` (`resize_bilinear`; no crop), clipped to 0..255 and mapped onto ``pixel_range``
    (a `Preprocessing` range), float32; `keras_coordatt.preprocessing.stretch_to_input`."""
    scale, offset = Preprocessing(pixel_range).scale_offset()
    image = np.clip(resize_bilinear(image, side, side), 0, 255)
    return (image * scale + offset).astype(np.float32, copy=False)

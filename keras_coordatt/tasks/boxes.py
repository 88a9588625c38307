"""The overlap of axis-aligned boxes: pairwise intersection areas and IoU.

One implementation for the whole library. It is written with the few
functions NumPy, `keras.ops` and TensorFlow share (``maximum``, ``minimum``,
``where``) and takes the one to use as ``xp``: the scores
(`keras_coordatt.tasks.evaluation`), tiled NMS and anchor matching run it in
NumPy, the inference layer in `keras.ops` on any backend, and
the detection pipeline's random crop in TensorFlow inside ``tf.data``.
"""

import numpy as np

# The least union divided by: a union of 0 (two boxes without area) gives IoU 0, not NaN.
_TINY = 1e-12


def box_areas(boxes, xp=np):
    """``(...)`` areas of ``xyxy`` boxes ``(..., 4)``; a box with ``x2 < x1`` has none."""
    return (xp.maximum(boxes[..., 2] - boxes[..., 0], 0.0)
            * xp.maximum(boxes[..., 3] - boxes[..., 1], 0.0))


def box_intersection(boxes_a, boxes_b, xp=np):
    """``(..., N, M)`` intersection areas of ``xyxy`` boxes ``(..., N, 4)`` and ``(..., M, 4)``."""
    a, b = boxes_a[..., :, None, :], boxes_b[..., None, :, :]
    width = xp.minimum(a[..., 2], b[..., 2]) - xp.maximum(a[..., 0], b[..., 0])
    height = xp.minimum(a[..., 3], b[..., 3]) - xp.maximum(a[..., 1], b[..., 1])
    return xp.maximum(width, 0.0) * xp.maximum(height, 0.0)


def box_iou(boxes_a, boxes_b, xp=np):
    """``(..., N, M)`` IoU of every box of ``boxes_a`` with every box of ``boxes_b``.

    Args:
        boxes_a, boxes_b: ``xyxy`` boxes ``(..., N, 4)`` and ``(..., M, 4)``
            in the same units (pixels or relative); leading axes broadcast.
        xp: ``numpy`` (the default), ``keras.ops`` or ``tensorflow``: whose
            arrays these are and whose functions compute on them.

    Returns:
        Intersection over union, 0 where the union has no area.

    Example:

    >>> box_iou(np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 0.0, 3.0, 2.0]]))
    array([[0.33333333]])
    """
    intersection = box_intersection(boxes_a, boxes_b, xp)
    union = (box_areas(boxes_a, xp)[..., :, None] + box_areas(boxes_b, xp)[..., None, :]
             - intersection)
    return xp.where(union > 0, intersection / xp.maximum(union, _TINY), 0.0)

"""SSD default boxes ("anchors"), ground-truth matching and box coding.

The SSDLite320 setting the paper's detection code uses (its COCO config):
feature maps 20/10/5/3/2/1 at a 320x320 input, their centres spaced
16/32/64/120/160/320 pixels apart, anchor sizes from 45 to 270 pixels (min)
and 90 to 315 (max), aspect ratios 2 and 3 (only 2 on the last map). At each
position SSD places a square of the min size, a square of
``sqrt(min * max)``, and for each ratio ``r`` a box ``min * sqrt(r)`` wide
and ``min / sqrt(r)`` high and its transpose: 6 boxes, 4 on the last map,
3,232 in all at 320. Boxes are relative to the image (0..1), clipped to it.

Matching gives each anchor the ground truth it overlaps most if that IoU is
at least 0.5 (else background), and then every ground truth its own best
anchor whatever the IoU, so no object goes unassigned. Boxes are coded as
offsets from their anchor in centre-size form divided by the variances
0.1 (centre) and 0.2 (size). Matching and coding make the training targets in the input
pipeline (NumPy, on every backend); decoding runs in the model (`keras.ops`).
"""

import dataclasses
import itertools
import math

import keras
import numpy as np
from keras.utils import bounding_boxes

from keras_coordatt.tasks.boxes import box_iou

VARIANCES = (0.1, 0.1, 0.2, 0.2)  # centre x, centre y, width, height


@dataclasses.dataclass(frozen=True)
class SSDAnchors:
    """The default boxes of an SSD head.

    Args:
        image_size: the square input side, pixels.
        feature_sizes: the side of each feature map, finest first.
        steps: the pixels between neighbouring anchor centres on each map.
        min_sizes, max_sizes: each map's anchor sizes, pixels.
        aspect_ratios: each map's extra ratios (each adds two boxes).
        clip: clip the boxes to the image.

    Example:

    >>> anchors = SSDAnchors()
    >>> anchors.boxes_per_location, anchors.boxes().shape
    ([6, 6, 6, 6, 6, 4], (3232, 4))
    """

    image_size: int = 320
    feature_sizes: tuple = (20, 10, 5, 3, 2, 1)
    steps: tuple = (16, 32, 64, 120, 160, 320)
    min_sizes: tuple = (45, 90, 135, 180, 225, 270)
    max_sizes: tuple = (90, 135, 180, 225, 270, 315)
    aspect_ratios: tuple = ((2, 3), (2, 3), (2, 3), (2, 3), (2, 3), (2,))
    clip: bool = True

    def __post_init__(self):
        levels = len(self.feature_sizes)
        lengths = {name: len(getattr(self, name))
                   for name in ("steps", "min_sizes", "max_sizes", "aspect_ratios")}
        wrong = {name: n for name, n in lengths.items() if n != levels}
        if wrong:
            raise ValueError(f"SSDAnchors: {levels} feature_sizes but {wrong}: one entry per "
                             "feature map is needed")
        for level, (low, high) in enumerate(zip(self.min_sizes, self.max_sizes)):
            if not 0 < low <= high:
                raise ValueError(f"SSDAnchors: map {level} has min size {low} and max size "
                                 f"{high}; need 0 < min <= max")

    @property
    def boxes_per_location(self):
        """Anchors at each position of each map (2 squares + 2 per ratio)."""
        return [2 + 2 * len(ratios) for ratios in self.aspect_ratios]

    def boxes(self):
        """``(A, 4)`` float32 anchors, relative ``center_xywh``, map by map, row-major.

        The order is the heads' output order: for each map, each row, each
        column, the boxes of that position.
        """
        rows = []
        for size, step, low, high, ratios in zip(self.feature_sizes, self.steps, self.min_sizes,
                                                 self.max_sizes, self.aspect_ratios):
            cells = self.image_size / step
            small, large = low / self.image_size, math.sqrt(low * high) / self.image_size
            shapes = [(small, small), (large, large)]
            for ratio in ratios:
                root = math.sqrt(ratio)
                shapes += [(small * root, small / root), (small / root, small * root)]
            for row, column in itertools.product(range(size), repeat=2):
                x, y = (column + 0.5) / cells, (row + 0.5) / cells
                rows += [(x, y, w, h) for w, h in shapes]
        anchors = np.asarray(rows, "float32")
        if self.clip:
            anchors = np.clip(anchors, 0.0, 1.0)
        return anchors


def anchors_config(anchors):
    """An `SSDAnchors` as a JSON-able dict of its fields."""
    fields = dataclasses.asdict(anchors)
    fields["aspect_ratios"] = [list(r) for r in fields["aspect_ratios"]]
    return {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}


def anchors_from_config(config):
    """`anchors_config` undone (lists back to tuples); an `SSDAnchors` passes through."""
    if isinstance(config, SSDAnchors):
        return config
    if not isinstance(config, dict):
        raise TypeError(f"anchors must be an SSDAnchors or a dict of its fields, "
                        f"got {type(config).__name__}")
    fields = dict(config)
    if "aspect_ratios" in fields:
        fields["aspect_ratios"] = tuple(tuple(r) for r in fields["aspect_ratios"])
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    return SSDAnchors(**fields)


def match_anchors(boxes, labels, anchors, iou_threshold=0.5):
    """Each anchor's ground truth: ``(matched boxes (A, 4) xyxy, labels (A,))``, NumPy.

    Args:
        boxes: ``(G, 4)`` ground-truth boxes, relative ``xyxy``; padding rows
            are allowed (label -1).
        labels: ``(G,)`` int classes, 1..C (0 is background), -1 for padding.
        anchors: ``(A, 4)`` relative ``center_xywh`` (`SSDAnchors.boxes`).
        iou_threshold: the IoU an anchor needs with a ground truth to take it.

    Returns:
        The box each anchor regresses to (its best ground truth; meaningless
        for background anchors) and its class, 0 for background. Every real
        ground truth has at least its best anchor.

    Matching makes training targets in the input pipeline, so it is NumPy
    (float32), the same on every backend (in ``tf.data`` through
    ``tf.numpy_function``).
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels).astype(np.int32).reshape(-1)
    if not len(boxes):
        count = len(anchors)
        return np.zeros((count, 4), np.float32), np.zeros(count, np.int32)
    real = labels >= 0
    iou = np.where(real[:, None], box_iou(boxes, _xyxy(anchors)), -1.0)  # (G, A); padding: -1
    best_truth = np.argmax(iou, axis=0)  # (A,)
    positive = np.max(iou, axis=0) >= iou_threshold
    # Every real ground truth onto its best anchor; where two pick the same anchor, the first.
    for truth in np.flatnonzero(real)[::-1]:
        anchor = np.argmax(iou[truth])
        best_truth[anchor], positive[anchor] = truth, True
    matched_labels = np.where(positive, labels[best_truth], 0).astype(np.int32)
    return boxes[best_truth], matched_labels


def anchor_targets(boxes, labels, anchors, iou_threshold=0.5):
    """An image's SSD training targets: ``(classes (A,) int32, boxes (A, 5) float32)``, NumPy.

    ``boxes`` are its ground truth ``(G, 4)`` relative ``xyxy`` (G may be 0),
    ``labels`` ``(G,)`` 0-based classes, negative for padding rows (so a
    batch of images can share one G); ``anchors`` ``(A, 4)`` relative
    ``center_xywh``. The class targets are 0 for background and label + 1
    for matched anchors; the box targets are the coded offsets of each
    anchor's box (`encode_boxes`) followed by its class target, what
    `SSDClassificationLoss` and `SSDBoxLoss` read.
    """
    labels = np.asarray(labels).astype(np.int32).reshape(-1)
    matched, classes = match_anchors(boxes, np.where(labels >= 0, labels + 1, -1), anchors,
                                     iou_threshold)
    offsets = encode_boxes(matched, anchors)
    return classes, np.concatenate([offsets, classes.astype(np.float32)[:, None]], axis=-1)


def encode_boxes(boxes, anchors, variances=VARIANCES):
    """Relative ``xyxy`` boxes ``(..., A, 4)`` as SSD offsets from their ``center_xywh``
    anchors ``(A, 4)``, NumPy float32: the centre's shift in anchor sizes and the log of the
    size ratio, divided by ``variances``. `decode_boxes` (`keras.ops`, in the model) undoes it.
    """
    boxes = np.asarray(boxes, np.float32)
    anchors = np.asarray(anchors, np.float32)
    tiny = np.float32(keras.config.epsilon())
    centres = (boxes[..., :2] + boxes[..., 2:]) / 2
    sizes = np.maximum(boxes[..., 2:] - boxes[..., :2], tiny)
    anchor_sizes = np.maximum(anchors[..., 2:], tiny)
    offsets = np.concatenate([(centres - anchors[..., :2]) / anchor_sizes,
                              np.log(sizes / anchor_sizes)], axis=-1)
    return (offsets / np.asarray(variances, np.float32)).astype(np.float32)


def _xyxy(anchors):
    """``center_xywh`` -> ``xyxy``, NumPy."""
    anchors = np.asarray(anchors, np.float32)
    half = anchors[..., 2:] / 2
    return np.concatenate([anchors[..., :2] - half, anchors[..., :2] + half], axis=-1)


def decode_boxes(offsets, anchors, variances=VARIANCES):
    """`encode_boxes` undone: offsets ``(..., A, 4)`` -> relative ``xyxy`` boxes."""
    return bounding_boxes.decode_deltas_to_boxes(
        anchors, offsets, anchor_format="center_xywh", box_format="xyxy",
        encoded_format="center_xywh", variance=list(variances))


def anchor_coverage(boxes, anchors, iou_threshold=0.5):
    """The share of ``boxes`` (relative ``xyxy``) whose best anchor reaches ``iou_threshold``.

    How well a set of anchors suits a dataset's object sizes: a box without
    such an anchor is trained only through the forced best-anchor match.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not len(boxes):
        raise ValueError("anchor_coverage: no boxes")
    anchors = np.asarray(anchors, np.float32)
    corners = np.concatenate([anchors[:, :2] - anchors[:, 2:] / 2,
                              anchors[:, :2] + anchors[:, 2:] / 2], axis=1)
    iou = box_iou(boxes, corners)
    return float(np.mean(iou.max(axis=1) >= iou_threshold))

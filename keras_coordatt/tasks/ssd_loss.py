"""The two SSD losses the paper's detection configs use, with smooth L1 for the boxes.

- `multibox_loss` (its VOC config): softmax cross-entropy over background and
  the classes, on every positive anchor and on the hardest negatives only,
  three negatives per positive in each image (the negatives whose background
  probability is lowest), plus smooth L1 on the positives' box offsets; both
  divided by the number of positives.
- `focal_loss` (its COCO config): sigmoid focal loss (Lin et al., ICCV 2017;
  alpha 0.25, gamma 2) over the object classes on every anchor, background
  being all-zero targets, divided by the number of positives; the boxes as
  above.

Targets come from `keras_coordatt.tasks.anchors.match_anchors` (class 0 is
background) and `encode_boxes`. Everything is `keras.ops`.
"""

import keras
from keras import ops


def smooth_l1(offsets, targets, positive, beta=1.0):
    """Sum over positive anchors of the smooth L1 (Huber) distance of their four offsets."""
    difference = ops.abs(offsets - targets)
    per_value = ops.where(difference < beta, 0.5 * difference**2 / beta, difference - 0.5 * beta)
    return ops.sum(ops.sum(per_value, axis=-1) * ops.cast(positive, per_value.dtype))


def _positives(class_targets):
    positive = class_targets > 0
    count = ops.maximum(ops.sum(ops.cast(positive, "float32")), 1.0)
    return positive, count


def multibox_loss(class_targets, box_targets, class_logits, box_offsets, negative_ratio=3):
    """``(classification, box)`` losses of SSD with hard-negative mining.

    Args:
        class_targets: ``(B, A)`` int, 0 background, 1..C objects (-1: ignore).
        box_targets: ``(B, A, 4)`` coded offsets (`encode_boxes`).
        class_logits: ``(B, A, C + 1)``.
        box_offsets: ``(B, A, 4)``.
        negative_ratio: hard negatives kept per positive, per image.
    """
    class_targets = ops.cast(class_targets, "int32")
    class_logits = ops.cast(class_logits, "float32")
    box_offsets = ops.cast(box_offsets, "float32")
    positive, count = _positives(class_targets)
    log_probabilities = ops.log_softmax(class_logits, axis=-1)
    safe_targets = ops.maximum(class_targets, 0)
    cross_entropy = -ops.take_along_axis(log_probabilities, safe_targets[..., None], axis=-1)[..., 0]
    # Hard negatives: the background anchors with the largest background loss.
    negative = ops.equal(class_targets, 0)
    background_loss = ops.where(negative, -log_probabilities[..., 0], -1.0)
    order = ops.argsort(-background_loss, axis=-1)
    rank = ops.argsort(order, axis=-1)
    per_image_positives = ops.sum(ops.cast(positive, "int32"), axis=-1, keepdims=True)
    hard = ops.logical_and(negative, rank < negative_ratio * per_image_positives)
    chosen = ops.logical_or(positive, hard)
    classification = ops.sum(cross_entropy * ops.cast(chosen, "float32")) / count
    box = smooth_l1(box_offsets, ops.cast(box_targets, "float32"), positive) / count
    return classification, box


def focal_loss(class_targets, box_targets, class_logits, box_offsets, alpha=0.25, gamma=2.0):
    """``(classification, box)`` losses with sigmoid focal loss over the C object classes.

    ``class_logits`` is ``(B, A, C + 1)`` as `multibox_loss` takes it; the
    background column 0 is not used (background anchors have all-zero
    targets over the C classes). Other arguments as in `multibox_loss`;
    anchors with target -1 are ignored.
    """
    class_targets = ops.cast(class_targets, "int32")
    logits = ops.cast(class_logits, "float32")[..., 1:]
    positive, count = _positives(class_targets)
    labels = ops.one_hot(ops.maximum(class_targets, 0), logits.shape[-1] + 1)[..., 1:]
    probabilities = ops.sigmoid(logits)
    cross_entropy = ops.binary_crossentropy(labels, logits, from_logits=True)
    p_t = labels * probabilities + (1 - labels) * (1 - probabilities)
    alpha_t = labels * alpha + (1 - labels) * (1 - alpha)
    per_value = alpha_t * (1 - p_t) ** gamma * cross_entropy
    valid = ops.cast(class_targets >= 0, "float32")[..., None]
    classification = ops.sum(per_value * valid) / count
    box = smooth_l1(ops.cast(box_offsets, "float32"), ops.cast(box_targets, "float32"),
                    positive) / count
    return classification, box


BOX_LOSS_TARGET_WIDTH = 5  # four coded offsets and the anchor's class target


@keras.saving.register_keras_serializable(package="keras_coordatt")
class SSDClassificationLoss(keras.losses.Loss):
    """The class half of an SSD loss, for ``compile(loss={"classes": ...})``.

    ``y_true`` is ``(B, A)`` int class targets (0 background, -1 ignored),
    ``y_pred`` the ``(B, A, C + 1)`` logits; the value is divided by the
    batch's positive anchors, as `multibox_loss` / `focal_loss` do.

    Args:
        kind: ``"multibox"`` (softmax cross-entropy, 3:1 hard negatives; the
            paper's VOC config) or ``"focal"`` (sigmoid focal loss; its COCO config).
        negative_ratio: hard negatives per positive (multibox).
        alpha, gamma: the focal loss's parameters.
    """

    def __init__(self, kind="multibox", negative_ratio=3, alpha=0.25, gamma=2.0,
                 name="ssd_classification", **kwargs):
        if kind not in ("multibox", "focal"):
            raise ValueError(f"SSDClassificationLoss: kind must be 'multibox' or 'focal', got {kind!r}")
        super().__init__(name=name, **kwargs)
        self.kind, self.negative_ratio, self.alpha, self.gamma = kind, negative_ratio, alpha, gamma

    def call(self, y_true, y_pred):
        targets = ops.reshape(ops.cast(y_true, "int32"), ops.shape(y_pred)[:-1])
        no_boxes = ops.zeros(ops.shape(y_pred)[:-1] + (4,), "float32")
        if self.kind == "focal":
            classification, _ = focal_loss(targets, no_boxes, y_pred, no_boxes,
                                           alpha=self.alpha, gamma=self.gamma)
        else:
            classification, _ = multibox_loss(targets, no_boxes, y_pred, no_boxes,
                                              negative_ratio=self.negative_ratio)
        return classification

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "negative_ratio": self.negative_ratio,
                "alpha": self.alpha, "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="keras_coordatt")
class SSDBoxLoss(keras.losses.Loss):
    """Smooth L1 on the positive anchors' offsets, for ``compile(loss={"boxes": ...})``.

    ``y_true`` is ``(B, A, 5)``: the coded offsets and, last, the anchor's
    class target (so the loss knows the positives and divides by their
    number, as the classification half does); ``y_pred`` is ``(B, A, 4)``.
    """

    def __init__(self, name="ssd_box", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        positive, count = _positives(ops.cast(y_true[..., 4], "int32"))
        return smooth_l1(ops.cast(y_pred, "float32"), y_true[..., :4], positive) / count

"""SSD post-processing inside the model: box decoding, class scores and class-aware NMS.

`SSDPostprocess` turns an `SSDLite` output (coded offsets and logits per
anchor) into a fixed number of detections per image:

1. the offsets are decoded against the anchors (`decode_boxes`) into
   relative ``xyxy`` boxes, clipped to the image; a box left without area
   (outside the image) scores 0;
2. the logits become per-class scores: a softmax over background and the
   classes with the background column dropped (a cross-entropy model), or
   a sigmoid over the class columns 1..C (a focal-loss model);
3. the ``candidates`` best (anchor, class) pairs by score are kept, each box
   shifted by ``2 * class`` on both axes so boxes of different classes never
   overlap, and one greedy non-maximum suppression runs over them: a box is
   dropped when its IoU with a better-scoring kept box of its class is above
   ``iou_threshold``; only scores strictly above ``score_threshold`` count.

On the TensorFlow backend the suppression is TensorFlow's
``NonMaxSuppressionV4`` op, which the TFLite converter turns into the builtin
``NON_MAX_SUPPRESSION_V4`` (``tf.image.non_max_suppression_padded`` in TF 2
is a tiled while-loop instead, which converts to a WHILE graph). On JAX and
PyTorch a `keras.ops` greedy NMS does the same (slower; same results).
"""

import keras
import numpy as np
from keras import ops

from keras_coordatt.tasks.anchors import VARIANCES
from keras_coordatt.tasks.anchors import anchors_config
from keras_coordatt.tasks.anchors import anchors_from_config
from keras_coordatt.tasks.anchors import decode_boxes
from keras_coordatt.tasks.boxes import box_iou
from keras_coordatt.tasks.ssdlite import anchors_of

ACTIVATIONS = ("softmax", "sigmoid")
OUTPUTS = ("boxes", "classes", "scores", "count")
# Each class's boxes are moved this far (boxes are relative, within [0, 1]).
CLASS_OFFSET = 2.0


@keras.saving.register_keras_serializable(package="keras_coordatt")
class SSDPostprocess(keras.layers.Layer):
    """Decodes an SSD head's output and keeps the best boxes after class-aware NMS.

    Args:
        anchors: the head's `SSDAnchors` (``ssd_model.anchors``), or a dict
            of its fields.
        score_threshold: a detection needs a score strictly above this.
        iou_threshold: a box whose IoU with a better box of its class is
            above this is suppressed.
        max_detections: detections per image (the outputs' second axis).
        candidates: the best (anchor, class) pairs that enter NMS.
        activation: ``"softmax"`` over background and classes (the multibox
            loss), or ``"sigmoid"`` over the class columns (the focal loss).
        variances: the box coding's variances (`VARIANCES`).

    Call arguments:
        inputs: the `SSDLite` output dict ``{"boxes": (B, A, 4) offsets,
            "classes": (B, A, C + 1) logits}``, or the pair in that order.

    Returns:
        A dict: ``"boxes"`` ``(B, max_detections, 4)`` float32 relative
        ``xyxy`` in [0, 1]; ``"classes"`` ``(B, max_detections)`` int32, the
        0-based object class (background excluded); ``"scores"`` float32, in
        descending order; ``"count"`` ``(B,)`` int32, the real detections.
        Rows past ``count`` are zero (class 0, score 0).

    Example:

    >>> import numpy as np
    >>> from keras_coordatt.tasks import SSDAnchors
    >>> anchors = SSDAnchors(image_size=4, feature_sizes=(1,), steps=(4,), min_sizes=(2,),
    ...                      max_sizes=(2,), aspect_ratios=((),))
    >>> logits = np.array([[[0.0, 5.0, 0.0], [0.0, 0.0, 4.0]]], "float32")  # 2 anchors, 2 classes
    >>> out = SSDPostprocess(anchors, max_detections=3)({"boxes": np.zeros((1, 2, 4), "float32"),
    ...                                                 "classes": logits})
    >>> np.asarray(out["classes"]).tolist(), np.asarray(out["count"]).tolist()
    ([[0, 1, 0]], [2])
    """

    def __init__(self, anchors, score_threshold=0.01, iou_threshold=0.45, max_detections=100,
                 candidates=400, activation="softmax", variances=VARIANCES, **kwargs):
        super().__init__(**kwargs)
        self.anchors = anchors_from_config(anchors)
        if activation not in ACTIVATIONS:
            raise ValueError(f"SSDPostprocess: activation={activation!r}; expected one of "
                             f"{ACTIVATIONS}")
        if not 0.0 <= float(score_threshold) < 1.0:
            raise ValueError(f"SSDPostprocess: score_threshold must be in [0, 1), got "
                             f"{score_threshold!r}")
        if not 0.0 <= float(iou_threshold) <= 1.0:
            raise ValueError(f"SSDPostprocess: iou_threshold must be in [0, 1], got "
                             f"{iou_threshold!r}")
        for name, value in (("max_detections", max_detections), ("candidates", candidates)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"SSDPostprocess: {name} must be a positive int, got {value!r}")
        if len(variances) != 4:
            raise ValueError(f"SSDPostprocess: variances needs 4 values, got {variances!r}")
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_detections = int(max_detections)
        self.candidates = int(candidates)
        self.activation = activation
        self.variances = tuple(float(v) for v in variances)
        self._anchor_boxes = self.anchors.boxes()

    def candidates_of(self, inputs):
        """Steps 1 and 2: every anchor's box ``(B, A, 4)`` and class scores ``(B, A, C)``,
        what the suppression chooses from."""
        offsets, logits = self._split(inputs)
        offsets = ops.cast(offsets, "float32")
        logits = ops.cast(logits, "float32")
        boxes = ops.clip(decode_boxes(offsets, self._anchor_boxes, self.variances), 0.0, 1.0)
        if self.activation == "softmax":
            scores = ops.softmax(logits, axis=-1)[..., 1:]
        else:
            scores = ops.sigmoid(logits[..., 1:])
        # A box clipped to nothing (outside the image) is no detection; TFLite's
        # NMS kernel would also select a zero-area box again and again.
        solid = ops.logical_and(boxes[..., 2] > boxes[..., 0], boxes[..., 3] > boxes[..., 1])
        return boxes, ops.where(solid[..., None], scores, 0.0)

    def call(self, inputs):
        boxes, scores = self.candidates_of(inputs)
        num_anchors, num_classes = self._anchor_boxes.shape[0], int(scores.shape[-1])
        # The best (anchor, class) pairs: flat index = anchor * C + class.
        flat = ops.reshape(scores, (-1, num_anchors * num_classes))
        top_scores, top_index = ops.top_k(flat, min(self.candidates, num_anchors * num_classes))
        top_index = ops.cast(top_index, "int32")
        classes = top_index % num_classes
        boxes = ops.take_along_axis(boxes, ops.expand_dims(top_index // num_classes, -1), axis=1)
        shifted = boxes + ops.expand_dims(ops.cast(classes, "float32") * CLASS_OFFSET, -1)
        if keras.backend.backend() == "tensorflow":
            keep, count = self._nms_tensorflow(shifted, top_scores)
        else:
            keep, count = greedy_nms(shifted, top_scores, self.max_detections,
                                     self.iou_threshold, self.score_threshold)
        real = ops.arange(self.max_detections, dtype="int32")[None, :] < count[:, None]
        boxes = ops.take_along_axis(boxes, ops.expand_dims(keep, -1), axis=1)
        return {
            "boxes": ops.where(real[..., None], boxes, 0.0),
            "classes": ops.where(real, ops.take_along_axis(classes, keep, axis=1), 0),
            "scores": ops.where(real, ops.take_along_axis(top_scores, keep, axis=1), 0.0),
            "count": count,
        }

    def _split(self, inputs):
        if isinstance(inputs, dict):
            missing = [key for key in ("boxes", "classes") if key not in inputs]
            if missing:
                raise ValueError(f"SSDPostprocess: the input dict lacks {missing} (has "
                                 f"{sorted(inputs)}); pass an SSDLite output")
            offsets, logits = inputs["boxes"], inputs["classes"]
        else:
            offsets, logits = inputs
        expected = self._anchor_boxes.shape[0]
        if offsets.shape[1] != expected or logits.shape[1] != expected:
            raise ValueError(f"SSDPostprocess: offsets {tuple(offsets.shape)} and logits "
                             f"{tuple(logits.shape)} must have one row per anchor ({expected})")
        if offsets.shape[-1] != 4 or logits.shape[-1] is None or logits.shape[-1] < 2:
            raise ValueError(f"SSDPostprocess: need offsets (B, A, 4) and logits (B, A, C + 1) "
                             f"with C >= 1, got {tuple(offsets.shape)} and {tuple(logits.shape)}")
        return offsets, logits

    def _nms_tensorflow(self, boxes, scores):
        import tensorflow as tf

        def one(pair):
            keep, count = tf.raw_ops.NonMaxSuppressionV4(
                boxes=pair[0], scores=pair[1], max_output_size=self.max_detections,
                iou_threshold=self.iou_threshold, score_threshold=self.score_threshold,
                pad_to_max_output_size=True)
            return tf.ensure_shape(keep, (self.max_detections,)), count

        batch = boxes.shape[0]
        if batch is not None:  # a static batch (TFLite): one op per image, no WHILE
            results = [one((boxes[i], scores[i])) for i in range(batch)]
            return tf.stack([k for k, _ in results]), tf.stack([c for _, c in results])
        return tf.map_fn(one, (boxes, scores), fn_output_signature=(
            tf.TensorSpec((self.max_detections,), tf.int32), tf.TensorSpec((), tf.int32)))

    def compute_output_spec(self, inputs):
        """Symbolic outputs without tracing the NMS."""
        offsets, _ = self._split(inputs)
        batch, n = offsets.shape[0], self.max_detections
        return {
            "boxes": keras.KerasTensor((batch, n, 4), "float32"),
            "classes": keras.KerasTensor((batch, n), "int32"),
            "scores": keras.KerasTensor((batch, n), "float32"),
            "count": keras.KerasTensor((batch,), "int32"),
        }

    def get_config(self):
        """The arguments; the anchors as their `SSDAnchors` fields."""
        config = super().get_config()
        config.update(
            anchors=anchors_config(self.anchors), score_threshold=self.score_threshold,
            iou_threshold=self.iou_threshold, max_detections=self.max_detections,
            candidates=self.candidates, activation=self.activation,
            variances=list(self.variances))
        return config


def greedy_nms(boxes, scores, max_detections, iou_threshold, score_threshold):
    """Greedy NMS in `keras.ops` (any backend): ``(indices (B, N) int32, count (B,) int32)``.

    Repeatedly keeps the best remaining box with a score strictly above
    ``score_threshold`` and drops the boxes whose IoU with it is above
    ``iou_threshold``. Indices past ``count`` are 0.
    """
    boxes = ops.convert_to_tensor(boxes, "float32")
    remaining = ops.convert_to_tensor(scores, "float32")
    iou = box_iou(boxes, boxes, ops)  # (B, K, K)
    size = int(remaining.shape[1])
    gone = -1.0  # below any threshold in [0, 1)
    remaining = ops.where(remaining > score_threshold, remaining, gone)
    kept, valid = [], []
    for _ in range(max_detections):
        best = ops.cast(ops.argmax(remaining, axis=1), "int32")
        best_score = ops.take_along_axis(remaining, best[:, None], axis=1)[:, 0]
        ok = best_score > gone
        kept.append(ops.where(ok, best, 0))
        valid.append(ok)
        chosen = ops.one_hot(best, size, dtype="float32")
        overlap = ops.sum(iou * chosen[:, :, None], axis=1)  # the IoU row of each best box
        drop = ops.logical_or(overlap > iou_threshold, chosen > 0)
        remaining = ops.where(ops.logical_and(drop, ok[:, None]), gone, remaining)
    return ops.stack(kept, axis=1), ops.sum(ops.cast(ops.stack(valid, axis=1), "int32"), axis=1)


def detector(ssd_model, name=None, **postprocess_kwargs):
    """An `SSDLite` model with `SSDPostprocess` on top: image -> detections dict.

    Args:
        ssd_model: an `SSDLite` model, built or loaded from a file (`anchors_of`).
        name: the model's name; default ``<ssd name>_detector``.
        **postprocess_kwargs: `SSDPostprocess`'s arguments.

    Returns:
        A `keras.Model` from the image to ``{"boxes", "classes", "scores",
        "count"}`` (see `SSDPostprocess`); ``model.anchors`` and
        ``model.preprocessing`` are carried over when present.
    """
    anchors = anchors_of(ssd_model)
    if anchors is None:
        raise ValueError(f"detector: '{ssd_model.name}' has no .anchors; build it with "
                         "keras_coordatt.tasks.SSDLite")
    outputs = SSDPostprocess(anchors, name="ssd_postprocess", **postprocess_kwargs)(
        ssd_model.output)
    model = keras.Model(ssd_model.input, outputs, name=name or f"{ssd_model.name}_detector")
    model.anchors = anchors
    if getattr(ssd_model, "preprocessing", None) is not None:
        model.preprocessing = ssd_model.preprocessing
    return model

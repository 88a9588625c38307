"""The task code that must run without TensorFlow (tasks.tiling, anchor targets, the
networks' input), on the backend under test: `make test` runs this file on TensorFlow,
JAX and PyTorch."""

import keras
import numpy as np
import pytest

from keras_coordatt.preprocessing import MOBILENET_PIXEL_RANGE
from keras_coordatt.preprocessing import stretch_to_input
from keras_coordatt.tasks import SSDAnchors
from keras_coordatt.tasks import class_nms
from keras_coordatt.tasks import encode_boxes
from keras_coordatt.tasks import predict_detections
from keras_coordatt.tasks.anchors import anchor_targets
from keras_coordatt.tasks.tiling import tile_examples

# 4x4 positions of 2 boxes each on a 32-pixel image
ANCHORS = SSDAnchors(image_size=32, feature_sizes=(4,), steps=(8,), min_sizes=(8,),
                     max_sizes=(16,), aspect_ratios=((),))


def numpy_of(x):
    return keras.ops.convert_to_numpy(x)


def test_the_input_is_the_pixel_range_and_a_resize_keeps_a_flat_image_flat():
    image = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype("uint8")
    same = numpy_of(stretch_to_input(image, 16, MOBILENET_PIXEL_RANGE))
    low, high = MOBILENET_PIXEL_RANGE
    np.testing.assert_allclose(same, image * (high - low) / 255.0 + low, atol=1e-5)
    flat = np.full((9, 13, 3), 200, "uint8")
    resized = numpy_of(stretch_to_input(flat, 32, MOBILENET_PIXEL_RANGE))
    assert resized.shape == (32, 32, 3)
    np.testing.assert_allclose(resized, 200 * (high - low) / 255.0 + low, atol=1e-4)


def test_anchor_targets_ignore_padding_rows_and_mark_the_matched_anchor():
    boxes = np.array([[0.0, 0.0, 0.25, 0.25], [0.5, 0.5, 1.0, 1.0]], "float32")
    labels = np.array([0, 2], "int32")
    classes, targets = (numpy_of(t) for t in anchor_targets(boxes, labels, ANCHORS.boxes()))
    padded_boxes = np.concatenate([boxes, np.zeros((3, 4), "float32")])
    padded_labels = np.array([0, 2, -1, -1, -1], "int32")
    padded = [numpy_of(t) for t in anchor_targets(padded_boxes, padded_labels, ANCHORS.boxes())]
    np.testing.assert_array_equal(classes, padded[0])
    np.testing.assert_allclose(targets, padded[1])
    assert set(np.unique(classes)) == {0, 1, 3}  # background, label 0 + 1, label 2 + 1
    first = int(np.flatnonzero(classes == 1)[0])  # the anchor at the first box
    coded = numpy_of(encode_boxes(boxes[:1], ANCHORS.boxes()[first:first + 1]))
    np.testing.assert_allclose(targets[first, :4], coded[0], atol=1e-5)
    assert targets[first, 4] == 1
    empty = anchor_targets(np.zeros((0, 4), "float32"), np.zeros((0,), "int32"), ANCHORS.boxes())
    assert not numpy_of(empty[0]).any()


def test_class_nms_merges_one_class_above_the_threshold_and_keeps_other_classes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60]], "float32")
    labels = np.array([0, 0, 1, 0])
    scores = np.array([0.6, 0.9, 0.5, 0.3])
    assert class_nms(boxes, labels, scores, 0.5).tolist() == [1, 2, 3]
    assert class_nms(boxes, labels, scores, 0.95).tolist() == [1, 0, 2, 3]


class BoxAt(keras.layers.Layer):
    """A stand-in SSD head: every image's anchors score background, except the anchor
    whose box is ``box`` (relative xyxy), which scores class 1 with probability ~1."""

    def __init__(self, box, **kwargs):
        super().__init__(**kwargs)
        box = np.asarray(box, "float32")
        anchors = ANCHORS.boxes()
        best = int(np.argmax([_iou(box, a) for a in _xyxy(anchors)]))
        self.logits = np.zeros((len(anchors), 2), "float32")
        self.logits[:, 0] = 10.0
        self.logits[best] = [-10.0, 10.0]
        self.offsets = numpy_of(encode_boxes(np.tile(box, (len(anchors), 1)), anchors))

    def call(self, images):
        ones = keras.ops.ones_like(images[:, :1, :1, 0])  # (batch, 1, 1)
        return {"classes": ones * self.logits, "boxes": ones * self.offsets}


def _xyxy(center_boxes):
    cx, cy, w, h = np.moveaxis(np.asarray(center_boxes), -1, 0)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_tiled_prediction_shifts_each_tile_back_and_merges_the_overlap():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, BoxAt([0.25, 0.25, 0.5, 0.5])(inputs))
    model.anchors = ANCHORS
    preprocessing = type("P", (), {"pixel_range": MOBILENET_PIXEL_RANGE})()
    image = np.zeros((40, 64, 3), "uint8")  # tiles at x 0 and 32, y 0 and 8
    found, = predict_detections(model, [{"image": image}], preprocessing, tile_size=32,
                                max_detections=4)
    # one box per tile, at (8..16) inside each: the two rows of tiles overlap and merge
    expected = {(8, 8, 16, 16), (8, 16, 16, 24), (40, 8, 48, 16), (40, 16, 48, 24)}
    got = {tuple(np.round(b).astype(int)) for b in found["boxes"]}
    assert got <= expected and len(got) == 4
    assert (found["labels"] == 0).all() and (found["scores"] > 0.99).all()
    whole, = predict_detections(model, [{"image": image}], preprocessing, max_detections=4)
    np.testing.assert_allclose(whole["boxes"][0], [16, 10, 32, 20], atol=1e-3)


def test_tiling_clips_boxes_to_each_tile_and_needs_an_image_array():
    image = np.zeros((20, 30, 3), "uint8")
    example = {"image": image, "boxes": [[5, 5, 25, 15]], "labels": [0], "id": "x"}
    tiles = tile_examples([example], 16, overlap=0.0, min_visible=0.3)
    assert [t["id"] for t in tiles] == ["x@0,0", "x@14,0", "x@0,4", "x@14,4"]
    np.testing.assert_allclose(tiles[0]["boxes"], [[5, 5, 16, 15]])
    with pytest.raises(ValueError, match="'x'.*not a uint8 array.*load="):
        tile_examples([dict(example, image="x.png")], 16)

"""SSD decoding and class-aware NMS inside the model (keras_coordatt.tasks.postprocess)."""

import numpy as np
import pytest
from keras import ops

from keras_coordatt.tasks import SSDAnchors
from keras_coordatt.tasks import SSDPostprocess
from keras_coordatt.tasks import detector
from keras_coordatt.tasks import encode_boxes
from keras_coordatt.tasks.postprocess import greedy_nms

# 2x2 positions, 2 boxes each: 8 anchors
ANCHORS = SSDAnchors(image_size=8, feature_sizes=(2,), steps=(4,), min_sizes=(2,),
                     max_sizes=(4,), aspect_ratios=((),))
A = 8


def box(x, y, w, h):
    return [x, y, x + w, y + h]


def logits_for(probabilities, activation):
    """Logits whose scores are ``probabilities`` (A, C) under ``activation``."""
    p = np.asarray(probabilities, "float64")
    if activation == "softmax":
        rows = np.concatenate([1 - p.sum(-1, keepdims=True), p], -1)
        return np.log(np.maximum(rows, 1e-30)).astype("float32")
    p = np.clip(p, 1e-12, 1 - 1e-7)
    return np.concatenate([np.zeros_like(p[:, :1]), np.log(p / (1 - p))], -1).astype("float32")


def detect(boxes, probabilities, activation="softmax", **kwargs):
    """Runs SSDPostprocess on one image whose anchors decode to ``boxes`` with these scores."""
    boxes = np.asarray(boxes, "float32")
    padded = np.tile(np.array([box(0.9, 0.9, 0.05, 0.05)], "float32"), (A, 1))
    padded[: len(boxes)] = boxes
    scores = np.zeros((A, np.shape(probabilities)[1]))
    scores[: len(probabilities)] = probabilities
    offsets = ops.convert_to_numpy(encode_boxes(padded, ANCHORS.boxes()))
    layer = SSDPostprocess(ANCHORS, activation=activation, **kwargs)
    out = layer({"boxes": offsets[None], "classes": logits_for(scores, activation)[None]})
    return {k: ops.convert_to_numpy(v)[0] for k, v in out.items()}


ACTIVATIONS = pytest.mark.parametrize("activation", ["softmax", "sigmoid"])


@ACTIVATIONS
def test_a_duplicate_above_the_iou_threshold_is_suppressed_one_below_is_kept(activation):
    # IoU([0,0,.5,.5], [.1,0,.6,.5]) = 0.4 / 0.6 = 0.667; with [.3,0,.8,.5]: 0.2 / 0.8 = 0.25
    boxes = [box(0, 0, .5, .5), box(.1, 0, .5, .5), box(.3, 0, .5, .5)]
    out = detect(boxes, [[0.9, 0], [0.8, 0], [0.7, 0]], activation, iou_threshold=0.45,
                 max_detections=5)
    assert out["count"] == 2
    np.testing.assert_allclose(out["boxes"][:2], np.array(boxes)[[0, 2]], atol=1e-5)
    np.testing.assert_allclose(out["scores"][:2], [0.9, 0.7], atol=1e-5)
    np.testing.assert_array_equal(out["classes"], [0, 0, 0, 0, 0])
    # a threshold above 0.667 keeps all three, in score order
    out = detect(boxes, [[0.9, 0], [0.8, 0], [0.7, 0]], activation, iou_threshold=0.7,
                 max_detections=5)
    assert out["count"] == 3
    np.testing.assert_allclose(out["scores"][:3], [0.9, 0.8, 0.7], atol=1e-5)


@ACTIVATIONS
def test_overlapping_boxes_of_different_classes_are_both_kept(activation):
    boxes = [box(.2, .2, .5, .5), box(.21, .2, .5, .5)]  # IoU 0.96
    out = detect(boxes, [[0.6, 0.1], [0.05, 0.7]], activation, max_detections=4)
    # each box's weaker class is suppressed by the other box's stronger one of that class
    assert out["count"] == 2
    np.testing.assert_array_equal(out["classes"], [1, 0, 0, 0])
    np.testing.assert_allclose(out["scores"], [0.7, 0.6, 0, 0], atol=1e-5)
    np.testing.assert_allclose(out["boxes"][:2], np.array(boxes)[[1, 0]], atol=1e-5)
    # with the same class, only the better one stays
    out = detect(boxes, [[0.6, 0], [0.7, 0]], activation, max_detections=4)
    assert out["count"] == 1


@ACTIVATIONS
def test_only_scores_above_the_threshold_count_and_the_rest_is_zero_padding(activation):
    boxes = [box(0, 0, .2, .2), box(.5, .5, .2, .2), box(.1, .6, .2, .2)]
    out = detect(boxes, [[0, 0.3], [0.2, 0], [0.26, 0]], activation, score_threshold=0.25,
                 max_detections=6)
    assert out["count"] == 2
    np.testing.assert_array_equal(out["classes"], [1, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(out["scores"], [0.3, 0.26, 0, 0, 0, 0], atol=1e-5)
    np.testing.assert_allclose(out["boxes"][:2], np.array(boxes)[[0, 2]], atol=1e-5)
    assert not out["boxes"][2:].any()
    assert out["boxes"].dtype == np.float32 and out["scores"].dtype == np.float32
    assert out["classes"].dtype == np.int32 and out["count"].dtype == np.int32


def test_max_detections_keeps_the_best_and_candidates_limit_what_enters_nms():
    boxes = [box(0.1 * i, 0.1 * i, 0.1, 0.1) for i in range(6)]  # disjoint
    probabilities = [[0.5 + 0.05 * i] for i in range(6)]
    out = detect(boxes, probabilities, max_detections=3)
    assert out["count"] == 3
    np.testing.assert_allclose(out["scores"], [0.75, 0.7, 0.65], atol=1e-5)
    np.testing.assert_allclose(out["boxes"], np.array(boxes)[[5, 4, 3]], atol=1e-5)
    out = detect(boxes, probabilities, max_detections=5, candidates=2)
    assert out["count"] == 2
    np.testing.assert_allclose(out["scores"], [0.75, 0.7, 0, 0, 0], atol=1e-5)


def test_boxes_are_clipped_to_the_image_and_one_outside_it_is_no_detection():
    out = detect([[-0.2, 0.5, 0.4, 1.3], [1.1, 0.2, 1.3, 0.4]], [[0.8], [0.9]], max_detections=2)
    np.testing.assert_allclose(out["boxes"], [[0, 0.5, 0.4, 1], [0, 0, 0, 0]], atol=1e-5)
    np.testing.assert_allclose(out["scores"], [0.8, 0], atol=1e-5)
    assert out["count"] == 1


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="activation='relu'"):
        SSDPostprocess(ANCHORS, activation="relu")
    with pytest.raises(ValueError, match="max_detections must be a positive int"):
        SSDPostprocess(ANCHORS, max_detections=0)
    with pytest.raises(ValueError, match="one row per anchor \\(8\\)"):
        SSDPostprocess(ANCHORS)({"boxes": np.zeros((1, 9, 4)), "classes": np.zeros((1, 9, 3))})
    with pytest.raises(ValueError, match="lacks \\['classes'\\]"):
        SSDPostprocess(ANCHORS)({"boxes": np.zeros((1, 8, 4))})


# --- against a plain NumPy reference ---

def numpy_iou(a, b):
    width = np.maximum(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0)
    height = np.maximum(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0)
    inter = width * height
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def reference_detections(boxes, scores, score_threshold, iou_threshold, max_detections,
                         candidates):
    """Per-class greedy NMS over the ``candidates`` best (anchor, class) pairs, one image."""
    num_classes = scores.shape[1]
    order = np.argsort(-scores.reshape(-1), kind="stable")[:candidates]
    kept = []
    for flat in order:
        anchor, cls = divmod(int(flat), num_classes)
        if scores[anchor, cls] <= score_threshold or len(kept) == max_detections:
            break
        same = [a for a, c in kept if c == cls]
        if same and numpy_iou(boxes[anchor], boxes[same]).max() > iou_threshold:
            continue
        kept.append((anchor, cls))
    return kept


def numpy_decode(offsets, anchors, variances=(0.1, 0.1, 0.2, 0.2)):
    x = anchors[:, 0] + offsets[..., 0] * variances[0] * anchors[:, 2]
    y = anchors[:, 1] + offsets[..., 1] * variances[1] * anchors[:, 3]
    w = anchors[:, 2] * np.exp(offsets[..., 2] * variances[2])
    h = anchors[:, 3] * np.exp(offsets[..., 3] * variances[3])
    return np.clip(np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], -1), 0, 1)


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_the_layer_equals_a_numpy_greedy_nms_on_random_inputs(activation, rng):
    anchors = SSDAnchors(image_size=96, feature_sizes=(6, 3, 2, 1, 1, 1),
                         steps=(16, 32, 48, 96, 96, 96), min_sizes=(13, 27, 40, 54, 67, 81),
                         max_sizes=(27, 40, 54, 67, 81, 94))
    num_anchors, num_classes, batch = len(anchors.boxes()), 2, 3
    offsets = rng.normal(0, 1, (batch, num_anchors, 4)).astype("float32")
    offsets[..., 2:] += 6  # boxes e times their anchors: they overlap, NMS has work
    logits = rng.normal(0, 2, (batch, num_anchors, num_classes + 1)).astype("float32")
    if activation == "softmax":
        logits[..., 0] += 3  # background mostly wins
    else:
        logits[..., 1:] -= 3
    offsets[:, :20, 0] = 100.0  # confident boxes moved off the image
    logits[:, :20, 1] += 8.0
    settings = dict(score_threshold=0.3, iou_threshold=0.4, max_detections=60, candidates=150)
    out = SSDPostprocess(anchors, activation=activation, **settings)(
        {"boxes": offsets, "classes": logits})
    out = {k: ops.convert_to_numpy(v) for k, v in out.items()}
    boxes = numpy_decode(offsets.astype("float64"), anchors.boxes().astype("float64"))
    if activation == "softmax":
        e = np.exp(logits - logits.max(-1, keepdims=True))
        scores = (e / e.sum(-1, keepdims=True))[..., 1:]
    else:
        scores = 1 / (1 + np.exp(-logits[..., 1:].astype("float64")))
    solid = (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
    assert not solid.all()  # some boxes fall outside the image: never detected
    scores = np.where(solid[..., None], scores, 0.0)
    for image in range(batch):
        kept = reference_detections(boxes[image], scores[image], **settings)
        n = len(kept)
        print(f"image {image}: {n} detections")
        # some suppressed, some below the threshold, padding left
        assert 10 < n < min(60, (scores[image] > 0.3).sum() - 10)
        assert out["count"][image] == n
        anchor, cls = np.array(kept).T
        np.testing.assert_array_equal(out["classes"][image, :n], cls)
        np.testing.assert_allclose(out["scores"][image, :n], scores[image, anchor, cls], atol=1e-5)
        np.testing.assert_allclose(out["boxes"][image, :n], boxes[image, anchor], atol=1e-5)
        assert not out["boxes"][image, n:].any() and not out["scores"][image, n:].any()


def test_the_keras_ops_greedy_nms_equals_the_numpy_one(rng):
    # The JAX / PyTorch path, run here through keras.ops on any backend.
    xy = rng.uniform(0, 0.8, (2, 60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.05, 0.3, (2, 60, 2))], -1).astype("float32")
    scores = rng.uniform(0, 1, (2, 60)).astype("float32")
    keep, count = greedy_nms(boxes, scores, 40, 0.3, 0.1)
    keep, count = ops.convert_to_numpy(keep), ops.convert_to_numpy(count)
    for image in range(2):
        kept = reference_detections(boxes[image], scores[image][:, None], 0.1, 0.3, 40, 60)
        assert 5 < len(kept) < 40
        assert count[image] == len(kept)
        np.testing.assert_array_equal(keep[image, :len(kept)], [a for a, _ in kept])
        assert not keep[image, len(kept):].any()


# --- the detector model ---

def small_ssd(num_classes=3, side=96, attention="ca", seed=0):
    """A small SSDLite with random weights that still detects: settled BatchNorm, class biases."""
    import keras

    from keras_coordatt.models import MobileNetV2
    from keras_coordatt.tasks import SSDLite

    keras.utils.set_random_seed(seed)
    backbone = MobileNetV2(input_shape=(side, side, 3), include_top=False, alpha=0.35,
                           attention=attention)
    model = SSDLite(backbone, num_classes=num_classes)
    # Fresh BatchNorm statistics (mean 0, variance 1) let activations vanish
    # through the network; one training-mode pass at momentum 0 sets real ones.
    norms = [layer for layer in model._flatten_layers(include_self=False)
             if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    images = np.random.default_rng(1).uniform(-1, 1, (4, side, side, 3)).astype("float32")
    model(images, training=True)
    for layer in norms:
        layer.momentum = 0.99
    for layer in model.layers:
        if layer.name.startswith("ssd_box_") and layer.name.endswith("_conv"):
            kernel, bias = layer.get_weights()  # offsets of a trained model's size
            layer.set_weights([kernel * 0.2, bias])
        if layer.name.startswith("ssd_class_") and layer.name.endswith("_conv"):
            kernel, bias = layer.get_weights()  # objects about as likely as background
            bias = bias.reshape(-1, num_classes + 1)
            bias[:, 0] = 1.0
            layer.set_weights([kernel * 0.5, bias.reshape(-1)])
    return model


def test_a_detector_model_round_trips_through_a_keras_file(tmp_path, rng):
    import keras

    ssd = small_ssd()
    model = detector(ssd, score_threshold=0.05, max_detections=20, activation="softmax")
    images = rng.uniform(-1, 1, (2, 96, 96, 3)).astype("float32")
    expected = model.predict(images, verbose=0)
    assert expected["count"].min() > 0
    assert model.output["classes"].dtype == "int32"
    path = tmp_path / "detector.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    layer = loaded.get_layer("ssd_postprocess")
    assert layer.anchors == ssd.anchors and layer.max_detections == 20
    got = loaded.predict(images, verbose=0)
    for key in ("boxes", "scores"):
        np.testing.assert_allclose(got[key], expected[key], atol=1e-6)
    for key in ("classes", "count"):
        np.testing.assert_array_equal(got[key], expected[key])


def test_detector_needs_anchors():
    import keras

    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="plain")
    with pytest.raises(ValueError, match="'plain' has no .anchors"):
        detector(plain)

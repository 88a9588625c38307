"""SSD anchors, matching and box coding (keras_coordatt.tasks.anchors)."""

import numpy as np
import pytest
from keras import ops

from keras_coordatt.tasks import SSDAnchors
from keras_coordatt.tasks import decode_boxes
from keras_coordatt.tasks import encode_boxes
from keras_coordatt.tasks import match_anchors


def xyxy(center_xywh):
    x, y, w, h = np.moveaxis(np.asarray(center_xywh, "float32"), -1, 0)
    return np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], -1)


def test_ssdlite320_anchors_follow_the_papers_config():
    anchors = SSDAnchors()
    boxes = anchors.boxes()
    # 20x20, 10x10, 5x5, 3x3, 2x2 maps with 6 boxes, 1x1 with 4
    assert boxes.shape == (6 * (400 + 100 + 25 + 9 + 4) + 4, 4)
    first = boxes[:6]
    np.testing.assert_allclose(first[:, :2], 8 / 320)  # the first cell's centre: half a step
    np.testing.assert_allclose(first[0, 2:], 45 / 320, rtol=1e-6)  # min size
    np.testing.assert_allclose(first[1, 2:], np.sqrt(45 * 90) / 320, rtol=1e-6)
    np.testing.assert_allclose(first[2, 2] / first[2, 3], 2.0, rtol=1e-5)  # ratio 2, wide
    np.testing.assert_allclose(first[3, 3] / first[3, 2], 2.0, rtol=1e-5)  # and tall
    np.testing.assert_allclose(first[4, 2] / first[4, 3], 3.0, rtol=1e-5)
    last = boxes[-4:]  # the 1x1 map: centred, min 270, sqrt(270 * 315), ratio 2 only
    np.testing.assert_allclose(last[:, :2], 0.5)
    np.testing.assert_allclose(last[0, 2:], 270 / 320, rtol=1e-6)
    assert boxes.min() >= 0 and boxes.max() <= 1  # clipped


def test_anchor_settings_must_cover_every_map():
    with pytest.raises(ValueError, match="6 feature_sizes but \\{'min_sizes': 5\\}"):
        SSDAnchors(min_sizes=(45, 90, 135, 180, 225))
    with pytest.raises(ValueError, match="map 0 has min size 100 and max size 90"):
        SSDAnchors(min_sizes=(100, 90, 135, 180, 225, 270))


def test_matching_takes_overlaps_forces_best_anchors_and_ignores_padding():
    anchors = np.array([[0.25, 0.25, 0.5, 0.5],    # top-left quarter
                        [0.75, 0.75, 0.5, 0.5],    # bottom-right quarter
                        [0.5, 0.5, 0.2, 0.2],      # small, centred
                        [0.9, 0.1, 0.2, 0.2]], "float32")
    truth = np.array([
        xyxy([0.26, 0.25, 0.5, 0.5]),   # IoU 0.96 with anchor 0
        xyxy([0.5, 0.5, 0.05, 0.05]),   # tiny: IoU 0.0625 with anchor 2 at best, forced there
        [-1, -1, -1, -1],               # padding
    ], "float32")
    labels = np.array([3, 7, -1])
    boxes, classes = match_anchors(truth, labels, anchors)
    classes = ops.convert_to_numpy(classes)
    np.testing.assert_array_equal(classes, [3, 0, 7, 0])
    np.testing.assert_allclose(ops.convert_to_numpy(boxes)[[0, 2]], truth[[0, 1]])


def test_an_anchor_above_the_threshold_for_two_truths_takes_the_larger_overlap():
    anchors = np.array([[0.5, 0.5, 0.4, 0.4], [0.1, 0.1, 0.1, 0.1], [0.9, 0.9, 0.1, 0.1]],
                       "float32")
    truth = np.array([xyxy([0.52, 0.5, 0.4, 0.4]), xyxy([0.45, 0.5, 0.4, 0.4]),
                      xyxy([0.1, 0.1, 0.1, 0.1])], "float32")
    # truth 0 (IoU 0.90) beats truth 1 (IoU 0.78) for anchor 0 and is forced there too;
    # truth 1 has no anchor of its own, which is what matching without a second pass gives.
    _, classes = match_anchors(truth, np.array([1, 2, 5]), anchors)
    np.testing.assert_array_equal(ops.convert_to_numpy(classes), [1, 5, 0])


def test_box_coding_round_trips_and_uses_the_variances():
    anchors = SSDAnchors().boxes()[:50]
    rng = np.random.default_rng(0)
    centres = anchors[:, :2] + rng.uniform(-0.05, 0.05, (50, 2))
    sizes = anchors[:, 2:] * rng.uniform(0.5, 2.0, (50, 2))
    truth = xyxy(np.concatenate([centres, sizes], -1))
    offsets = encode_boxes(truth, anchors)
    np.testing.assert_allclose(ops.convert_to_numpy(decode_boxes(offsets, anchors)), truth,
                               atol=1e-5)
    # a box shifted right by a tenth of its anchor's width, twice as tall: offsets (1, 0, 0, log 2 / 0.2)
    anchor = np.array([[0.5, 0.5, 0.2, 0.2]], "float32")
    shifted = xyxy([[0.52, 0.5, 0.2, 0.4]])
    np.testing.assert_allclose(ops.convert_to_numpy(encode_boxes(shifted, anchor)),
                               [[1.0, 0.0, 0.0, np.log(2) / 0.2]], atol=1e-4)


# --- the SSDLite320 network (keras_coordatt.tasks.ssdlite) ---

PAPER_SSDLITE_PARAMS = {"none": 4.3e6, "se": 4.7e6, "cbam": 4.7e6, "ca": 4.8e6}  # COCO, 80 + bg


@pytest.mark.parametrize("attention", sorted(PAPER_SSDLITE_PARAMS))
def test_ssdlite320_outputs_one_prediction_per_anchor_near_the_papers_count(attention, capsys):
    from keras_coordatt.models import MobileNetV2
    from keras_coordatt.tasks.ssdlite import SSDLite

    backbone = MobileNetV2(input_shape=(320, 320, 3), include_top=False, attention=attention)
    model = SSDLite(backbone, num_classes=80)
    assert model.output["boxes"].shape[1:] == (3232, 4)
    assert model.output["classes"].shape[1:] == (3232, 81)
    np.testing.assert_allclose(model.anchors.boxes(), SSDAnchors().boxes())
    params = model.count_params()
    print(f"SSDLite320 + {attention}: {params:,} parameters, paper {PAPER_SSDLITE_PARAMS[attention]:,.0f}")
    # The paper rounds to 0.1M: the extra layers' expansions 0.2/0.5/0.5/0.5 (the paper's
    # detection code) give 4.35M / 4.74M / 4.74M / 4.80M, each within 1.3% of its figure.
    assert abs(params / PAPER_SSDLITE_PARAMS[attention] - 1) < 0.013


def test_ssdlite_scales_the_anchors_to_the_input_and_refuses_mismatches():
    from keras_coordatt.models import MobileNetV2
    from keras_coordatt.tasks.ssdlite import SSDLite

    backbone = MobileNetV2(input_shape=(160, 160, 3), include_top=False, alpha=0.35)
    model = SSDLite(backbone, num_classes=2)
    assert model.anchors.feature_sizes == (10, 5, 3, 2, 1, 1)
    outputs = model(np.ones((1, 160, 160, 3), "float32"))
    assert tuple(outputs["boxes"].shape) == (1, 6 * (100 + 25 + 9 + 4 + 1) + 4, 4)
    assert model.output["classes"].shape[1:] == (6 * (100 + 25 + 9 + 4 + 1) + 4, 3)
    with pytest.raises(ValueError, match="anchors for feature maps \\(20, 10, 5, 3, 2, 1\\), but "
                                         "the network's maps are \\(10, 5, 3, 2, 1, 1\\)"):
        SSDLite(backbone, num_classes=2, anchors=SSDAnchors())
    dilated = MobileNetV2(input_shape=(160, 160, 3), include_top=False, alpha=0.35,
                          output_stride=16)
    with pytest.raises(ValueError, match="has no \\['P5'\\] feature maps"):
        SSDLite(dilated, num_classes=2)


# --- SSD losses (keras_coordatt.tasks.ssd_loss) ---


def numpy_log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_multibox_loss_keeps_three_hardest_negatives_per_positive_in_each_image():
    from keras_coordatt.tasks.ssd_loss import multibox_loss

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 12, 4)).astype("float32")
    targets = np.zeros((2, 12), "int32")
    targets[0, 3] = 2          # image 0: one positive -> its 3 hardest negatives count
    targets[1, 5] = -1         # image 1: no positive (one ignored anchor) -> no negatives count
    box_targets = rng.normal(size=(2, 12, 4)).astype("float32")
    offsets = box_targets.copy()
    offsets[0, 3] += [0.5, -2.0, 0.0, 0.0]  # smooth L1: 0.125 + 1.5
    classification, box = multibox_loss(targets, box_targets, logits, offsets)

    log_p = numpy_log_softmax(logits[0])
    background = -log_p[:, 0]
    background[3] = -np.inf
    hardest = np.argsort(-background)[:3]
    expected = -log_p[3, 2] - log_p[hardest, 0].sum()
    np.testing.assert_allclose(float(classification), expected, rtol=1e-5)
    np.testing.assert_allclose(float(box), 0.125 + 1.5, rtol=1e-5)


def test_focal_loss_matches_its_formula_and_ignores_the_background_column():
    from keras_coordatt.tasks.ssd_loss import focal_loss

    rng = np.random.default_rng(2)
    logits = rng.normal(size=(1, 6, 4)).astype("float32")  # background + 3 classes
    targets = np.array([[0, 1, 3, 0, -1, 2]])
    zeros = np.zeros((1, 6, 4), "float32")
    classification, box = focal_loss(targets, zeros, logits, zeros)
    labels = np.eye(4)[np.maximum(targets, 0)][..., 1:]
    p = 1 / (1 + np.exp(-logits[..., 1:]))
    p_t = np.where(labels == 1, p, 1 - p)
    alpha_t = np.where(labels == 1, 0.25, 0.75)
    per_value = -alpha_t * (1 - p_t) ** 2 * np.log(p_t)
    per_value[0, 4] = 0  # the ignored anchor
    np.testing.assert_allclose(float(classification), per_value.sum() / 3, rtol=1e-5)
    assert float(box) == 0.0
    changed = logits.copy()
    changed[..., 0] += 5.0  # the background column plays no part
    np.testing.assert_allclose(float(focal_loss(targets, zeros, changed, zeros)[0]),
                               float(classification), rtol=1e-6)


# --- DeepLabV3 (keras_coordatt.tasks.deeplab) ---

PAPER_DEEPLAB_PARAMS = {"none": 4.5e6, "ca": 5.0e6}  # Pascal VOC, 21 classes


@pytest.mark.parametrize("attention", sorted(PAPER_DEEPLAB_PARAMS))
def test_deeplabv3_counts_match_the_paper_with_regular_aspp_on_the_320_channel_map(
        attention, capsys):
    """The paper's text says separable ASPP convs; its counts match regular ones on block 16.

    Separable 3x3 convs on the final 1280-channel map: 4.29M / 4.73M (none / CA), 5% under
    the paper; regular ones there: 12.1M. Regular 3x3 convs on the 320-channel output of
    the last block: 4.56M / 5.00M, within 1.3%.
    """
    from keras_coordatt.models import MobileNetV2
    from keras_coordatt.tasks.deeplab import DeepLabV3

    backbone = MobileNetV2(input_shape=(320, 320, 3), include_top=False, attention=attention,
                           output_stride=16)
    model = DeepLabV3(backbone, 21, separable=False, feature="block_16_project_BN")
    assert model.output.shape[1:] == (320, 320, 21)
    assert model.get_layer("aspp_rate6_conv").dilation_rate == (6, 6)
    params = model.count_params()
    separable = DeepLabV3(backbone, 21).count_params()
    print(f"DeepLabV3 + {attention}: {params:,} (regular ASPP on 320 ch), {separable:,} "
          f"(separable on 1280 ch); paper {PAPER_DEEPLAB_PARAMS[attention]:,.0f}")
    assert abs(params / PAPER_DEEPLAB_PARAMS[attention] - 1) < 0.02
    assert separable < params


def test_deeplabv3_takes_the_rates_of_its_output_stride():
    from keras_coordatt.models import MobileNetV2
    from keras_coordatt.tasks.deeplab import DeepLabV3

    backbone = MobileNetV2(input_shape=(64, 64, 3), include_top=False, alpha=0.35,
                           output_stride=8)
    model = DeepLabV3(backbone, 3)
    assert model.get_layer("aspp_rate36_depthwise").dilation_rate == (36, 36)
    logits = ops.convert_to_numpy(model(np.ones((2, 64, 64, 3), "float32")))
    assert logits.shape == (2, 64, 64, 3) and np.isfinite(logits).all()
    plain = MobileNetV2(input_shape=(64, 64, 3), include_top=False, alpha=0.35)
    with pytest.raises(ValueError, match="output stride 32; the paper's rates exist for \\[8, 16\\]"):
        DeepLabV3(plain, 3)

"""Detection and segmentation scores (keras_coordatt.tasks.evaluation) on hand-made cases."""

import json
import sys

import keras
import numpy as np
import pytest

from keras_coordatt.tasks.evaluation import coco_metrics
from keras_coordatt.tasks.evaluation import mean_iou
from keras_coordatt.tasks.evaluation import plot_precision_recall
from keras_coordatt.tasks.evaluation import precision_recall
from keras_coordatt.tasks.evaluation import voc_map


def truth(boxes, labels=None, **flags):
    boxes = np.asarray(boxes, "float32").reshape(-1, 4)
    labels = np.zeros(len(boxes), "int64") if labels is None else np.asarray(labels)
    return {"boxes": boxes, "labels": labels, **{k: np.asarray(v) for k, v in flags.items()}}


def found(boxes, scores, labels=None):
    boxes = np.asarray(boxes, "float32").reshape(-1, 4)
    labels = np.zeros(len(boxes), "int64") if labels is None else np.asarray(labels)
    return {"boxes": boxes, "labels": labels, "scores": np.asarray(scores, "float32")}


A, B = [0, 0, 10, 10], [20, 20, 30, 30]
FAR = [50, 50, 60, 60]


# ---------------------------------------------------------------- Pascal VOC


def test_voc_perfect_detections_give_ap_one_for_every_class():
    gts = [truth([A, B], [0, 1]), truth([B], [1])]
    dets = [found([A, B], [0.9, 0.8], [0, 1]), found([B], [0.7], [1])]
    for use_07 in (True, False):
        result = voc_map(gts, dets, use_07_metric=use_07, class_names=["cat", "dog"])
        assert result["AP_per_class"] == {"cat": 1.0, "dog": 1.0}
        assert result["mAP"] == 1.0
    json.dumps(result)


def test_voc_one_of_two_found_after_a_false_positive():
    gts = [truth([A, B])]
    # ranked: the false positive (tp 0, fp 1: recall 0, precision 0), then A
    # (tp 1, fp 1: recall 0.5, precision 0.5); B is never found.
    dets = [found([FAR, A], [0.9, 0.8])]
    # VOC2007: at t = 0, 0.1, ..., 0.5 the best precision with recall >= t is
    # 0.5; at t = 0.6 .. 1.0 no point reaches the recall: 0. AP = 6 * 0.5 / 11.
    assert voc_map(gts, dets)["mAP"] == pytest.approx(6 * 0.5 / 11, abs=1e-12)
    # VOC2010: envelope 0.5 up to recall 0.5, then 0: area 0.5 * 0.5 = 0.25.
    assert voc_map(gts, dets, use_07_metric=False)["mAP"] == pytest.approx(0.25, abs=1e-12)
    # the same detections with the true one first: precision 1 up to recall 0.5
    dets = [found([FAR, A], [0.8, 0.9])]
    assert voc_map(gts, dets)["mAP"] == pytest.approx(6 / 11, abs=1e-12)
    assert voc_map(gts, dets, use_07_metric=False)["mAP"] == pytest.approx(0.5, abs=1e-12)


def test_voc_difficult_objects_are_neither_positives_nor_false_positives():
    dets = [found([B, FAR, A], [0.9, 0.8, 0.7])]
    # B difficult: its detection is ignored, leaving FP then TP over one
    # positive: recall [0, 1], precision [0, 0.5]; every 11-point sample 0.5.
    hard = [truth([A, B], difficult=[False, True])]
    assert voc_map(hard, dets)["mAP"] == pytest.approx(0.5, abs=1e-12)
    # B an ordinary object: TP, FP, TP over two positives: recall
    # [0.5, 0.5, 1], precision [1, 0.5, 2/3]: 6 samples of 1, 5 of 2/3.
    plain = [truth([A, B])]
    assert voc_map(plain, dets)["mAP"] == pytest.approx((6 + 5 * 2 / 3) / 11, abs=1e-12)
    # a class with only difficult objects has no AP and stays out of the mean
    mixed = [truth([A, B], [0, 1], difficult=[False, True])]
    result = voc_map(mixed, [found([A, B], [0.9, 0.9], [0, 1])])
    assert result["AP_per_class"] == {0: 1.0}
    assert result["classes_without_ground_truth"] == [1] and result["mAP"] == 1.0


def test_voc_duplicates_and_the_iou_threshold_edge():
    # two detections on A: the second is a duplicate, a false positive
    dets = [found([A, A], [0.9, 0.8])]
    curve = voc_map([truth([A])], dets, use_07_metric=False)
    assert curve["mAP"] == 1.0  # precision 1 at recall 1 comes first
    assert voc_map([truth([A, B])], [found([A, A, B], [0.9, 0.8, 0.7])],
                   use_07_metric=False)["mAP"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    # IoU exactly 0.5 (50 / 100) is a match at 0.5; 49 / 100 is not
    assert voc_map([truth([A])], [found([[0, 0, 10, 5]], [1.0])])["mAP"] == 1.0
    assert voc_map([truth([A])], [found([[0, 0, 10, 4.9]], [1.0])])["mAP"] == 0.0
    assert voc_map([truth([A])], [found([[0, 0, 10, 4.9]], [1.0])],
                   iou_threshold=0.45)["mAP"] == 1.0


def test_voc_precision_is_interpolated_by_its_envelope():
    C = [40, 0, 50, 10]
    # TP, FP, FP, TP, TP over 3 objects: recall 1/3, 1/3, 1/3, 2/3, 1 and
    # precision 1, 1/2, 1/3, 1/2, 3/5.
    gts = [truth([A, B, C])]
    dets = [found([A, FAR, FAR, B, C], [0.9, 0.8, 0.7, 0.6, 0.5])]
    # VOC2010: the envelope is 1 up to recall 1/3, then 3/5 (not the 1/2
    # reached at 2/3): 1/3 * 1 + 2/3 * 3/5.
    area = voc_map(gts, dets, use_07_metric=False)["mAP"]
    assert area == pytest.approx(1 / 3 + 2 / 3 * 3 / 5, abs=1e-12)
    # VOC2007: t = 0 .. 0.3 -> 1 (4 samples), t = 0.4 .. 1.0 -> 3/5 (7 samples)
    assert voc_map(gts, dets)["mAP"] == pytest.approx((4 + 7 * 3 / 5) / 11, abs=1e-12)


def test_voc_greedy_matching_takes_each_detections_best_overlap():
    # a detection takes the truth it overlaps most even if another is free
    gts = [truth([[0, 0, 10, 10], [6, 0, 16, 10]])]
    dets = [found([[2, 0, 12, 10], [0, 0, 9, 10]], [0.9, 0.8])]
    # first: IoU 80/120 with truth 0, 60/140 with truth 1 -> truth 0; second:
    # IoU 90/100 with truth 0 (taken: false positive), 30/130 with truth 1.
    result = voc_map(gts, dets, iou_threshold=0.4, use_07_metric=False)
    assert result["mAP"] == pytest.approx(0.5)


# ---------------------------------------------------------------- DeepForest


def test_deepforest_matching_is_one_to_one_and_optimal_where_greedy_is_not():
    # the case above: the assignment maximising the intersection area pairs
    # detection 0 with truth 1 (60, IoU 0.43) and detection 1 with truth 0
    # (90, IoU 0.9): 150 > 80 + 30. Both are above 0.4: everything matches.
    gts = [truth([[0, 0, 10, 10], [6, 0, 16, 10]])]
    dets = [found([[2, 0, 12, 10], [0, 0, 9, 10]], [0.9, 0.8])]
    result = precision_recall(gts, dets)
    assert (result["precision"], result["recall"]) == (1.0, 1.0)
    assert (result["true_positives"], result["false_positives"], result["false_negatives"]) == (
        2, 0, 0)
    # at 0.45 the 60 / 140 pair fails: DeepForest does not re-match it
    result = precision_recall(gts, dets, iou_threshold=0.45)
    assert (result["true_positives"], result["false_positives"], result["false_negatives"]) == (
        1, 1, 1)


def test_deepforest_assigns_by_intersection_area_not_iou():
    # one tree; a huge box covering it (intersection 100, IoU 100/900) and a
    # tight one (intersection 90, IoU 0.9). The assignment maximises the
    # intersection, so the huge box takes the tree and fails the IoU test.
    gts = [truth([A])]
    dets = [found([[0, 0, 30, 30], [0, 0, 10, 9]], [0.5, 0.9])]
    result = precision_recall(gts, dets)
    assert (result["true_positives"], result["false_positives"], result["false_negatives"]) == (
        0, 2, 1)
    # without the huge box the tight one matches
    assert precision_recall(gts, [found([[0, 0, 10, 9]], [0.9])])["recall"] == 1.0


def test_deepforest_threshold_is_strict_and_labels_are_ignored():
    # IoU exactly 0.4 (40 / 100) is not above 0.4
    gts = [truth([A], [0])]
    edge = [found([[0, 0, 10, 4]], [1.0], [3])]
    assert precision_recall(gts, edge)["true_positives"] == 0
    assert precision_recall(gts, [found([[0, 0, 10, 4.1]], [1.0], [3])])["true_positives"] == 1
    # labels and scores may be left out
    assert precision_recall([{"boxes": [A]}], [{"boxes": [A]}])["recall"] == 1.0


def test_deepforest_precision_and_recall_are_means_over_images():
    gts = [
        truth([A]),                                     # 1 tree, found: P 1, R 1
        truth([A, B, [40, 40, 50, 50]]),                # 3 trees, 1 found + 1 FP: P 1/2, R 1/3
        truth(np.zeros((0, 4))),                        # no trees: left out of the means
        truth([A, B, [0, 0, 0, 0]]),                    # 2 trees (+ an empty row), no predictions
    ]
    dets = [
        found([A], [0.9]),
        found([B, FAR], [0.9, 0.8]),
        found([FAR], [0.9]),
        found([A], [0.05]),                             # below the score threshold
    ]
    result = precision_recall(gts, dets, score_threshold=0.1)
    assert result["precision"] == pytest.approx((1 + 1 / 2) / 2)
    assert result["recall"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert (result["true_positives"], result["false_positives"], result["false_negatives"]) == (
        2, 2, 4)
    assert result["pooled_precision"] == pytest.approx(2 / 4)
    assert result["pooled_recall"] == pytest.approx(2 / 6)
    # with the low score kept, image 4 gets a true positive
    assert precision_recall(gts, dets)["true_positives"] == 3
    json.dumps(result)


def test_deepforest_empty_cases_follow_deepforest():
    nothing = precision_recall([truth([A])], [found(np.zeros((0, 4)), [])])
    assert np.isnan(nothing["precision"]) and nothing["recall"] == 0.0
    no_truth = precision_recall([truth(np.zeros((0, 4)))], [found([A], [0.9])])
    assert no_truth["precision"] == 0.0 and np.isnan(no_truth["recall"])
    assert no_truth["false_positives"] == 1


# ---------------------------------------------------------------- COCO


def medium(x=0.0):
    return [x, 0, x + 50, 50]  # area 2500: "medium" (32**2 .. 96**2)


def test_coco_perfect_detections():
    gts = [truth([medium(), medium(100)], [0, 1]), truth([medium(20)], [1])]
    dets = [found([medium(), medium(100)], [0.9, 0.8], [0, 1]), found([medium(20)], [0.7], [1])]
    result = coco_metrics(gts, dets, class_names=["tree", "dead"], category_ids=[7, 3])
    assert result["AP"] == pytest.approx(1.0) and result["AP_medium"] == pytest.approx(1.0)
    assert result["AR100"] == pytest.approx(1.0)
    assert result["AP_small"] == -1.0 and result["AP_large"] == -1.0  # no such objects
    assert all(isinstance(v, float) for v in result.values())
    json.dumps(result)


def test_coco_a_shifted_box_counts_at_iou_50_and_not_at_75():
    # shifted by 12: IoU (50 - 12) / (50 + 12) = 0.613, a match at the
    # thresholds 0.50, 0.55, 0.60 of COCO's ten (0.50:0.05:0.95).
    result = coco_metrics([truth([medium()])], [found([medium(12)], [0.9])])
    assert result["AP50"] == pytest.approx(1.0)
    assert result["AP75"] == pytest.approx(0.0)
    assert result["AP"] == pytest.approx(3 / 10)
    assert result["AR100"] == pytest.approx(3 / 10)


def test_coco_crowd_or_difficult_objects_are_not_required():
    dets = [found([medium()], [0.9])]
    flagged = coco_metrics([truth([medium(), medium(100)], difficult=[False, True])], dets)
    assert flagged["AP"] == pytest.approx(1.0)
    # as an ordinary object it is missed: precision 1 at the 51 recall
    # points 0.00 .. 0.50 of COCO's 101, 0 after
    plain = coco_metrics([truth([medium(), medium(100)])], dets)
    assert plain["AP"] == pytest.approx(51 / 101)
    assert coco_metrics([truth([medium(), medium(100)], iscrowd=[0, 1])], dets)["AP"] == (
        pytest.approx(1.0))


def test_coco_without_detections_gives_zeros():
    result = coco_metrics([truth([medium()])], [found(np.zeros((0, 4)), [])])
    assert set(result) >= {"AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR100"}
    assert set(result.values()) == {0.0}


def test_coco_says_how_to_install_pycocotools(monkeypatch):
    for name in ("pycocotools", "pycocotools.coco", "pycocotools.cocoeval"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match="pip install pycocotools"):
        coco_metrics([truth([A])], [found([A], [1.0])])


# ---------------------------------------------------------------- input errors


@pytest.mark.parametrize("function", [coco_metrics, voc_map, precision_recall])
def test_detection_inputs_are_checked(function):
    with pytest.raises(ValueError, match="ground_truth has 2 images but detections has 1"):
        function([truth([A]), truth([B])], [found([A], [1.0])])
    with pytest.raises(ValueError, match=r"detections\[1\]\['boxes'\] has shape \(1, 5\); need"):
        function([truth([A]), truth([B])], [found([A], [1.0]),
                                            {"boxes": [[0, 0, 1, 1, 1]], "labels": [0],
                                             "scores": [1.0]}])
    with pytest.raises(ValueError, match=r"ground_truth\[0\]\['boxes'\]\[1\] is .*x2 < x1"):
        function([truth([A, [5, 0, 4, 10]])], [found([A], [1.0])])
    with pytest.raises(ValueError, match="must be a list with one dict per image"):
        function(truth([A]), [found([A], [1.0])])


def test_label_and_score_arrays_must_match_the_boxes():
    with pytest.raises(ValueError, match=r"ground_truth\[0\]\['labels'\] has shape \(1,\) but its "
                                         r"boxes are \(2, 4\)"):
        voc_map([truth([A, B], [0])], [found([A], [1.0])])
    with pytest.raises(ValueError, match=r"detections\[0\] has no 'scores'"):
        voc_map([truth([A])], [{"boxes": [A], "labels": [0]}])
    with pytest.raises(ValueError, match="0-based integers"):
        voc_map([truth([A], [-1])], [found([A], [1.0])])
    with pytest.raises(ValueError, match="label 2 has no class: only 2 class_names"):
        coco_metrics([truth([A], [2])], [found([A], [1.0])], class_names=["a", "b"])


# ---------------------------------------------------------------- segmentation


def confusion(y_true, y_pred, num_classes, ignore):
    keep = y_true != ignore
    return np.bincount(num_classes * y_true[keep] + y_pred[keep],
                       minlength=num_classes ** 2).reshape(num_classes, num_classes)


def test_mean_iou_matches_a_numpy_confusion_matrix_and_keras():
    rng = np.random.default_rng(0)
    num_classes = 5  # class 4 never appears: it has no IoU and stays out of the mean
    y_true = rng.integers(0, 4, (3, 17, 13))
    y_pred = np.where(rng.random(y_true.shape) < 0.6, y_true, rng.integers(0, 4, y_true.shape))
    y_true[:, :2] = 255  # void border
    y_pred[:, :2] = 4 - 1  # whatever is predicted there does not count
    result = mean_iou(y_true, y_pred, num_classes)
    matrix = confusion(y_true.ravel(), y_pred.ravel(), num_classes, 255)
    np.testing.assert_array_equal(result["confusion_matrix"], matrix)
    hits = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - hits
    expected = {c: hits[c] / union[c] for c in range(4)}
    assert set(result["IoU_per_class"]) == {0, 1, 2, 3}
    for c, value in expected.items():
        assert result["IoU_per_class"][c] == pytest.approx(value, abs=1e-12)
    assert result["mIoU"] == pytest.approx(np.mean(list(expected.values())), abs=1e-12)
    assert result["pixel_accuracy"] == pytest.approx(hits.sum() / matrix.sum(), abs=1e-12)
    keras_metric = keras.metrics.MeanIoU(num_classes, ignore_class=255)
    keras_metric.update_state(y_true, y_pred)
    assert result["mIoU"] == pytest.approx(float(keras_metric.result()), abs=1e-6)
    json.dumps(result)


def test_mean_iou_takes_images_of_different_sizes_and_names():
    y_true = [np.array([[0, 1], [1, 255]]), np.array([[2, 2, 0]])]
    y_pred = [np.array([[0, 1], [0, 2]]), np.array([[2, 1, 0]])]
    # counted pixels (true, pred): (0,0) (1,1) (1,0) (2,2) (2,1) (0,0)
    # class 0: 2 hits, union 2 + 1 = 3; class 1: 1 hit, union 2 + 2 - 1 = 3;
    # class 2: 1 hit, union 2 + 1 - 1 = 2
    result = mean_iou(y_true, y_pred, 3, class_names=["bg", "leaf", "stem"])
    assert result["IoU_per_class"] == pytest.approx({"bg": 2 / 3, "leaf": 1 / 3, "stem": 1 / 2})
    assert result["mIoU"] == pytest.approx((2 / 3 + 1 / 3 + 1 / 2) / 3)
    assert result["pixel_accuracy"] == pytest.approx(4 / 6)
    perfect = mean_iou(y_true, y_true, 3)
    assert perfect["mIoU"] == 1.0 and perfect["pixel_accuracy"] == 1.0


def test_mean_iou_rejects_what_meaniou_would_silently_drop():
    y = np.zeros((1, 4, 4), "int64")
    with pytest.raises(ValueError, match=r"image 0: y_pred has 1 pixels of class \[3\], "
                                         r"outside 0..2"):
        mean_iou(y, np.where(np.eye(4)[None] * np.arange(4) == 3, 3, 0), 3)
    with pytest.raises(ValueError, match=r"y_true has 16 pixels of class \[7\], outside "
                                         r"0..2 or 255"):
        mean_iou(y + 7, y, 3)
    with pytest.raises(ValueError, match="float32; need integer class ids"):
        mean_iou(y, y.astype("float32"), 3)
    with pytest.raises(ValueError, match=r"image 0: y_true is \(4, 4\) but y_pred is \(4, 3\)"):
        mean_iou(y, y[:, :, :3], 3)
    with pytest.raises(ValueError, match="y_true has 1 images but y_pred has 2"):
        mean_iou(y, np.zeros((2, 4, 4), "int64"), 3)


# ---------------------------------------------------------------- plot


def test_precision_recall_plots_one_png_per_class(tmp_path):
    gts = [truth([A, B], [0, 1])]
    dets = [found([FAR, A, B], [0.9, 0.8, 0.7], [0, 0, 1])]
    paths = plot_precision_recall(gts, dets, tmp_path / "pr", class_names=["tree", "dead tree"])
    assert sorted(paths) == ["dead tree", "tree"]
    for path in paths.values():
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"

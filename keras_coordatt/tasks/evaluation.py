"""Detection and segmentation scores by the field's own protocols.

NumPy in, plain JSON-serialisable dicts of Python floats out.

- `coco_metrics`: COCO box AP/AR, computed by pycocotools' ``COCOeval``
  itself on ground truth and detections built in memory.
- `voc_map`: Pascal VOC mean AP (the devkit's matching and its 11-point or
  area AP).
- `precision_recall`: DeepForest's box precision and recall (one-to-one
  Hungarian matching, class-agnostic, averaged over images).
- `mean_iou`: segmentation mIoU through ``keras.metrics.MeanIoU``.
- `plot_precision_recall`: a VOC precision-recall curve per class as PNG.
- `detection_scores`: the three detection protocols at once, as the trainer
  and the demos report them.

Detection inputs are one entry per image, in the same order in both lists:
ground truth ``{"boxes": (N, 4) pixel xyxy, "labels": (N,) 0-based int,
optional "iscrowd" or "difficult": (N,) bool, optional "width", "height"}``
and detections ``{"boxes": (M, 4), "labels": (M,), "scores": (M,)}``.
Boxes are pixel edges (``x2 - x1`` is the width; no VOC-devkit "+1").
"""

import contextlib
import io
import os

import numpy as np

from keras_coordatt.tasks.boxes import box_intersection
from keras_coordatt.tasks.boxes import box_iou

PR_SCORE_THRESHOLD = 0.4  # detections counted for precision / recall (DeepForest's default)
COCO_STATS = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
              "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")


def coco_metrics(ground_truth, detections, class_names=None, category_ids=None):
    """COCO box AP and AR by pycocotools (``COCOeval``, ``iouType="bbox"``).

    The arrays become a COCO ground-truth object in memory (image ids 1..N,
    annotation areas = box areas, ``iscrowd`` from the ``"iscrowd"`` or
    ``"difficult"`` flags, so such objects are neither needed nor counted as
    false positives), the detections go through ``loadRes``, and
    ``evaluate``/``accumulate``/``summarize`` run with their printout
    captured; the numbers are ``COCOeval.stats``.

    Args:
        ground_truth: per image ``{"boxes", "labels"[, "iscrowd" |
            "difficult", "width", "height"]}`` (see the module docstring).
        detections: per image ``{"boxes", "labels", "scores"}``, same order.
        class_names: the class of each label, for the COCO categories.
        category_ids: the COCO category id of each label (default label + 1).

    Returns:
        ``{"AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1",
        "AR10", "AR100", "AR_small", "AR_medium", "AR_large"}``, floats in
        0..1 as pycocotools defines them (AP = mean over IoU 0.50:0.95 and
        the categories; AR100 at 100 detections per image); -1.0 where
        pycocotools has nothing to measure (e.g. ``AP_small`` with no small
        objects). With no detections at all pycocotools' ``loadRes`` fails;
        every value is 0.0 then.

    Raises:
        ImportError: pycocotools is missing.
        ValueError: the lists differ in length, an array has the wrong shape,
            a label has no category.
    """
    truths, found = _checked_pairs(ground_truth, detections)
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as error:
        raise ImportError("coco_metrics needs pycocotools: pip install pycocotools") from error
    num_classes = _number_of_classes(truths, found, class_names)
    if category_ids is None:
        category_ids = list(range(1, num_classes + 1))
    category_ids = [int(i) for i in category_ids]
    if len(category_ids) < num_classes or len(set(category_ids)) != len(category_ids):
        raise ValueError(f"coco_metrics: category_ids {category_ids} must give {num_classes} "
                         "distinct ids, one per label")
    names = list(class_names) if class_names is not None else [str(i) for i in
                                                               range(len(category_ids))]
    images, annotations, results = [], [], []
    for index, (truth, detection) in enumerate(zip(truths, found)):
        image_id = index + 1
        corner = np.concatenate([truth["boxes"][:, 2:], detection["boxes"][:, 2:]]).reshape(-1, 2)
        extent = np.ceil(corner.max(axis=0)) if len(corner) else (0, 0)
        images.append({"id": image_id,
                       "width": int(truth.get("width") or extent[0]),
                       "height": int(truth.get("height") or extent[1])})
        for box, label, crowd in zip(truth["boxes"], truth["labels"], truth["ignore"]):
            xywh = _xywh(box)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": category_ids[label], "bbox": xywh,
                                "area": xywh[2] * xywh[3], "iscrowd": int(crowd)})
        for box, label, score in zip(detection["boxes"], detection["labels"],
                                     detection["scores"]):
            results.append({"image_id": image_id, "category_id": category_ids[label],
                            "bbox": _xywh(box), "score": float(score)})
    if not results:
        return {name: 0.0 for name in COCO_STATS}
    printout = io.StringIO()
    with contextlib.redirect_stdout(printout):
        truth_coco = COCO()
        truth_coco.dataset = {
            "images": images, "annotations": annotations,
            "categories": [{"id": i, "name": names[k] if k < len(names) else str(k)}
                           for k, i in enumerate(category_ids)]}
        truth_coco.createIndex()
        evaluation = COCOeval(truth_coco, truth_coco.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {name: float(value) for name, value in zip(COCO_STATS, evaluation.stats)}


def voc_map(ground_truth, detections, iou_threshold=0.5, use_07_metric=True, class_names=None):
    """Pascal VOC mean average precision.

    The devkit's protocol, class by class: detections in descending score
    order each take the ground truth of their class they overlap most in
    their image; with IoU >= ``iou_threshold`` that is a true positive the
    first time and a false positive (duplicate) after, and ignored (neither)
    if that ground truth is "difficult"; below the threshold, or with no
    ground truth of the class, a false positive. Difficult objects are not
    counted as positives either. AP is the 11-point interpolated precision
    (VOC2007, ``use_07_metric=True``) or the area under the monotone
    precision envelope (VOC2010 on).

    Args:
        ground_truth: per image ``{"boxes", "labels"[, "difficult"]}``.
        detections: per image ``{"boxes", "labels", "scores"}``, same order.
        iou_threshold: the overlap a detection needs (VOC: 0.5).
        use_07_metric: 11-point AP (True) or area AP (False).
        class_names: if given, the keys of ``AP_per_class`` (else the labels).

    Returns:
        ``{"mAP", "AP_per_class": {class: AP}, "classes_without_ground_truth":
        [...]}``. Classes with no (non-difficult) ground truth have no AP and
        are left out of the mean and of ``AP_per_class``; ``mAP`` is NaN if
        no class has ground truth.
    """
    truths, found = _checked_pairs(ground_truth, detections)
    curves, missing = _voc_curves(truths, found, iou_threshold, class_names)
    per_class = {name: _voc_ap(recall, precision, use_07_metric)
                 for name, (recall, precision) in curves.items()}
    mean = float(np.mean(list(per_class.values()))) if per_class else float("nan")
    return {"mAP": mean, "AP_per_class": per_class, "classes_without_ground_truth": missing}


def detection_scores(examples, detections, class_names=None, category_ids=None):
    """COCO AP/AP50/AP75, VOC mAP@0.5 and precision / recall at IoU 0.4 in one dict.

    ``examples`` are the ground-truth images (dicts with ``"boxes"``,
    ``"labels"``, optional ``"difficult"``), ``detections`` their detections
    in the same order. Precision and recall count detections scoring at
    least ``PR_SCORE_THRESHOLD``. Returns ``{"AP", "AP50", "AP75", "coco",
    "voc_mAP50", "precision_at_iou0.4", "recall_at_iou0.4",
    "pr_score_threshold", "detections"}``.
    """
    truth = [{"boxes": np.asarray(e["boxes"], np.float32).reshape(-1, 4),
              "labels": np.asarray(e["labels"], np.int32),
              **({"difficult": np.asarray(e["difficult"], bool)} if "difficult" in e else {})}
             for e in examples]
    coco = coco_metrics(truth, detections, class_names=class_names, category_ids=category_ids)
    voc = voc_map(truth, detections, iou_threshold=0.5)
    confident = [{key: value[d["scores"] >= PR_SCORE_THRESHOLD] for key, value in d.items()}
                 for d in detections]
    pr = precision_recall(truth, confident, iou_threshold=0.4)
    return {"AP": coco["AP"], "AP50": coco["AP50"], "AP75": coco["AP75"], "coco": coco,
            "voc_mAP50": voc["mAP"], "precision_at_iou0.4": pr["precision"],
            "recall_at_iou0.4": pr["recall"], "pr_score_threshold": PR_SCORE_THRESHOLD,
            "detections": int(sum(len(d["scores"]) for d in detections))}


def precision_recall(ground_truth, detections, iou_threshold=0.4, score_threshold=0.0):
    """Box precision and recall by DeepForest's ``evaluate_boxes`` protocol.

    As DeepForest (``deepforest.evaluate`` with ``IoU.match_polygons``): per
    image, class-agnostic, predictions and ground truth are paired one to one
    by the Hungarian assignment (``scipy.optimize.linear_sum_assignment``)
    that maximises the total *intersection area* (not IoU), and a pair is a
    true positive when its IoU is strictly above ``iou_threshold``. So a
    large box that covers a small tree entirely can win the assignment and
    then fail the IoU test, as in DeepForest. Precision and recall are the
    means over the images with ground truth of each image's ``TP / predicted``
    and ``TP / true`` (an image without predictions adds recall 0 and no
    precision); images without ground truth are skipped by these means.
    Ground-truth rows that are all zeros (DeepForest's "empty image" marker)
    are dropped. Labels, "difficult" and "iscrowd" flags are not used.

    Args:
        ground_truth: per image ``{"boxes"}`` (other keys ignored).
        detections: per image ``{"boxes"[, "scores"]}``, same order.
        iou_threshold: DeepForest's default 0.4 (strict ``>``).
        score_threshold: detections scoring below it are dropped first
            (DeepForest drops them at prediction time, ``score_thresh``).

    Returns:
        ``{"precision", "recall"`` (DeepForest's per-image means),
        ``"true_positives", "false_positives", "false_negatives"`` (totals
        over all images, images without ground truth included),
        ``"pooled_precision", "pooled_recall"`` (from the totals)``}``. As in
        DeepForest: with no detections at all precision is NaN and recall 0;
        with no ground truth at all precision is 0 and recall NaN.
    """
    truths, found = _checked_pairs(ground_truth, detections, need_labels=False,
                                   need_scores=score_threshold > 0)
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError as error:
        raise ImportError("precision_recall needs scipy: pip install scipy") from error
    totals = {"true_positives": 0, "false_positives": 0, "false_negatives": 0}
    precisions, recalls = [], []
    any_truth = any_prediction = False
    for truth, detection in zip(truths, found):
        true_boxes = truth["boxes"][np.any(truth["boxes"] != 0, axis=1)]
        boxes = detection["boxes"]
        if detection["scores"] is not None:
            boxes = boxes[detection["scores"] >= score_threshold]
        hits = 0
        if len(true_boxes) and len(boxes):
            intersection = box_intersection(true_boxes, boxes)
            iou = box_iou(true_boxes, boxes)
            rows, columns = linear_sum_assignment(intersection, maximize=True)
            hits = int(np.sum(iou[rows, columns] > iou_threshold))
        any_truth |= bool(len(true_boxes))
        any_prediction |= bool(len(boxes))
        totals["true_positives"] += hits
        totals["false_positives"] += len(boxes) - hits
        totals["false_negatives"] += len(true_boxes) - hits
        if len(true_boxes):
            recalls.append(hits / len(true_boxes))
            if len(boxes):
                precisions.append(hits / len(boxes))
    if not any_prediction:
        precision, recall = float("nan"), 0.0
    elif not any_truth:
        precision, recall = 0.0, float("nan")
    else:
        precision = float(np.mean(precisions)) if precisions else float("nan")
        recall = float(np.mean(recalls))
    hits = totals["true_positives"]
    predicted = hits + totals["false_positives"]
    true = hits + totals["false_negatives"]
    return {"precision": precision, "recall": recall, **totals,
            "pooled_precision": hits / predicted if predicted else float("nan"),
            "pooled_recall": hits / true if true else float("nan")}


def mean_iou(y_true, y_pred, num_classes, ignore_class=255, class_names=None):
    """Segmentation mean IoU, accumulated by ``keras.metrics.MeanIoU``.

    Each image updates one ``MeanIoU(num_classes, ignore_class=ignore_class,
    dtype="int64")``, whose confusion matrix (rows true, columns predicted;
    pixels whose truth is ``ignore_class`` left out) gives everything: IoU of
    class c = ``cm[c, c] / (row c + column c - cm[c, c])``. As in
    ``MeanIoU.result()``, a class that appears in neither the truth nor the
    prediction (zero denominator) has no IoU and is left out of the mean. The
    counts are int64 because MeanIoU's default float32 matrix stops counting
    exactly past 2**24 pixels, and the IoUs are computed here in float64
    since ``result()`` divides by ``denominator + 1e-7`` in float32 (a
    perfect prediction reads 0.99999988 there).

    Args:
        y_true: int class maps, ``(B, H, W)`` or a list of ``(H, W)`` of any
            sizes; values in ``0..num_classes - 1`` or ``ignore_class``.
        y_pred: int class maps (argmax of the logits), same shapes.
        num_classes: the number of classes.
        ignore_class: the "void" label of the truth (VOC: 255), or None.
        class_names: if given, the keys of ``IoU_per_class``.

    Returns:
        ``{"mIoU", "IoU_per_class": {class: IoU} (present classes only),
        "pixel_accuracy"`` (over non-ignored pixels), ``"confusion_matrix"``
        (lists of ints)``}``; NaN where no pixel counts.

    Raises:
        ValueError: the lists differ in length, shapes differ, maps are not
            integers, or a value is out of range (MeanIoU would silently drop
            such pixels; predictions on ignored pixels are not checked).
    """
    import keras

    truths, predictions = _as_maps(y_true, "y_true"), _as_maps(y_pred, "y_pred")
    if len(truths) != len(predictions):
        raise ValueError(f"mean_iou: y_true has {len(truths)} images but y_pred has "
                         f"{len(predictions)}")
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"mean_iou: {len(class_names)} class_names for {num_classes} classes")
    metric = keras.metrics.MeanIoU(num_classes, ignore_class=ignore_class, dtype="int64")
    for index, (truth, prediction) in enumerate(zip(truths, predictions)):
        if truth.shape != prediction.shape:
            raise ValueError(f"mean_iou: image {index}: y_true is {truth.shape} but y_pred is "
                             f"{prediction.shape}")
        counted = (truth >= 0) & (truth < num_classes)
        ignored = truth == ignore_class if ignore_class is not None else np.zeros_like(counted)
        _check_range(truth, counted | ignored, index, "y_true", num_classes, ignore_class)
        # a prediction matters only where the truth counts
        _check_range(prediction, (prediction >= 0) & (prediction < num_classes) | ignored,
                     index, "y_pred", num_classes, None)
        metric.update_state(truth.astype("int32"), prediction.astype("int32"))
    matrix = np.asarray(keras.ops.convert_to_numpy(metric.total_cm), "int64")
    hits = np.diag(matrix).astype("float64")
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - hits
    present = union > 0
    names = list(class_names) if class_names is not None else list(range(num_classes))
    per_class = {names[c]: float(hits[c] / union[c]) for c in np.flatnonzero(present)}
    total = matrix.sum()
    return {"mIoU": float(np.mean(list(per_class.values()))) if per_class else float("nan"),
            "IoU_per_class": per_class,
            "pixel_accuracy": float(hits.sum() / total) if total else float("nan"),
            "confusion_matrix": matrix.tolist()}


def plot_precision_recall(ground_truth, detections, directory, iou_threshold=0.5,
                          class_names=None, use_07_metric=True):
    """One VOC precision-recall curve PNG per class with ground truth.

    The curve is `voc_map`'s (same matching), drawn with its monotone
    envelope and the AP in the title.

    Args:
        ground_truth, detections: as for `voc_map`.
        directory: where the ``pr_<class>.png`` files go (created if needed).
        iou_threshold, use_07_metric: as for `voc_map`.
        class_names: the classes' names (titles and file names).

    Returns:
        ``{class: path}`` of the files written.
    """
    from keras_coordatt.plotting import pyplot

    truths, found = _checked_pairs(ground_truth, detections)
    curves, _ = _voc_curves(truths, found, iou_threshold, class_names)
    plt = pyplot()
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for name, (recall, precision) in curves.items():
        figure, axes = plt.subplots(figsize=(4, 4))
        axes.plot(recall, precision, ".-", lw=1, label="detections")
        if len(recall):
            envelope = np.maximum.accumulate(precision[::-1])[::-1]
            axes.step(recall, envelope, where="post", lw=1, label="envelope")
        axes.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="recall", ylabel="precision",
                 title=f"{name}: AP {_voc_ap(recall, precision, use_07_metric):.3f} "
                       f"(IoU {iou_threshold:g})")
        axes.legend(loc="lower left")
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))
        paths[name] = os.path.join(directory, f"pr_{safe}.png")
        figure.savefig(paths[name], dpi=100, bbox_inches="tight")
        plt.close(figure)
    return paths


def _voc_curves(truths, found, iou_threshold, class_names):
    """Each class's (recall, precision) arrays by the VOC devkit's matching."""
    num_classes = _number_of_classes(truths, found, class_names)
    curves, missing = {}, []
    for label in range(num_classes):
        name = class_names[label] if class_names is not None else label
        objects = [(t["boxes"][t["labels"] == label], t["ignore"][t["labels"] == label])
                   for t in truths]
        positives = sum(int(np.sum(~ignore)) for _, ignore in objects)
        image, score, boxes = [], [], []
        for index, detection in enumerate(found):
            mine = detection["labels"] == label
            image += [index] * int(mine.sum())
            score.append(detection["scores"][mine])
            boxes.append(detection["boxes"][mine])
        if positives == 0:
            missing.append(name)
            continue
        score, boxes = np.concatenate(score), np.concatenate(boxes)
        order = np.argsort(-score, kind="stable")
        taken = [np.zeros(len(o[0]), bool) for o in objects]
        outcome = []  # 1 true positive, 0 false positive; ignored ones left out
        for k in order:
            true_boxes, ignore = objects[image[k]]
            if not len(true_boxes):
                outcome.append(0)
                continue
            iou = box_iou(true_boxes, boxes[k:k + 1])[:, 0]
            best = int(np.argmax(iou))
            if iou[best] < iou_threshold:
                outcome.append(0)
            elif ignore[best]:
                continue
            elif not taken[image[k]][best]:
                taken[image[k]][best] = True
                outcome.append(1)
            else:
                outcome.append(0)
        true_positive = np.cumsum(outcome, dtype="float64")
        counted = np.arange(1, len(outcome) + 1, dtype="float64")
        curves[name] = (true_positive / positives, true_positive / counted)
    return curves, missing


def _voc_ap(recall, precision, use_07_metric):
    """VOC AP from a precision-recall curve: 11-point or area under the envelope."""
    if use_07_metric:
        points = [precision[recall >= t].max() if np.any(recall >= t) else 0.0
                  for t in np.linspace(0, 1, 11)]
        return float(np.mean(points))
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def _xywh(box):
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def _number_of_classes(truths, found, class_names):
    labels = [e["labels"] for e in truths + found if e["labels"] is not None and len(e["labels"])]
    top = int(max(a.max() for a in labels)) + 1 if labels else 0
    if class_names is None:
        return top
    if top > len(class_names):
        raise ValueError(f"label {top - 1} has no class: only {len(class_names)} class_names "
                         f"{list(class_names)}")
    return len(class_names)


def _checked_pairs(ground_truth, detections, need_labels=True, need_scores=True):
    """Both lists checked and as float64/int64/bool arrays, one dict per image."""
    for name, value in (("ground_truth", ground_truth), ("detections", detections)):
        if isinstance(value, dict) or not hasattr(value, "__len__"):
            raise ValueError(f"{name} must be a list with one dict per image, not "
                             f"{type(value).__name__}")
    if len(ground_truth) != len(detections):
        raise ValueError(f"ground_truth has {len(ground_truth)} images but detections has "
                         f"{len(detections)}: give one entry per image, in the same order")
    truths = [_checked_image(entry, f"ground_truth[{i}]", need_labels, False, True)
              for i, entry in enumerate(ground_truth)]
    found = [_checked_image(entry, f"detections[{i}]", need_labels, need_scores, False)
             for i, entry in enumerate(detections)]
    return truths, found


def _checked_image(entry, where, need_labels, need_scores, is_truth):
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a dict with 'boxes', 'labels'"
                         f"{'' if is_truth else ', scores'}, not {type(entry).__name__}")
    if "boxes" not in entry:
        raise ValueError(f"{where} has no 'boxes' (keys: {sorted(entry)})")
    boxes = np.asarray(entry["boxes"], "float64")
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{where}['boxes'] has shape {boxes.shape}; need (N, 4) pixel xyxy")
    if not np.all(np.isfinite(boxes)):
        raise ValueError(f"{where}['boxes'] has non-finite values")
    bad = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
    if len(bad):
        raise ValueError(f"{where}['boxes'][{bad[0]}] is {boxes[bad[0]].tolist()}: x2 < x1 or "
                         "y2 < y1; need xyxy")
    count = len(boxes)
    checked = {"boxes": boxes, "labels": None, "scores": None,
               "ignore": np.zeros(count, bool)}

    def column(key, dtype):
        value = np.asarray(entry[key])
        if value.size == 0:
            value = value.reshape(0)
        if value.shape != (count,):
            raise ValueError(f"{where}['{key}'] has shape {value.shape} but its boxes are "
                             f"{boxes.shape}: need ({count},), one per box")
        return value.astype(dtype)

    if "labels" in entry:
        labels = column("labels", "float64")
        if np.any(labels < 0) or np.any(labels != np.round(labels)):
            raise ValueError(f"{where}['labels'] must be 0-based integers, got "
                             f"{np.unique(labels).tolist()}")
        checked["labels"] = labels.astype("int64")
    elif need_labels:
        raise ValueError(f"{where} has no 'labels' (keys: {sorted(entry)})")
    if not is_truth:
        if "scores" in entry:
            checked["scores"] = column("scores", "float64")
        elif need_scores:
            raise ValueError(f"{where} has no 'scores' (keys: {sorted(entry)})")
    for key in ("iscrowd", "difficult"):
        if is_truth and key in entry:
            checked["ignore"] |= column(key, bool)
    for key in ("width", "height"):
        if is_truth and entry.get(key) is not None:
            checked[key] = entry[key]
    return checked


def _as_maps(maps, name):
    if isinstance(maps, np.ndarray) or not isinstance(maps, (list, tuple)):
        maps = np.asarray(maps)
        if maps.ndim != 3:
            raise ValueError(f"mean_iou: {name} is {maps.shape}; need (B, H, W) class maps or a "
                             "list of (H, W)")
        maps = list(maps)
    arrays = [np.asarray(m) for m in maps]
    for index, array in enumerate(arrays):
        if array.ndim != 2:
            raise ValueError(f"mean_iou: {name}[{index}] is {array.shape}; need (H, W) class ids")
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"mean_iou: {name}[{index}] is {array.dtype}; need integer class "
                             "ids (take the argmax of the logits)")
    return arrays


def _check_range(array, valid, index, name, num_classes, ignore_class):
    if not np.all(valid):
        wrong = np.unique(array[~valid])
        allowed = f"0..{num_classes - 1}" + (f" or {ignore_class}" if ignore_class is not None
                                             else "")
        raise ValueError(f"mean_iou: image {index}: {name} has {int((~valid).sum())} pixels of "
                         f"class {wrong[:10].tolist()}, outside {allowed}")

